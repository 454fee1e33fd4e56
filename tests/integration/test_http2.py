"""HTTP/2 downstream (the same request path with an HTTP/2 codec): over TLS by ALPN and in
cleartext with prior knowledge, each stream routed, steered, rate-limited and logged as an
HTTP/1.1 request is, with real clients -- curl, nghttp and h2load (Debian's nghttp2-client) and
python3-h2 -- against the real binary and the test origin. Bodies stream both ways under flow
control; the header list is bounded; GOAWAY comes on drain and when a reload removes the
listener.

Abuse: a rapid-reset client (HEADERS then RST_STREAM in a loop), a CONTINUATION flood and
PING/SETTINGS floods are cut off with GOAWAY and a close, having started only a bounded amount
of upstream work, while an ordinary client on another connection is served throughout."""

import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))

from harness import (FRANKFURT, LOOPBACK_DB, NEW_YORK, Meridian, Origin,  # noqa: E402
                     free_port, pattern_sha256, split_address, wait_until)
from test_tls import make_certificate  # noqa: E402

try:
    import h2client
    import h2.settings
    from h2client import H2Client
except ImportError:  # python3-h2 missing: tests/install-deps.sh installs it
    h2client = None


CONFIG = """
node: {name: edge-h2}
workers: 2
debug_headers: true
admin:
  listen: "{admin}"
geoip:
  database: "{geoip}"
access_log: {path: "{dir}/access.log", format: json}
limits:
  max_request_header_bytes: 8KiB
  max_request_headers: 50
listeners:
  - name: h2c
    listen: "{h2c}"
    routes: &routes
      - {name: limited, match: {path_prefix: /limited}, backend: world,
         rate_limit: {rate: 1/h, burst: 1}}
      - {name: all, match: {host: h2.test}, backend: world}
  - name: tls
    listen: "{tls}"
    tls:
      certificates: [{cert: "{certs}/h2.pem", key: "{certs}/h2.key"}]
    routes: *routes
  - name: tls11
    listen: "{tls11}"
    tls:
      certificates: [{cert: "{certs}/h2.pem", key: "{certs}/h2.key"}]
      alpn: [http/1.1]
    routes: *routes
backends:
  - name: world
    steering: {policy: geo}
    regions:
      - {name: us-east, location: {lat: 38.90, lon: -77.04}, endpoints: [{address: "{us}"}]}
      - {name: eu-west, location: {lat: 53.35, lon: -6.26}, endpoints: [{address: "{eu}"}]}
"""


def have_tools():
    return h2client is not None and shutil.which("nghttp") and shutil.which("h2load") and \
        shutil.which("curl")


def proc_cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@unittest.skipUnless(have_tools(), "nghttp2-client, python3-h2 and curl needed")
class Http2Test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = tempfile.mkdtemp(prefix="meridian-h2-")
        make_certificate(cls.certs, "h2", "h2.test", ["h2.test"])
        cls.us = Origin("us").start()
        cls.eu = Origin("eu").start()
        cls.ports = {"h2c": free_port(), "tls": free_port(), "tls11": free_port()}
        cls.meridian = Meridian(CONFIG, {
            "us": cls.us.address, "eu": cls.eu.address, "certs": cls.certs, "geoip": LOOPBACK_DB,
            **{name: f"127.0.0.1:{port}" for name, port in cls.ports.items()}}).start()
        cls.h2c = f"127.0.0.1:{cls.ports['h2c']}"
        cls.tls = f"127.0.0.1:{cls.ports['tls']}"

    @classmethod
    def tearDownClass(cls):
        cls.meridian.stop()
        cls.us.stop()
        cls.eu.stop()
        shutil.rmtree(cls.certs, ignore_errors=True)

    def tls_context(self):
        return ssl.create_default_context(cafile=os.path.join(self.certs, "h2.pem"))

    def curl(self, *args, source=None):
        argv = ["curl", "-sS", "-o", "/dev/null", "-D", "-",
                "-w", "%{http_version}\n", "--cacert", os.path.join(self.certs, "h2.pem")]
        if source:
            argv += ["--interface", source]
        proc = subprocess.run(argv + list(args), capture_output=True, timeout=30)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        lines = proc.stdout.decode().strip().splitlines()
        headers = {}
        for line in lines[1:-1]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return lines[0].split()[1], headers, lines[-1]

    # ---- real clients: curl, nghttp, h2load ---------------------------------------------

    def test_curl_http2_over_tls_and_prior_knowledge_are_steered_like_http11(self):
        tls_port = self.ports["tls"]
        for source, region in ((FRANKFURT, "eu-west"), (NEW_YORK, "us-east")):
            answers = {
                "h2 tls": self.curl("--http2", "--resolve", f"h2.test:{tls_port}:127.0.0.1",
                                    f"https://h2.test:{tls_port}/steer", source=source),
                "h2c": self.curl("--http2-prior-knowledge", f"http://{self.h2c}/steer",
                                 "-H", "Host: h2.test", source=source),
                "http/1.1": self.curl("--http1.1", f"http://{self.h2c}/steer", "-H",
                                      "Host: h2.test", source=source),
            }
            for name, (status, headers, version) in answers.items():
                with self.subTest(source=source, client=name):
                    self.assertEqual(status, "200")
                    self.assertEqual(version, "1.1" if name == "http/1.1" else "2")
                    self.assertEqual(headers["x-meridian-region"], region)
                    self.assertEqual(headers["via"], "1.1 edge-h2")
        # What the origin saw of an HTTP/2 request: an HTTP/1.1 request with the forwarded
        # fields (docs/http-behaviour.md, headers).
        request = self.eu.log(path="/steer")[-1]
        fields = {n.lower(): v for n, v in request["headers"]}
        self.assertEqual(request["version"], "HTTP/1.1")
        self.assertEqual(fields["host"], "h2.test")
        self.assertEqual(fields["x-forwarded-for"], FRANKFURT)
        self.assertEqual(fields["via"], "1.1 edge-h2")

    def test_alpn_picks_h2_only_where_offered(self):
        _, _, version = self.curl("--http2", "--resolve",
                                  f"h2.test:{self.ports['tls11']}:127.0.0.1",
                                  f"https://h2.test:{self.ports['tls11']}/alpn")
        self.assertEqual(version, "1.1", "alpn: [http/1.1] does not offer h2")
        _, _, version = self.curl("--http1.1", "--resolve",
                                  f"h2.test:{self.ports['tls']}:127.0.0.1",
                                  f"https://h2.test:{self.ports['tls']}/alpn")
        self.assertEqual(version, "1.1", "an HTTP/1.1 client on an h2 listener")

    def test_nghttp_100_concurrent_streams_on_one_connection(self):
        proc = subprocess.run(["nghttp", "-nv", "-m", "100", "-H", ":authority: h2.test",
                               f"http://{self.h2c}/many"], capture_output=True, timeout=60)
        out = proc.stdout.decode()
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(out.count(":status: 200"), 100, out[-2000:])
        self.assertIn("SETTINGS_MAX_CONCURRENT_STREAMS(0x03):100", out)
        # And each answer is its own request's: 100 distinct paths, each body checked.
        with H2Client(self.h2c) as c:
            ids = {c.request("GET", f"/each/{i}?size={1000 + i}"): i for i in range(100)}
            c.run_until(lambda: all(c.streams[s].done for s in ids), timeout=30)
            for stream_id, i in ids.items():
                stream = c.streams[stream_id]
                self.assertEqual(stream.status, 200)
                self.assertEqual(hashlib.sha256(stream.body).hexdigest(),
                                 pattern_sha256(1000 + i))

    def test_h2load_completes_without_errors(self):
        # The full -n 100000 run is the benchmark (bench/e2e); CI runs a shorter one.
        accepted = sum(o.stats()["connections_accepted"] for o in (self.us, self.eu))
        proc = subprocess.run(["h2load", "-n", "4000", "-c", "10", "-m", "10",
                               "-H", ":authority: h2.test", f"http://{self.h2c}/load"],
                              capture_output=True, timeout=120)
        out = proc.stdout.decode()
        self.assertEqual(proc.returncode, 0, out)
        self.assertIn("4000 succeeded, 0 failed, 0 errored, 0 timeout", out)
        self.assertIn("status codes: 4000 2xx", out)
        # Streams reuse pooled upstream connections as HTTP/1.1 requests do: at most about
        # one per concurrent stream (100), not one per request.
        opened = sum(o.stats()["connections_accepted"] for o in (self.us, self.eu)) - accepted
        self.assertLess(opened, 400)

    # ---- requests as HTTP/1.1 ones are ----------------------------------------------------

    def test_bodies_stream_both_ways_under_flow_control(self):
        upload = os.urandom(3 * 1024 * 1024 + 17)  # 48 stream windows
        with H2Client(self.tls, tls_context=self.tls_context()) as c:
            up = c.request("POST", "/upload", headers=[("content-length", str(len(upload)))],
                           body=upload)
            chunked_up = c.request("PUT", "/upload-chunked", body=upload[:200000])
            down = c.request("GET", "/download?size=5000000")
            chunked_down = c.request("GET", "/download?size=300000&chunked=1")
            c.run_until(lambda: all(c.streams[s].done for s in (up, chunked_up, down,
                                                                 chunked_down)), timeout=60)
            report = json.loads(c.streams[up].body)
            self.assertEqual(report["body_length"], len(upload))
            self.assertEqual(report["body_sha256"], hashlib.sha256(upload).hexdigest())
            report = json.loads(c.streams[chunked_up].body)
            self.assertEqual(report["body_sha256"], hashlib.sha256(upload[:200000]).hexdigest())
            self.assertIn(["Transfer-Encoding", "chunked"], report["headers"])
            self.assertEqual(hashlib.sha256(c.streams[down].body).hexdigest(),
                             pattern_sha256(5000000))
            self.assertEqual(c.streams[down].headers["content-length"], "5000000")
            self.assertEqual(hashlib.sha256(c.streams[chunked_down].body).hexdigest(),
                             pattern_sha256(300000))
            self.assertNotIn("transfer-encoding", c.streams[chunked_down].headers)

    def test_local_answers_and_rate_limit(self):
        with H2Client(self.h2c, source=FRANKFURT) as c:
            missing = c.get("/nowhere", authority="unknown.test")
            self.assertEqual(missing.status, 404)
            self.assertEqual(missing.headers["content-type"], "text/plain")
            first = c.get("/limited/a")
            second = c.get("/limited/b")
            self.assertEqual(first.status, 200)
            self.assertEqual(first.headers["ratelimit-limit"], "1")
            self.assertEqual(second.status, 429)
            self.assertIn("retry-after", second.headers)
            head = c.request("HEAD", "/head?size=1234")
            c.run_until(lambda: c.streams[head].done)
            self.assertEqual(c.streams[head].status, 200)
            self.assertEqual(c.streams[head].headers["content-length"], "1234")
            self.assertEqual(len(c.streams[head].body), 0)
        self.assertGreaterEqual(self.meridian.metric(
            "meridian_rate_limited_total", {"listener": "h2c", "route": "limited"}), 1)

    def test_header_list_limits(self):
        with H2Client(self.h2c) as c:
            big = c.get("/big", headers=[("x-big", "a" * 9000)])
            self.assertEqual(big.status, 431)
            many = c.get("/many-fields", headers=[(f"x-f{i}", "v") for i in range(60)])
            self.assertEqual(many.status, 431)
            fine = c.get("/fine", headers=[("cookie", "a=1"), ("cookie", "b=2")])
            self.assertEqual(fine.status, 200)
        seen = {n.lower(): v for n, v in
                (self.eu.log(path="/fine") + self.us.log(path="/fine"))[-1]["headers"]}
        self.assertEqual(seen["cookie"], "a=1; b=2")
        self.assertFalse(self.eu.requests("/big") + self.us.requests("/big"))

    def test_malformed_streams_are_reset_and_never_forwarded(self):
        for name, block in (
                ("upper-case name", h2client.get_block("/bad1") + h2client.literal("X-Up", "1")),
                ("connection field", h2client.get_block("/bad2")
                 + h2client.literal("connection", "close")),
                ("no :path", b"\x82\x86" + h2client.literal(":authority", "h2.test")),
                ("CONNECT", b"\x02\x07CONNECT" + h2client.literal(":authority", "h2.test:443"))):
            with self.subTest(name), socket.create_connection(split_address(self.h2c)) as s:
                s.sendall(h2client.PREFACE + h2client.frame(h2client.SETTINGS, 0, 0)
                          + h2client.frame(h2client.HEADERS,
                                           h2client.END_HEADERS | h2client.END_STREAM, 1, block))
                frames, _ = h2client.read_frames(s, timeout=1.0)
                answered = [f for f in frames if f[2] == 1]
                self.assertTrue(answered, frames)
                statuses = [f for f in answered if f[0] == h2client.HEADERS]
                resets = [f for f in answered if f[0] == h2client.RST_STREAM]
                # CONNECT gets a 400 (no tunnels); the others nghttp2 resets (RFC 9113 8.1.1).
                self.assertTrue(resets or statuses, answered)
        for path in ("/bad1", "/bad2"):
            self.assertFalse(self.eu.requests(path) + self.us.requests(path))

    def test_access_log_and_metrics_count_streams(self):
        with H2Client(self.h2c, source=NEW_YORK) as c:
            c.get("/logged?x=1")
        entries = wait_until(lambda: [e for e in self.meridian.access_log("access.log")
                                      if e.get("path") == "/logged"],
                             message="access log line")
        self.assertEqual(entries[0]["status"], 200)
        self.assertEqual(entries[0]["region"], "us-east")
        self.assertEqual(entries[0]["client"], NEW_YORK)


    # ---- abuse ---------------------------------------------------------------------------

    def attack(self, batches, total_limit=200000):
        """Sends the byte batches from `batches` (a generator) until the server closes;
        returns (frames received, batches sent, whether the server closed)."""
        s = socket.create_connection(split_address(self.h2c))
        s.sendall(h2client.PREFACE + h2client.frame(h2client.SETTINGS, 0, 0))
        sent = 0
        frames = []
        closed = False
        try:
            for batch in batches:
                s.sendall(batch)
                sent += 1
                got, closed = h2client.read_frames(s, timeout=0.002)
                frames += got
                if closed or h2client.goaway_code(frames) is not None or sent >= total_limit:
                    break
            if not closed:
                got, closed = h2client.read_frames(s, timeout=5.0)
                frames += got
        except (BrokenPipeError, ConnectionResetError):
            closed = True
        finally:
            s.close()
        return frames, sent, closed

    def served_meanwhile(self, attack):
        """Runs `attack` while an ordinary client keeps requesting on its own connection;
        returns the attack's result and the ordinary client's statuses."""
        statuses = []
        done = threading.Event()

        def ordinary():
            with H2Client(self.h2c) as c:
                while not done.is_set():
                    statuses.append(c.get("/ordinary").status)
        t = threading.Thread(target=ordinary)
        t.start()
        try:
            result = attack()
        finally:
            done.set()
            t.join(30)
        return result, statuses

    def check_cut_off(self, frames, closed, code=0xb):  # ENHANCE_YOUR_CALM
        self.assertEqual(h2client.goaway_code(frames), code, frames[-5:])
        self.assertTrue(closed, "the connection is closed after the GOAWAY")

    def test_rapid_reset_is_cut_off(self):
        before = self.eu.requests() + self.us.requests()
        cpu_before = proc_cpu_seconds(self.meridian.pid)

        def batches():
            stream_id = 1
            while True:
                batch = b""
                for _ in range(50):
                    batch += h2client.frame(h2client.HEADERS,
                                            h2client.END_HEADERS | h2client.END_STREAM,
                                            stream_id, h2client.get_block("/slow?delay_ms=300"))
                    batch += h2client.frame(h2client.RST_STREAM, 0, stream_id,
                                            h2client.CANCEL.to_bytes(4, "big"))
                    stream_id += 2
                yield batch
        (frames, sent, closed), statuses = self.served_meanwhile(
            lambda: self.attack(batches(), total_limit=2000))
        self.check_cut_off(frames, closed)
        self.assertLess(sent, 2000, "cut off long before the attacker stopped")
        self.assertTrue(statuses and set(statuses) == {200}, statuses)
        # Bounded work: a few hundred streams at most ever reached the upstream side, and
        # the CPU the whole attack cost stays far from a core-second per thousand frames.
        started = self.eu.requests() + self.us.requests() - before - len(statuses)
        self.assertLess(started, 600)
        self.assertLess(proc_cpu_seconds(self.meridian.pid) - cpu_before, 30)
        self.assertTrue(self.meridian.running)

    def test_continuation_flood_is_cut_off(self):
        def batches():
            yield h2client.frame(h2client.HEADERS, 0, 1, h2client.get_block("/cont"))
            while True:
                yield b"".join(h2client.frame(h2client.CONTINUATION, 0, 1,
                                              h2client.literal("x-flood", "y" * 60))
                               for _ in range(20))
        (frames, sent, closed), statuses = self.served_meanwhile(
            lambda: self.attack(batches(), total_limit=5000))
        self.check_cut_off(frames, closed)
        self.assertLess(sent, 50)
        self.assertTrue(statuses and set(statuses) == {200}, statuses)
        self.assertFalse(self.eu.requests("/cont") + self.us.requests("/cont"))

    def test_ping_and_settings_floods_are_cut_off(self):
        for name, unit in (
                ("PING", h2client.frame(h2client.PING, 0, 0, b"12345678")),
                ("SETTINGS", h2client.frame(h2client.SETTINGS, 0, 0))):
            with self.subTest(name):
                (frames, sent, closed), statuses = self.served_meanwhile(
                    lambda: self.attack(iter(lambda: unit * 100, None), total_limit=2000))
                self.check_cut_off(frames, closed)
                self.assertLess(sent, 100)
                self.assertTrue(statuses and set(statuses) == {200}, statuses)
        rss = self.meridian.rss_kib()
        self.assertLess(rss, 200 * 1024, "no memory runaway")


RELOAD_CONFIG = """
node: {name: edge-h2-life}
workers: 1
limits: {idle_timeout: 1s, header_timeout: 1s}
admin:
  listen: "{admin}"
listeners:
  - name: main
    listen: "{listen}"
    routes: [{name: all, backend: b}]
{extra}
backends:
  - name: b
    regions:
      - {name: r1, location: {lat: 50.0, lon: 8.0}, endpoints: [{address: "{o1}"}]}
"""

SECOND_LISTENER = """  - name: second
    listen: "{second}"
    routes: [{name: all, backend: b}]"""


@unittest.skipUnless(have_tools(), "nghttp2-client, python3-h2 and curl needed")
class Http2LifecycleTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.origin = Origin("o1").start()

    @classmethod
    def tearDownClass(cls):
        cls.origin.stop()

    def test_goaway_on_drain_lets_the_stream_in_progress_finish(self):
        # nghttp shows the frames it receives; python-h2 would stop at the GOAWAY.
        with Meridian(RELOAD_CONFIG, {"o1": self.origin.address, "extra": ""}) as m:
            client = subprocess.Popen(
                ["nghttp", "-v", "-H", ":authority: h2.test",
                 f"http://{m.listen_address}/slow?delay_ms=1000"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            try:
                wait_until(lambda: self.origin.requests("/slow") >= 1, timeout=10,
                           message="the slow request at the origin")
                m.send_signal(signal.SIGTERM)
                out, _ = client.communicate(timeout=20)
            finally:
                if client.poll() is None:
                    client.kill()
            out = out.decode()
            self.assertEqual(client.returncode, 0, out)
            self.assertRegex(out, r"recv GOAWAY frame <[^>]*>\s*\(last_stream_id=\d+, "
                                  r"error_code=NO_ERROR")
            self.assertIn(":status: 200", out, "the stream in progress finished")
            self.assertLess(out.index("recv GOAWAY"), out.index(":status: 200"),
                            "the GOAWAY came first, at the drain")
            self.assertEqual(m.wait(10), 0)

    def test_idle_connection_gets_goaway_then_close(self):
        with Meridian(RELOAD_CONFIG, {"o1": self.origin.address, "extra": ""}) as m:
            with H2Client(m.listen_address) as c:
                self.assertEqual(c.get("/once").status, 200)
                # idle_timeout (1 s) without an open stream: GOAWAY NO_ERROR, then the close.
                c.run_until(lambda: c.goaway is not None, timeout=10)
                self.assertEqual(c.goaway[0], 0)
                wait_until(lambda: not c.pump(), timeout=10, message="the close after GOAWAY")
            # A connection that sends nothing after the preface is closed by header_timeout.
            with socket.create_connection(split_address(m.listen_address)) as s:
                s.sendall(h2client.PREFACE + h2client.frame(h2client.SETTINGS, 0, 0))
                frames, closed = h2client.read_frames(s, timeout=10)
                self.assertTrue(closed)
                self.assertEqual(h2client.goaway_code(frames), 0)

    def test_unfinished_header_block_is_closed_at_header_timeout(self):
        # HEADERS without END_HEADERS, then nothing: the connection can carry nothing else, so
        # header_timeout (1 s) ends it although idle_timeout (30 s here) has not passed and a
        # request was served on it before.
        config = RELOAD_CONFIG.replace("idle_timeout: 1s", "idle_timeout: 30s")
        with Meridian(config, {"o1": self.origin.address, "extra": ""}) as m:
            with socket.create_connection(split_address(m.listen_address)) as s:
                block = b"\x82\x86\x84" + h2client.literal(":authority", "h2.test")
                s.sendall(h2client.PREFACE + h2client.frame(h2client.SETTINGS, 0, 0)
                          + h2client.frame(h2client.HEADERS,
                                           h2client.END_HEADERS | h2client.END_STREAM, 1, block)
                          + h2client.frame(h2client.HEADERS, h2client.END_STREAM, 3, block[:2]))
                started = time.monotonic()
                frames, closed = h2client.read_frames(s, timeout=10)
                self.assertTrue(closed)
                self.assertLess(time.monotonic() - started, 8, "closed by header_timeout")
                self.assertTrue([f for f in frames if f[0] == h2client.HEADERS and f[2] == 1],
                                "the first request was answered")
                self.assertEqual(h2client.goaway_code(frames), h2client.PROTOCOL_ERROR)

    def test_upload_arriving_in_bursts_after_a_pause(self):
        # Two DATA frames in one read while the exchange holds the first piece: the stream's
        # buffer must already have its window's room (it once reset such a stream).
        with Meridian(RELOAD_CONFIG, {"o1": self.origin.address, "extra": ""}) as m:
            with H2Client(m.listen_address) as c:
                body = b"a" * 100 + b"b" * 500 + b"c" * 5000
                sid = c.request("POST", "/burst", headers=[("content-length", str(len(body)))],
                                end_stream=False)
                c.conn.send_data(sid, body[:100])
                c._flush()
                c.pump(0.3)  # the client pauses; meanwhile the first piece goes upstream
                c.conn.send_data(sid, body[100:600])
                c.conn.send_data(sid, body[600:], end_stream=True)
                c._flush()
                c.run_until(lambda: c.streams[sid].done)
                self.assertEqual(c.streams[sid].reset, None)
                self.assertEqual(c.streams[sid].status, 200)
                report = json.loads(c.streams[sid].body)
                self.assertEqual(report["body_sha256"], hashlib.sha256(body).hexdigest())

    def test_clients_that_do_not_read_are_not_kept(self):
        with Meridian(RELOAD_CONFIG, {"o1": self.origin.address, "extra": ""}) as m:
            # A window that never opens for the answer (INITIAL_WINDOW_SIZE 0): the stream is
            # reset after idle_timeout (1 s) rather than held.
            with socket.create_connection(split_address(m.listen_address)) as s:
                s.sendall(h2client.PREFACE + h2client.frame(h2client.SETTINGS, 0, 0,
                                                            b"\x00\x04\x00\x00\x00\x00")
                          + h2client.frame(h2client.HEADERS,
                                           h2client.END_HEADERS | h2client.END_STREAM, 1,
                                           b"\x02\x07CONNECT"
                                           + h2client.literal(":authority", "h2.test:443")))
                frames, _ = h2client.read_frames(s, timeout=5)
                resets = [f for f in frames if f[0] == h2client.RST_STREAM and f[2] == 1]
                self.assertTrue(resets, frames)
                self.assertEqual(int.from_bytes(resets[0][3], "big"), h2client.CANCEL)
            # A client that stops reading TCP altogether is closed after idle_timeout.
            c = H2Client(m.listen_address)
            try:
                c.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2**31 - 1})
                c.conn.increment_flow_control_window(2**30)
                c.request("GET", "/big?size=200000000")
                c._flush()

                def connections():
                    return m.metric("meridian_downstream_connections_active",
                                    {"listener": "main"})
                wait_until(lambda: connections() == 1, timeout=5)
                wait_until(lambda: connections() == 0, timeout=15,
                           message="the connection of a client that reads nothing closed")
            finally:
                c.close()

    def test_goaway_when_a_reload_removes_the_listener(self):
        second = free_port()
        subs = {"o1": self.origin.address,
                "extra": SECOND_LISTENER.replace("{second}", f"127.0.0.1:{second}")}
        with Meridian(RELOAD_CONFIG, subs) as m:
            with H2Client(f"127.0.0.1:{second}") as c:
                self.assertEqual(c.get("/before").status, 200)
                m.write_config(RELOAD_CONFIG, {"extra": ""})
                self.assertEqual(m.reload().status, 200)
                c.run_until(lambda: c.goaway is not None, timeout=10)
                self.assertEqual(c.goaway[0], 0)
                c.run_until(lambda: c.closed or not c.pump(), timeout=10)
            # The main listener still speaks HTTP/2.
            with H2Client(m.listen_address) as c:
                self.assertEqual(c.get("/after").status, 200)


if __name__ == "__main__":
    unittest.main()
