"""Answers meridian gives itself (and the `limits` keys): 502 refused / reset / garbage, 504
slow upstream, 414, 431, 413 -- the size limits never reaching the origin."""

import unittest

from harness import (Meridian, Origin, free_port, parse_responses, raw_exchange,
                     split_address)

CONFIG = """
node: {name: edge-errors}
workers: 2
admin:
  listen: "{admin}"
limits:
  max_request_header_bytes: 4KiB
  max_request_headers: 20
  max_request_body_bytes: 1KiB
listeners:
  - name: public
    listen: "{listen}"
    routes:
      - {name: dead, match: {path_prefix: /dead}, backend: dead, retries: 2}
      - {name: all, backend: live, timeout: 1s, retries: 2}
backends:
  - name: live
    regions:
      - name: r1
        location: {lat: 50.0, lon: 8.0}
        endpoints: [{address: "{o1}"}]
  - name: dead
    regions:
      - name: r1
        location: {lat: 50.0, lon: 8.0}
        endpoints: [{address: "{dead}"}]
"""


class ErrorsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.origin = Origin("o1").start()
        try:
            cls.meridian = Meridian(CONFIG, {"o1": cls.origin.address,
                                             "dead": f"127.0.0.1:{free_port()}"}).__enter__()
        except BaseException:
            cls.origin.stop()
            raise
        cls.host, cls.port = split_address(cls.meridian.listen_address)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.meridian.__exit__(None, None, None)
        finally:
            cls.origin.stop()

    def setUp(self):
        self.origin.reset_stats()

    def assert_own_answer(self, r, status):
        """A response meridian produced itself: the status, a short text/plain body."""
        self.assertEqual(r.status, status, r)
        self.assertIsNone(r.header("X-Origin-Name"), "this answer came from the origin")
        ctype = (r.header("Content-Type") or "").split(";")[0].strip().lower()
        self.assertEqual(ctype, "text/plain", r)
        self.assertTrue(r.body, "a short body naming the cause")

    def assert_origin_untouched(self):
        self.assertEqual(self.origin.log(), [], "the origin received a request")
        self.assertEqual(self.origin.stats()["bad_requests"], 0,
                         "the origin received a malformed request")

    def exchange(self, data, **kwargs):
        """Send raw bytes; return (the single parsed response, RawResult)."""
        res = raw_exchange(self.host, self.port, data, timeout=kwargs.pop("timeout", 5),
                           **kwargs)
        responses, rest = parse_responses(res.data)
        self.assertEqual(len(responses), 1, f"expected exactly one response, got {res!r}")
        return responses[0], res

    # ---- upstream failures -----------------------------------------------------------------

    def test_502_connection_refused(self):
        r = self.meridian.get("/dead/x")
        self.assert_own_answer(r, 502)

    def test_502_reset_before_response_idempotent(self):
        r = self.meridian.get("/reset?reset_before=1")
        self.assert_own_answer(r, 502)
        tries = len(self.origin.log(path="/reset"))
        # One endpoint: meridian may retry it, but at most `retries` (2) times.
        self.assertGreaterEqual(tries, 1)
        self.assertLessEqual(tries, 3)

    def test_502_reset_before_response_post_with_body_not_retried(self):
        with self.meridian.conn() as c:
            r = c.request("POST", "/reset-post?reset_before=1", body=b"payload")
        self.assert_own_answer(r, 502)
        self.assertEqual(len(self.origin.log(path="/reset-post")), 1,
                         "a non-idempotent request whose body was sent is not "
                         "retried")

    def test_502_garbage_response(self):
        r = self.meridian.get("/garbage?garbage=1")
        self.assert_own_answer(r, 502)
        self.assertNotIn(b"SSH-2.0", r.body, "garbage relayed to the client")

    def test_504_slow_upstream(self):
        # The route's timeout is 1 s and the origin answers 200 after 3 s: a 504 shows the
        # timeout cut the wait (no timing assertion needed).
        r = self.meridian.get("/slow?delay_ms=3000")
        self.assert_own_answer(r, 504)
        self.assertEqual(len(self.origin.log(path="/slow")), 1,
                         "a response timeout is not a connect failure: no retry")

    def test_proxy_still_serves_after_failures(self):
        self.assertEqual(self.meridian.get("/dead/again").status, 502)
        self.assertEqual(self.meridian.get("/g?garbage=1").status, 502)
        r = self.meridian.get("/fine")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("X-Origin-Name"), "o1")

    def test_keepalive_connection_after_502_routes_next_request(self):
        with self.meridian.conn() as c:
            r = c.request("GET", "/dead/ka")
            self.assert_own_answer(r, 502)
            if r.will_close:
                return  # closing after a 502 is allowed
            r2 = c.request("GET", "/after-502")
            self.assertEqual(r2.status, 200, r2)
            self.assertEqual(r2.header("X-Origin-Name"), "o1")

    # ---- size limits -------------------------------------------------------------------------

    def test_414_request_line_too_long(self):
        target = "/long?" + "a" * 5000
        r, _ = self.exchange(f"GET {target} HTTP/1.1\r\nHost: example.test\r\n\r\n".encode())
        self.assert_own_answer(r, 414)
        self.assert_origin_untouched()

    def test_431_too_many_headers(self):
        fields = "".join(f"X-Field-{i}: {i}\r\n" for i in range(30))  # ~500 bytes, 31 fields
        r, _ = self.exchange(f"GET /many HTTP/1.1\r\nHost: example.test\r\n{fields}\r\n"
                             .encode())
        self.assert_own_answer(r, 431)
        self.assert_origin_untouched()

    def test_431_header_block_too_large(self):
        fields = "".join(f"X-Big-{i}: {'v' * 2000}\r\n" for i in range(3))  # 6 KiB, 4 fields
        r, _ = self.exchange(f"GET /big-head HTTP/1.1\r\nHost: example.test\r\n{fields}\r\n"
                             .encode())
        self.assert_own_answer(r, 431)
        self.assert_origin_untouched()

    def test_headers_just_under_limits_pass(self):
        fields = [(f"X-Ok-{i}", "v" * 100) for i in range(15)]  # 16 fields, ~1.9 KiB
        r = self.meridian.get("/under", fields)
        self.assertEqual(r.status, 200)
        self.assertEqual(len(self.origin.log(path="/under")), 1)

    def test_413_content_length_over_limit(self):
        body = b"x" * 2048
        r, _ = self.exchange(b"POST /upload HTTP/1.1\r\nHost: example.test\r\n"
                             b"Content-Length: 2048\r\n\r\n" + body)
        self.assert_own_answer(r, 413)
        self.assert_origin_untouched()

    def test_413_content_length_over_limit_head_only(self):
        # The client waits for an answer before sending its body: meridian must answer
        # from the head alone.
        r, _ = self.exchange(b"POST /upload HTTP/1.1\r\nHost: example.test\r\n"
                             b"Content-Length: 1000000\r\n\r\n")
        self.assert_own_answer(r, 413)
        self.assert_origin_untouched()

    def test_413_chunked_body_over_limit(self):
        chunk = b"y" * 700
        body = b"".join(b"%x\r\n" % len(chunk) + chunk + b"\r\n" for _ in range(4)) + \
            b"0\r\n\r\n"
        r, _ = self.exchange(b"POST /upload-chunked HTTP/1.1\r\nHost: example.test\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n", chunks=[body])
        self.assert_own_answer(r, 413)
        self.assert_origin_untouched()

    def test_body_at_limit_passes(self):
        with self.meridian.conn() as c:
            r = c.request("POST", "/at-limit", body=b"z" * 1024)
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json()["body_length"], 1024)
            r = c.request("POST", "/at-limit-chunked", body=iter([b"z" * 512, b"z" * 512]))
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json()["body_length"], 1024)


if __name__ == "__main__":
    unittest.main()
