"""Self-check of origin.py and harness.py (no meridian needed). Run by hand:

    cd tests/support && python3 -m unittest -v test_origin_selftest
    ORIGIN_SELFTEST_HEAVY=1 python3 -m unittest -v test_origin_selftest   # 1 GiB each way

Not under tests/integration, so ctest does not run it.
"""

import hashlib
import os
import re
import stat
import sys
import tempfile
import textwrap
import time
import unittest

import harness
from harness import (HttpConn, Meridian, Origin, PatternSink, parse_responses, pattern_bytes,
                     pattern_sha256, raw_exchange, upload_pattern, wait_until)

HEAVY = bool(os.environ.get("ORIGIN_SELFTEST_HEAVY"))
BIG = (1 << 30) if HEAVY else (256 << 20)


class OriginTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.origin = Origin("self").start()

    @classmethod
    def tearDownClass(cls):
        cls.origin.stop()

    def setUp(self):
        self.origin.reset_stats()

    def conn(self):
        return HttpConn(self.origin.address)

    # ---- basics -----------------------------------------------------------------------------

    def test_keepalive_report(self):
        with self.conn() as c:
            r1 = c.request("GET", "/a?x=1", [("X-Mixed-Case", "v1"), ("x-dup", "1"),
                                              ("X-Dup", "2")])
            r2 = c.request("GET", "/b")
        self.assertEqual(r1.status, 200)
        self.assertEqual(r1.header("content-type"), "application/json")
        j1, j2 = r1.json(), r2.json()
        self.assertEqual(j1["name"], "self")
        self.assertEqual(j1["path"], "/a")
        self.assertEqual(j1["target"], "/a?x=1")
        self.assertEqual(j1["headers"][1:], [["X-Mixed-Case", "v1"], ["x-dup", "1"],
                                             ["X-Dup", "2"]])
        self.assertEqual(j1["connection_id"], j2["connection_id"])
        self.assertEqual((j1["request_index_on_connection"], j2["request_index_on_connection"]),
                         (0, 1))
        self.assertEqual(r2.header("X-Origin-Request-Index"), "1")
        st = self.origin.stats()
        self.assertEqual(st["connections_accepted"], 1)
        self.assertEqual(st["requests"], 2)
        self.assertEqual(st["requests_by_path"], {"/a": 1, "/b": 1})
        log = self.origin.log()
        self.assertEqual([e["path"] for e in log], ["/a", "/b"])

    def test_bodies(self):
        with self.conn() as c:
            r = c.request("POST", "/cl", body=b"hello")
            self.assertEqual(r.json()["body_length"], 5)
            self.assertEqual(r.json()["body_sha256"], hashlib.sha256(b"hello").hexdigest())
            r = c.request("POST", "/ch", body=[b"ab", b"cde"], trailers=[("X-T", "1")])
            j = r.json()
            self.assertEqual((j["body_length"], j["body_sha256"]),
                             (5, hashlib.sha256(b"abcde").hexdigest()))
            self.assertEqual(j["trailers"], [["X-T", "1"]])
            r = c.request("PUT", "/exp", body=b"x" * 1000, expect_continue=True)
            self.assertEqual([i.status for i in r.interim], [100])
            self.assertEqual(r.json()["body_length"], 1000)
            r = c.request("PUT", "/exp?continue=0", body=b"y" * 10, expect_continue=True,
                          continue_timeout=0.2)
            self.assertEqual(r.interim, [])
            self.assertEqual(r.json()["body_length"], 10)
            # Still the same connection.
            self.assertEqual(r.json()["connection_id"], c.request("GET", "/").json()[
                "connection_id"])

    def test_pattern_responses(self):
        with self.conn() as c:
            for q in ("size=100000", "size=100000&chunked=1&chunk_size=777", "size=0",
                      "size=0&chunked=1"):
                sink = PatternSink()
                r = c.request("GET", f"/p?{q}", sink=sink)
                n = int(re.search(r"size=(\d+)", q).group(1))
                self.assertTrue(sink.ok(n), (q, sink.length, sink.mismatch_at))
                self.assertEqual(r.framing, "chunked" if "chunked" in q else "length")
            r = c.request("GET", "/p?size=1000")
            self.assertEqual(r.body, pattern_bytes(1000))
            r = c.request("HEAD", "/p?size=12345")
            self.assertEqual((r.header("content-length"), r.body), ("12345", b""))
            r = c.request("GET", "/p?size=10&chunked=1&trailer=X-Sum:abc")
            self.assertEqual(r.trailers, [("X-Sum", "abc")])
            r = c.request("GET", "/p?status=204&size=10")
            self.assertEqual((r.status, r.body, r.header("content-length")), (204, b"", None))
            bad = PatternSink()
            bad(pattern_bytes(100)[:50] + b"!" + pattern_bytes(100)[51:])
            self.assertEqual(bad.mismatch_at, 0)

    def test_params_and_headers(self):
        with self.conn() as c:
            r = c.request("GET", "/h?status=418&header=X-A:1&header=X-B:two%20words",
                          [("x-origin-header", "X-C: 3"), ("X-Origin-Size", "4")])
            self.assertEqual(r.status, 418)
            self.assertEqual((r.header("x-a"), r.header("x-b"), r.header("x-c")),
                             ("1", "two words", "3"))
            self.assertEqual(r.body, b"0123")
            r = c.request("GET", "/h?status=abc")
            self.assertEqual(r.status, 400)
            self.assertEqual(self.origin.stats()["bad_requests"], 0)

    def test_delays(self):
        with self.conn() as c:
            t0 = time.monotonic()
            c.request("GET", "/d?delay_ms=200&body_delay_ms=100&size=10")
            self.assertGreaterEqual(time.monotonic() - t0, 0.3)

    def test_keepalive_0_and_http10(self):
        with self.conn() as c:
            r = c.request("GET", "/k?keepalive=0")
            self.assertTrue(r.will_close)
            self.assertEqual(c.wait_closed(2), "eof")
        with self.conn() as c:
            r = c.request("GET", "/k", version="HTTP/1.0", host=False)
            self.assertEqual(r.header("connection"), "close")
            self.assertEqual(c.wait_closed(2), "eof")
        with self.conn() as c:
            r = c.request("GET", "/k", [("Connection", "keep-alive")], version="HTTP/1.0")
            self.assertFalse(r.will_close)
            self.assertEqual(c.request("GET", "/k2").status, 200)

    def test_pipelining(self):
        req = b"GET /p1 HTTP/1.1\r\nHost: x\r\n\r\nGET /p2?size=3 HTTP/1.1\r\nHost: x\r\n" \
              b"Connection: close\r\n\r\n"
        res = raw_exchange("127.0.0.1", self.origin.port, req)
        self.assertEqual(res.ended, "eof")
        responses, rest = parse_responses(res.data)
        self.assertEqual(rest, b"")
        self.assertEqual([r.status for r in responses], [200, 200])
        self.assertEqual(responses[0].json()["path"], "/p1")
        self.assertEqual(responses[1].body, b"012")

    # ---- failures on purpose --------------------------------------------------------------

    def test_reset_and_close_after(self):
        port = self.origin.port
        res = raw_exchange("127.0.0.1", port, b"GET /r?size=1000000&reset_after=5000 HTTP/1.1"
                           b"\r\nHost: x\r\n\r\n")
        self.assertEqual((len(res.data), res.ended), (5000, "reset"))
        res = raw_exchange("127.0.0.1", port, b"GET /r?size=1000000&close_after=5000 HTTP/1.1"
                           b"\r\nHost: x\r\n\r\n")
        self.assertEqual((len(res.data), res.ended), (5000, "eof"))
        res = raw_exchange("127.0.0.1", port, b"GET /r?reset_before=1 HTTP/1.1\r\nHost: x\r\n"
                           b"\r\n")
        self.assertEqual((res.data, res.ended), (b"", "reset"))
        res = raw_exchange("127.0.0.1", port, b"GET /r?reset_after=0 HTTP/1.1\r\nHost: x\r\n"
                           b"\r\n")
        self.assertEqual((res.data, res.ended), (b"", "reset"))
        res = raw_exchange("127.0.0.1", port, b"GET /g?garbage=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual((res.data, res.ended), (__import__("origin").GARBAGE, "eof"))
        # A reset of a big response in the middle of its body, counted from the response start.
        res = raw_exchange("127.0.0.1", port, b"GET /r?size=50000000&reset_after=30000000 "
                           b"HTTP/1.1\r\nHost: x\r\n\r\n", timeout=20)
        self.assertEqual((len(res.data), res.ended), (30000000, "reset"))
        self.assertEqual(self.origin.requests("/r"), 5)

    def test_malformed(self):
        port = self.origin.port
        cases = {
            "bare LF": b"GET / HTTP/1.1\nHost: x\n\n",
            "bare LF in header": b"GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n",
            "obs-fold": b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
            "space before colon": b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
            "no host": b"GET / HTTP/1.1\r\n\r\n",
            "two hosts": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "bad host": b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
            "CL+TE": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "two CL": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                      b"Content-Length: 4\r\n\r\nabcd",
            "TE gzip": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
            "TE chunked,chunked": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
                                  b"chunked, chunked\r\n\r\n0\r\n\r\n",
            "bad chunk size": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                              b"\r\nzz\r\nabc\r\n0\r\n\r\n",
            "chunk without CRLF": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
                                  b"\r\n\r\n3\r\nabcX\r\n0\r\n\r\n",
            "NUL in value": b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
            "HTTP/0.9": b"GET /\r\n\r\n",
            "bad method": b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n",
            "HTTP/2.0": b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
        }
        for what, data in cases.items():
            with self.subTest(what):
                res = raw_exchange("127.0.0.1", port, data, timeout=3)
                responses, _ = parse_responses(res.data)
                self.assertEqual(len(responses), 1, res)
                want = 505 if what == "HTTP/2.0" else 400
                self.assertEqual(responses[0].status, want)
                self.assertEqual(res.ended, "eof")
        self.assertEqual(self.origin.log(), [])  # nothing counted as a valid request but ...
        st = self.origin.stats()
        # ... the chunked ones whose head was valid were counted as requests (head first).
        self.assertEqual(st["requests"], 2)
        self.assertEqual(st["bad_requests"], len(cases))
        self.assertEqual(len(self.origin.bad_requests()), len(cases))

    # ---- control ----------------------------------------------------------------------------

    def test_health_and_control(self):
        o = self.origin
        with self.conn() as c:
            self.assertEqual(c.request("GET", "/health").status, 200)
            o.set_health(503, delay_ms=50)
            t0 = time.monotonic()
            self.assertEqual(c.request("GET", "/health").status, 503)
            self.assertGreaterEqual(time.monotonic() - t0, 0.05)
            o.set_health(200, delay_ms=0)
            self.assertEqual(c.request("GET", "/health").text(), "ok\n")
            self.assertEqual(o.requests("/health"), 3)
            self.assertEqual(len(o.log(include_health=False)), 0)
            self.assertEqual(o.stats()["connections_active"], 1)
            self.assertEqual(o.close_idle(), 1)
            self.assertEqual(c.wait_closed(2), "eof")
        wait_until(lambda: o.stats()["connections_active"] == 0, 2)
        st = o.stats()
        self.assertEqual((st["connections_accepted"], st["requests"]), (1, 3))

    def test_big_transfers(self):
        """BIG bytes each way, Content-Length and chunked; prints the throughput."""
        with self.conn() as c:
            for chunked in (False, True):
                sink = PatternSink()
                t0 = time.monotonic()
                r = c.request("GET", f"/big?size={BIG}&chunked={int(chunked)}", sink=sink)
                dt = time.monotonic() - t0
                self.assertTrue(sink.ok(BIG))
                sys.stderr.write(f"\n  download {BIG >> 20} MiB chunked={chunked}: {dt:.2f}s "
                                 f"({BIG / dt / 1e6:.0f} MB/s, client checks the pattern)")
                t0 = time.monotonic()
                r = upload_pattern(c, "POST", "/up", BIG, chunked=chunked)
                dt = time.monotonic() - t0
                j = r.json()
                self.assertEqual((j["body_length"], j["body_sha256"]),
                                 (BIG, pattern_sha256(BIG)))
                sys.stderr.write(f"\n  upload {BIG >> 20} MiB chunked={chunked}: {dt:.2f}s "
                                 f"({BIG / dt / 1e6:.0f} MB/s, origin hashes)\n")


class OriginLifecycleTest(unittest.TestCase):
    def test_restart_same_port_and_kill(self):
        with Origin("x") as o:
            port = o.port
            self.assertEqual(o.requests(), 0)
            o.stop()
            with self.assertRaises(OSError):
                HttpConn(o.address, timeout=1)
            o.start()
            self.assertEqual(o.port, port)
            self.assertEqual(harness.http_get(o.address, "/y").json()["name"], "x")
            o.pause()
            res = raw_exchange("127.0.0.1", port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                               timeout=0.3)
            self.assertEqual((res.data, res.ended), (b"", "timeout"))
            o.resume()
            o.kill()
            self.assertFalse(o.running)

    def test_sigterm_is_prompt(self):
        o = Origin().start()
        c = HttpConn(o.address)  # an open connection must not delay the exit
        t0 = time.monotonic()
        o.stop()
        self.assertLess(time.monotonic() - t0, 2)
        c.close()


FAKE_MERIDIAN = textwrap.dedent(f"""\
    #!{sys.executable}
    # Stand-in for meridian: serves the origin on the admin address of --config.
    import os, re, sys
    path = sys.argv[sys.argv.index("--config") + 1]
    text = open(path).read()
    if "--check" in sys.argv:
        print(f"{{os.path.basename(path)}}:1:1: fake error", file=sys.stderr)
        sys.exit(1)
    host, port = re.search(r"listen: \\"?([0-9.]+):([0-9]+)", text).groups()
    print("fake meridian starting", file=sys.stderr, flush=True)
    os.execv(sys.executable, [sys.executable, {harness.ORIGIN_PY!r}, "--host", host,
                               "--port", port])
    """)


class MeridianPlumbingTest(unittest.TestCase):
    """The Meridian class against a fake binary (the real one is exercised by the
    integration tests)."""

    def setUp(self):
        fd, self.fake = tempfile.mkstemp(prefix="fake-meridian-")
        with os.fdopen(fd, "w") as f:
            f.write(FAKE_MERIDIAN)
        os.chmod(self.fake, stat.S_IRWXU)

    def tearDown(self):
        os.unlink(self.fake)

    def test_start_ready_stop(self):
        cfg = 'admin:\n  listen: "{admin}"\nnode: {location: {lat: 1, lon: 2}}\nx: "{o1}"\n'
        with Meridian(cfg, {"o1": "127.0.0.1:1"}, binary=self.fake) as m:
            self.assertIn('x: "127.0.0.1:1"', m.config_text)
            self.assertIn("{location: {lat: 1, lon: 2}}", m.config_text)
            self.assertEqual(m.admin("GET", "/ready").status, 200)
            self.assertGreater(m.rss_peak_kib(), 1000)
            self.assertIn("fake meridian starting", m.log_text())
        self.assertEqual(m.returncode, 0)
        self.assertFalse(os.path.exists(m.dir))

    def test_start_failure_reports_stderr(self):
        with self.assertRaises(harness.MeridianError) as cm:
            with Meridian("nothing here\n", binary=self.fake, wait="listen",
                          listen="127.0.0.1:1"):
                pass
        self.assertIn("exited", str(cm.exception))

    def test_check(self):
        os.environ["MERIDIAN_BIN_SAVED"] = os.environ.get("MERIDIAN_BIN", "")
        os.environ["MERIDIAN_BIN"] = self.fake
        try:
            code, out, err = harness.run_meridian_check("a: 1\n")
        finally:
            os.environ["MERIDIAN_BIN"] = os.environ.pop("MERIDIAN_BIN_SAVED")
            if not os.environ["MERIDIAN_BIN"]:
                del os.environ["MERIDIAN_BIN"]
        self.assertEqual((code, err.strip()), (1, "meridian.yaml:1:1: fake error"))


class HelpersTest(unittest.TestCase):
    def test_free_port_and_wait_until(self):
        ports = harness.free_ports(20)
        self.assertEqual(len(set(ports)), 20)
        self.assertEqual(wait_until(lambda: 42, 1), 42)
        with self.assertRaises(AssertionError):
            wait_until(lambda: False, 0.1)

    def test_source_address(self):
        with Origin() as o, HttpConn(o.address, source_address="127.0.2.1") as c:
            self.assertTrue(c.request("GET", "/").json()["peer"].startswith("127.0.2.1:"))

    def test_metrics_parser(self):
        text = ('# TYPE meridian_x counter\nmeridian_x{a="1",b="q\\"z"} 3\n'
                'meridian_x{a="2"} 4\nmeridian_y 1.5\n')
        self.assertEqual(harness.metric_value(text, "meridian_x"), 7)
        self.assertEqual(harness.metric_value(text, "meridian_x", {"b": 'q"z'}), 3)
        self.assertEqual(harness.metric_value(text, "meridian_y"), 1.5)
        self.assertIsNone(harness.metric_value(text, "meridian_z"))


if __name__ == "__main__":
    unittest.main()
