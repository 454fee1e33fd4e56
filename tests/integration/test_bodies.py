"""Request and response bodies: chunked both ways, HTTP/1.0 clients, trailers, medium-size
bodies streamed through meridian."""

import hashlib
import unittest

from harness import (one_backend_config, OneOriginTestCase, parse_responses, pattern_bytes,
                     pattern_sha256, PatternSink, raw_exchange, split_address, upload_pattern)

CONFIG = one_backend_config(node="edge-bodies")


class BodiesTest(OneOriginTestCase):
    CONFIG = CONFIG

    # ---- chunked uploads -------------------------------------------------------------------

    def test_chunked_upload_reaches_origin_intact(self):
        size = 5 * 1024 * 1024 + 17
        with self.meridian.conn() as c:
            # Odd chunk sizes so chunk boundaries never line up with meridian's buffers.
            r = upload_pattern(c, "POST", "/up-chunked", size, chunked=True, block=65537)
            self.assertEqual(r.status, 200, r.text())
            rep = r.json()
            self.assertEqual(rep["body_length"], size)
            self.assertEqual(rep["body_sha256"], pattern_sha256(size))
            # Keep-alive still works after a chunked request body.
            r2 = c.request("POST", "/after", body=b"tail")
            self.assertEqual(r2.json()["body_length"], 4)

    def test_chunked_upload_many_tiny_chunks(self):
        pieces = [pattern_bytes(n, offset=sum(range(1, n))) for n in range(1, 200)]
        data = b"".join(pieces)
        with self.meridian.conn() as c:
            r = c.request("PUT", "/tiny-chunks", body=iter(pieces))
        self.assertEqual(r.status, 200)
        rep = r.json()
        self.assertEqual(rep["body_length"], len(data))
        self.assertEqual(rep["body_sha256"], hashlib.sha256(data).hexdigest())

    def test_chunked_upload_with_extensions_and_split_writes(self):
        host, port = split_address(self.meridian.listen_address)
        body = (b"5;name=value\r\nhello\r\n"
                b"6\r\n world\r\n"
                b"0\r\n\r\n")
        head = (b"POST /ext HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n"
                b"Connection: close\r\n\r\n")
        # Split everywhere, one byte at a time through the chunk framing.
        res = raw_exchange(host, port, head, chunks=[body[i:i + 1] for i in range(len(body))],
                           timeout=10)
        responses, rest = parse_responses(res.data)
        self.assertEqual(len(responses), 1, res)
        self.assertEqual(responses[0].status, 200, res)
        rep = responses[0].json()
        self.assertEqual(rep["body_length"], 11)
        self.assertEqual(rep["body_sha256"], hashlib.sha256(b"hello world").hexdigest())

    def test_content_length_upload_medium(self):
        size = 8 * 1024 * 1024
        with self.meridian.conn() as c:
            r = upload_pattern(c, "PUT", "/up-cl", size)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["body_length"], size)
        self.assertEqual(r.json()["body_sha256"], pattern_sha256(size))

    # ---- chunked responses -----------------------------------------------------------------

    def test_chunked_response_to_http11_client(self):
        size = 3 * 1024 * 1024 + 5
        with self.meridian.conn() as c:
            sink = PatternSink()
            r = c.request("GET", f"/down-chunked?size={size}&chunked=1&chunk_size=10007",
                          sink=sink)
            self.assertEqual(r.status, 200)
            self.assertTrue(sink.ok(size), f"length {sink.length}, mismatch at "
                                           f"{sink.mismatch_at}")
            self.assertNotEqual(r.framing, "close", "a 1.1 client should keep the connection")
            # The connection is reusable after the chunked response.
            self.assertEqual(c.request("GET", "/after").status, 200)

    def test_chunked_response_trailers_do_not_break_framing(self):
        with self.meridian.conn() as c:
            r = c.request("GET", "/trail?size=1000&chunked=1&chunk_size=100"
                                 "&trailer=X-Checksum:abc")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.body, pattern_bytes(1000))
            r2 = c.request("GET", "/after-trailers")
            self.assertEqual(r2.status, 200)
            self.assertEqual(r2.json()["path"], "/after-trailers")

    def test_chunked_response_to_http10_client_is_close_delimited(self):
        size = 1000003
        host, port = split_address(self.meridian.listen_address)
        req = (f"GET /down10?size={size}&chunked=1&chunk_size=4096 HTTP/1.0\r\n"
               f"Host: example.test\r\n\r\n").encode()
        res = raw_exchange(host, port, req, timeout=10)
        self.assertEqual(res.ended, "eof", "meridian must close to end the body")
        responses, rest = parse_responses(res.data)
        self.assertEqual(len(responses), 1, res)
        r = responses[0]
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header_all("Transfer-Encoding"), [],
                         "an HTTP/1.0 client cannot be sent chunked")
        self.assertEqual(r.framing, "close", r)
        self.assertEqual(len(r.body), size)
        self.assertEqual(r.body, pattern_bytes(size))
        self.assertEqual(rest, b"")

    def test_http10_client_content_length_response(self):
        host, port = split_address(self.meridian.listen_address)
        req = b"GET /plain10?size=5000 HTTP/1.0\r\nHost: example.test\r\n\r\n"
        res = raw_exchange(host, port, req, timeout=10)
        responses, _ = parse_responses(res.data)
        self.assertEqual(len(responses), 1, res)
        self.assertEqual(responses[0].status, 200)
        self.assertEqual(responses[0].body, pattern_bytes(5000))
        self.assertEqual(res.ended, "eof", "HTTP/1.0 without keep-alive: meridian closes")

    def test_large_fixed_response(self):
        size = 16 * 1024 * 1024
        with self.meridian.conn() as c:
            sink = PatternSink()
            r = c.request("GET", f"/big?size={size}", sink=sink)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Length"), str(size))
        self.assertTrue(sink.ok(size), (sink.length, sink.mismatch_at))

    def test_upload_and_download_alternating_on_one_connection(self):
        with self.meridian.conn() as c:
            for i, size in enumerate((0, 1, 65535, 65536, 65537, 1000000)):
                with self.subTest(size=size):
                    r = c.request("POST", f"/alt/{i}", body=pattern_bytes(size))
                    self.assertEqual(r.json()["body_length"], size)
                    self.assertEqual(r.json()["body_sha256"], pattern_sha256(size))
                    sink = PatternSink()
                    r = c.request("GET", f"/alt-down/{i}?size={size}", sink=sink)
                    self.assertTrue(sink.ok(size), (sink.length, sink.mismatch_at))


if __name__ == "__main__":
    unittest.main()
