"""Basic proxying: method round trips, headers passed through, keep-alive reuse towards the
origin, Expect: 100-continue, and the admin liveness endpoint (GET /health)."""

import hashlib
import time
import unittest

from harness import (HttpConn, Meridian, one_backend_config, OneOriginTestCase, Origin,
                     pattern_bytes, pattern_sha256, upload_pattern)

CONFIG = one_backend_config(node="edge-basic")

# Headers meridian adds or rewrites on the way to the origin (docs/http-behaviour.md, headers).
ADDED = {"x-forwarded-for", "x-forwarded-proto", "x-request-id", "via"}


class ProxyBasicTest(OneOriginTestCase):
    CONFIG = CONFIG

    # ---- method round trips ----------------------------------------------------------------

    def test_get_round_trip(self):
        r = self.meridian.get("/items/42?a=1&b=two", [("Accept", "application/json")])
        self.assertEqual(r.status, 200, r.text())
        self.assertEqual(r.header("X-Origin-Name"), "o1")
        rep = r.json()
        self.assertEqual(rep["method"], "GET")
        self.assertEqual(rep["target"], "/items/42?a=1&b=two")
        self.assertEqual(rep["body_length"], 0)
        self.assertEqual(self.origin.requests("/items/42"), 1)

    def test_post_put_delete_round_trips_with_bodies(self):
        with self.meridian.conn() as c:
            for method, body in (("POST", b'{"k": "v"}'), ("PUT", pattern_bytes(300000)),
                                 ("DELETE", None), ("POST", b"")):
                with self.subTest(method=method, size=None if body is None else len(body)):
                    r = c.request(method, f"/res/{method.lower()}", body=body)
                    self.assertEqual(r.status, 200, r.text())
                    rep = r.json()
                    self.assertEqual(rep["method"], method)
                    self.assertEqual(rep["path"], f"/res/{method.lower()}")
                    expect = body or b""
                    self.assertEqual(rep["body_length"], len(expect))
                    self.assertEqual(rep["body_sha256"], hashlib.sha256(expect).hexdigest())
        log = self.origin.log()
        self.assertEqual([e["method"] for e in log], ["POST", "PUT", "DELETE", "POST"])

    def test_head_has_no_body_and_connection_stays_usable(self):
        with self.meridian.conn() as c:
            r = c.request("HEAD", "/h?size=5000")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.header("Content-Length"), "5000")
            self.assertEqual(r.body, b"")
            r2 = c.request("GET", "/after-head")
            self.assertEqual(r2.status, 200)
            self.assertEqual(r2.json()["path"], "/after-head")

    def test_non_200_status_relayed(self):
        for status in (201, 204, 301, 404, 418, 500, 503):
            with self.subTest(status=status):
                r = self.meridian.get(f"/s?status={status}")
                self.assertEqual(r.status, status)
                self.assertEqual(r.header("X-Origin-Name"), "o1")

    # ---- headers passed through ------------------------------------------------------------

    def test_custom_request_headers_reach_origin_in_order(self):
        sent = [("X-Alpha", "1"), ("X-Beta", "two words, with comma"), ("X-Alpha", "3"),
                ("X-Gamma", "tab\tinside"), ("Accept-Language", "de-DE, en;q=0.5"),
                ("Cookie", "a=1; b=2"), ("X-Empty", "")]
        r = self.meridian.get("/hdr", sent)
        self.assertEqual(r.status, 200)
        got = [(n.lower(), v) for n, v in r.json()["headers"]
               if n.lower() not in ADDED and n.lower() != "host"]
        # Meridian may add e.g. Content-Length: 0 or Connection: keep-alive of its own; the
        # client's fields must all be there, with the same values, in the same order.
        got = [(n, v) for n, v in got if n in {s.lower() for s, _ in sent}]
        self.assertEqual(got, [(n.lower(), v) for n, v in sent])

    def test_custom_response_headers_reach_client(self):
        r = self.meridian.get("/rh?header=X-Custom:abc%20def&header=X-Multi:1"
                              "&header=X-Multi:2&header=Set-Cookie:s=1&header=Set-Cookie:t=2"
                              "&header=Cache-Control:max-age%3D60")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("X-Custom"), "abc def")
        self.assertEqual(r.header_all("X-Multi"), ["1", "2"])
        self.assertEqual(r.header_all("Set-Cookie"), ["s=1", "t=2"])
        self.assertEqual(r.header("Cache-Control"), "max-age=60")
        self.assertEqual(r.header("Content-Type"), "application/json")

    # ---- keep-alive ----------------------------------------------------------------------

    def test_keepalive_reuse_100_requests(self):
        statuses = []
        with self.meridian.conn() as c:
            for i in range(100):
                r = c.request("GET", f"/ka/{i}")
                statuses.append(r.status)
                self.assertFalse(r.will_close, f"meridian closed the connection at {i}: {r!r}")
        self.assertEqual(statuses, [200] * 100)
        st = self.origin.stats()
        self.assertEqual(st["requests"], 100)
        self.assertLessEqual(st["connections_accepted"], 2,
                             f"100 sequential requests opened {st['connections_accepted']} "
                             f"upstream connections")

    # ---- Expect: 100-continue ----------------------------------------------------------------

    def test_keepalive_connection_idle_past_the_shrink_still_serves(self):
        # An idle keep-alive connection gives its buffers back after 100 ms and waits for
        # readability instead; the next request, whole or in pieces, is served as before.
        with self.meridian.conn() as c:
            for i in range(3):
                self.assertEqual(c.request("GET", f"/idle/{i}").status, 200)
                time.sleep(0.35)  # a real idle gap: past the shrink (and its 100 ms sweep)
            c.send(b"GET /idle/split HTTP/1.1\r\nHo")
            time.sleep(0.35)
            c.send(b"st: example.test\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json()["path"], "/idle/split")
            # A POST with a body after the idle gap, and a pipelined pair.
            time.sleep(0.35)
            self.assertEqual(c.request("POST", "/idle/post", body=b"x" * 10000).json()
                             ["body_length"], 10000)
            time.sleep(0.35)
            c.send(b"GET /p/1 HTTP/1.1\r\nHost: t\r\n\r\nGET /p/2 HTTP/1.1\r\nHost: t\r\n\r\n")
            self.assertEqual(c.read_response().json()["path"], "/p/1")
            self.assertEqual(c.read_response().json()["path"], "/p/2")

    def test_expect_100_continue_upload(self):
        size = 200000
        with self.meridian.conn() as c:
            r = upload_pattern(c, "PUT", "/expect", size, expect_continue=True)
            self.assertEqual(r.status, 200, r.text())
            self.assertEqual([i.status for i in r.interim], [100],
                             "client should get exactly one 100 Continue before the 200")
            rep = r.json()
            self.assertEqual(rep["body_length"], size)
            self.assertEqual(rep["body_sha256"], pattern_sha256(size))
            # The connection is still good afterwards.
            self.assertEqual(c.request("GET", "/after-expect").status, 200)

    # ---- admin -------------------------------------------------------------------------------

    def test_admin_health(self):
        r = self.meridian.admin("GET", "/health")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.text().strip(), "ok")


class TwoClientsTest(unittest.TestCase):
    def test_concurrent_clients_each_get_their_own_answer(self):
        with Origin("o1") as o, Meridian(CONFIG, {"o1": o.address}) as m:
            conns = [HttpConn(m.listen_address) for _ in range(5)]
            try:
                for i, c in enumerate(conns):
                    c.send_request("GET", f"/c/{i}?delay_ms=100")
                for i, c in enumerate(conns):
                    r = c.read_response()
                    self.assertEqual(r.status, 200)
                    self.assertEqual(r.json()["path"], f"/c/{i}")
            finally:
                for c in conns:
                    c.close()


if __name__ == "__main__":
    unittest.main()
