"""The malformed-input suite (docs/hardening.md): raw bytes on a real connection, each case
asserting the documented answer (docs/http-behaviour.md, input that is refused) and that the
origin received nothing it should not -- in particular no second ("smuggled") request hidden in
a body, a chunk or a pipelined message. Complements test_malformed.py (one test per refusal
rule) with the request-smuggling catalogue: CL.TE, TE.CL, Content-Length duplicates, obfuscated
Transfer-Encoding, bad chunk sizes, chunk extension abuse, field syntax, absolute-form,
HTTP/0.9, oversized lines and header sections, a malformed request pipelined behind a good one,
Expect: 100-continue and CONNECT.
"""

import json
import unittest

from harness import (OneOriginTestCase, one_backend_config, parse_responses, raw_exchange,
                     split_address)

H = b"Host: example.test\r\n"
SMUGGLED = b"GET /smuggled HTTP/1.1\r\n" + H + b"\r\n"

# (name, raw request, status). Each is refused: one answer from meridian, the connection
# closed, the origin untouched. A smuggled request follows wherever a parser that got the
# framing wrong would read one.
REFUSED = [
    ("CL.TE", b"POST /a HTTP/1.1\r\n" + H + b"Content-Length: 6\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED, 400),
    ("TE.CL", b"POST /a HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n"
     b"Content-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n" + SMUGGLED, 400),
    ("differing Content-Length", b"POST /a HTTP/1.1\r\n" + H +
     b"Content-Length: 5\r\nContent-Length: 50\r\n\r\nhello" + SMUGGLED, 400),
    ("Content-Length list of differing values", b"POST /a HTTP/1.1\r\n" + H +
     b"Content-Length: 5, 6\r\n\r\nhello!", 400),
    ("negative Content-Length", b"POST /a HTTP/1.1\r\n" + H + b"Content-Length: -5\r\n\r\n",
     400),
    ("Content-Length overflow", b"POST /a HTTP/1.1\r\n" + H +
     b"Content-Length: 99999999999999999999999\r\n\r\n", 400),
    ("Content-Length with a plus", b"POST /a HTTP/1.1\r\n" + H + b"Content-Length: +5\r\n\r\n"
     b"hello", 400),
    ("TE on an obs-fold line", b"POST /a HTTP/1.1\r\n" + H + b"X-A: 1\r\n"
     b" Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello", 400),
    ("whitespace before the first field line", b"POST /a HTTP/1.1\r\n"
     b" Transfer-Encoding: chunked\r\n" + H + b"\r\n0\r\n\r\n", 400),
    ("TE with whitespace before the colon", b"POST /a HTTP/1.1\r\n" + H +
     b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + SMUGGLED, 400),
    ("TE chunked, identity", b"POST /a HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + SMUGGLED, 400),
    ("TE xchunked", b"POST /a HTTP/1.1\r\n" + H + b"Transfer-Encoding: xchunked\r\n\r\n"
     b"0\r\n\r\n" + SMUGGLED, 400),
    ("TE chunked twice in one field", b"POST /a HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400),
    # Stricter than RFC 9112 6.3 (which refuses a coding list not ending in chunked): a second
    # Transfer-Encoding field is refused whatever it says, as a smuggling signal.
    ("TE in two fields", b"POST /a HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("TE with a vertical tab", b"POST /a HTTP/1.1\r\n" + H +
     b"Transfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n", 400),
    ("TE in HTTP/1.0", b"POST /a HTTP/1.0\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
     b"0\r\n\r\n" + SMUGGLED, 400),
    ("negative chunk size", b"POST /a HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
     b"-5\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk size overflow", b"POST /a HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
     b"fffffffffffffffff1\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk size with 0x", b"POST /a HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
     b"0x5\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk size not hex", b"POST /a HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
     b"5g\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk data longer than its size", b"POST /a HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n" + SMUGGLED, 400),
    ("chunk with a bare LF", b"POST /a HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
     b"5\nhello\r\n0\r\n\r\n", 400),
    ("bare LF in the head", b"GET /a HTTP/1.1\n" + H + b"\n", 400),
    ("bare CR in a field", b"GET /a HTTP/1.1\r\n" + H + b"X-A: 1\r2\r\n\r\n", 400),
    ("obs-fold", b"GET /a HTTP/1.1\r\n" + H + b"X-A: 1\r\n\t2\r\n\r\n", 400),
    ("whitespace before the colon", b"GET /a HTTP/1.1\r\n" + H + b"X-A : 1\r\n\r\n", 400),
    ("NUL in a field value", b"GET /a HTTP/1.1\r\n" + H + b"X-A: 1\x002\r\n\r\n", 400),
    ("NUL in a field name", b"GET /a HTTP/1.1\r\n" + H + b"X-\x00A: 1\r\n\r\n", 400),
    ("control character in a field value", b"GET /a HTTP/1.1\r\n" + H +
     b"X-A: 1\x012\r\n\r\n", 400),
    ("DEL in a field value", b"GET /a HTTP/1.1\r\n" + H + b"X-A: 1\x7f2\r\n\r\n", 400),
    ("space in a field name", b"GET /a HTTP/1.1\r\n" + H + b"X A: 1\r\n\r\n", 400),
    ("empty field name", b"GET /a HTTP/1.1\r\n" + H + b": 1\r\n\r\n", 400),
    ("absolute-form whose authority differs from Host", b"GET http://other.test/a HTTP/1.1\r\n"
     + H + b"\r\n", 400),
    ("absolute-form with a bad scheme", b"GET ftp://example.test/a HTTP/1.1\r\n" + H + b"\r\n",
     400),
    ("HTTP/0.9", b"GET /a\r\n", 400),
    ("HTTP/0.9 with a smuggled one behind", b"GET /a\r\n" + SMUGGLED, 400),
    ("unsupported version", b"GET /a HTTP/1.2\r\n" + H + b"\r\n", 505),
    ("lower-case version", b"GET /a http/1.1\r\n" + H + b"\r\n", 400),
    ("two spaces in the request line", b"GET  /a HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("CONNECT", b"CONNECT example.test:443 HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("oversized request line", b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n" + H + b"\r\n", 414),
    ("too many header fields", b"GET /a HTTP/1.1\r\n" + H +
     b"".join(b"X-F%d: v\r\n" % i for i in range(150)) + b"\r\n", 431),
    ("oversized header section", b"GET /a HTTP/1.1\r\n" + H + b"X-Big: " + b"b" * 70000 +
     b"\r\n\r\n", 431),
    ("no Host", b"GET /a HTTP/1.1\r\n\r\n", 400),
    ("two Hosts", b"GET /a HTTP/1.1\r\n" + H + H + b"\r\n", 400),
]


class RequestSmugglingTest(OneOriginTestCase):
    CONFIG = one_backend_config(node="edge-smuggling")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.host, cls.port = split_address(cls.meridian.listen_address)

    def exchange(self, data, **kwargs):
        res = raw_exchange(self.host, self.port, data, timeout=5, **kwargs)
        responses, _ = parse_responses(res.data)
        return res, responses

    def assert_nothing_forwarded(self, what, body_error=False):
        # requests counts every head the origin parsed, even one whose body never came. A
        # body that turns out malformed after its head went upstream (bodies stream)
        # ends the upstream connection mid-request: the origin never gets a whole request.
        if not body_error:
            self.assertEqual(self.origin.requests(), 0, f"a head reached the origin: {what}")
        self.assertEqual(self.origin.log(), [], f"forwarded to the origin: {what}")
        self.assertEqual(self.origin.bad_requests(), [], f"reached the origin: {what}")

    def test_refused_cases(self):
        for name, data, status in REFUSED:
            with self.subTest(name):
                self.origin.reset_stats()
                res, responses = self.exchange(data)
                self.assertEqual([r.status for r in responses], [status],
                                 f"{name}: {res!r}")
                self.assertIsNone(responses[0].header("X-Origin-Name"))
                self.assertNotEqual(res.ended, "timeout", f"{name}: connection left open")
                self.assert_nothing_forwarded(name)

    def test_identical_content_lengths_are_one(self):
        # RFC 9110 8.6 lets a recipient take identical values as one (HAProxy does; differing
        # ones are refused): the upstream gets a single Content-Length and the body, and what
        # follows the body is a request of its own, answered in order.
        for fields in (b"Content-Length: 5\r\nContent-Length: 5\r\n", b"Content-Length: 5, 5\r\n"):
            with self.subTest(fields=fields):
                self.origin.reset_stats()
                res, responses = self.exchange(
                    b"POST /dup HTTP/1.1\r\n" + H + fields + b"\r\nhello"
                    + b"GET /next HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
                self.assertEqual([r.status for r in responses], [200, 200], res)
                log = self.origin.log()
                self.assertEqual([e["path"] for e in log], ["/dup", "/next"])
                self.assertEqual(log[0]["body_length"], 5)
                lengths = [v for n, v in log[0]["headers"] if n.lower() == "content-length"]
                self.assertEqual(lengths, ["5"])

    def test_chunk_extension_abuse(self):
        # A chunk header that never ends (64 KiB of extension) is refused; a reasonable
        # extension passes and is not forwarded (the chunks are re-encoded).
        head = b"POST /ext HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
        res, responses = self.exchange(head + b"5;" + b"e" * 70000 + b"\r\nhello\r\n0\r\n\r\n")
        self.assertEqual([r.status for r in responses], [400], res)
        self.assert_nothing_forwarded("a 70 KB chunk extension", body_error=True)
        res, responses = self.exchange(head + b"5;name=value;x=\"q\"\r\nhello\r\n0\r\n\r\n"
                                       + b"GET /after HTTP/1.1\r\n" + H
                                       + b"Connection: close\r\n\r\n")
        self.assertEqual([r.status for r in responses], [200, 200], res)
        log = self.origin.log()
        self.assertEqual([e["path"] for e in log], ["/ext", "/after"])
        self.assertEqual(log[0]["body_length"], 5)

    def test_pipelined_malformed_second_request(self):
        data = (b"GET /first HTTP/1.1\r\n" + H + b"\r\n"
                b"GET /second HTTP/1.1\r\n" + H + b"X-A: 1\x002\r\n\r\n" + SMUGGLED)
        res, responses = self.exchange(data)
        self.assertEqual([r.status for r in responses], [200, 400], res)
        self.assertEqual([e["path"] for e in self.origin.log()], ["/first"])

    def test_smuggled_request_in_a_body_is_body(self):
        # A well-framed body that looks like a request is a body: forwarded as such, never
        # read as a second request.
        body = SMUGGLED
        data = (b"POST /carrier HTTP/1.1\r\n" + H + b"Content-Length: %d\r\n"
                b"Connection: close\r\n\r\n" % len(body)) + body
        res, responses = self.exchange(data)
        self.assertEqual([r.status for r in responses], [200], res)
        log = self.origin.log()
        self.assertEqual([e["path"] for e in log], ["/carrier"])
        self.assertEqual(log[0]["body_length"], len(body))

    def test_absolute_form_is_forwarded_in_origin_form(self):
        res, responses = self.exchange(b"GET http://example.test/abs?q=1 HTTP/1.1\r\n" + H +
                                       b"Connection: close\r\n\r\n")
        self.assertEqual([r.status for r in responses], [200], res)
        log = self.origin.log()
        self.assertEqual(log[0]["target"], "/abs?q=1")
        headers = {n.lower(): v for n, v in log[0]["headers"]}
        self.assertEqual(headers["host"], "example.test")

    def test_expect_100_continue(self):
        res = raw_exchange(self.host, self.port,
                           b"POST /expect HTTP/1.1\r\n" + H + b"Content-Length: 5\r\n"
                           b"Expect: 100-continue\r\nConnection: close\r\n\r\n",
                           chunks=[b"hello"], chunk_interval=0.2, timeout=5)
        self.assertTrue(res.data.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), res.data[:200])
        rest, _ = parse_responses(res.data[len(b"HTTP/1.1 100 Continue\r\n\r\n"):])
        self.assertEqual([r.status for r in rest], [200])
        log = self.origin.log()
        self.assertEqual(log[0]["body_length"], 5)
        headers = {n.lower() for n, _ in log[0]["headers"]}
        self.assertNotIn("expect", headers, "meridian answers 100-continue itself")

    def test_transfer_encoding_upper_case_is_chunked(self):
        # Token comparison is case-insensitive (RFC 9112 7): not a refusal, not a bypass.
        res, responses = self.exchange(b"POST /te HTTP/1.1\r\n" + H +
                                       b"Transfer-Encoding: CHUNKED\r\nConnection: close\r\n\r\n"
                                       b"5\r\nhello\r\n0\r\n\r\n")
        self.assertEqual([r.status for r in responses], [200], res)
        self.assertEqual(self.origin.log()[0]["body_length"], 5)


if __name__ == "__main__":
    unittest.main()
