"""Input that is refused with 400 (505 for an unsupported version), the connection closed, and
nothing of it forwarded to the origin (request smuggling defences)."""

import unittest

from harness import (one_backend_config, OneOriginTestCase, Origin, parse_responses, raw_exchange,
                     split_address)

CONFIG = one_backend_config(node="edge-malformed")

H = b"Host: example.test\r\n"


class MalformedTest(OneOriginTestCase):
    CONFIG = CONFIG

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.host, cls.port = split_address(cls.meridian.listen_address)

    def refused(self, data, status=400):
        """Send `data`; expect exactly one `status` answer from meridian, the connection
        closed, and nothing at the origin."""
        res = raw_exchange(self.host, self.port, data, timeout=5)
        responses, rest = parse_responses(res.data)
        self.assertGreaterEqual(len(responses), 1, f"no response to {data!r}: {res!r}")
        r = responses[0]
        self.assertEqual(r.status, status, f"request {data!r} answered {r!r} {r.body!r}")
        self.assertIsNone(r.header("X-Origin-Name"), f"the origin answered {data!r}")
        self.assertEqual(len(responses), 1, f"more than one response to {data!r}: {res!r}")
        self.assertNotEqual(res.ended, "timeout",
                            f"meridian did not close the connection after {status}")
        self.assert_origin_untouched(data)
        return r

    def assert_origin_untouched(self, data=b""):
        self.assertEqual(self.origin.log(), [], f"forwarded to the origin: {data!r}")
        self.assertEqual(self.origin.bad_requests(), [],
                         f"malformed request reached the origin: {data!r}")

    # ---- framing -----------------------------------------------------------------------------

    def test_content_length_and_transfer_encoding(self):
        self.refused(b"POST /clte HTTP/1.1\r\n" + H +
                     b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"0\r\n\r\n")

    def test_transfer_encoding_and_content_length_reversed_order(self):
        self.refused(b"POST /tecl HTTP/1.1\r\n" + H +
                     b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"
                     b"0\r\n\r\n")

    def test_differing_content_lengths(self):
        self.refused(b"POST /cl2 HTTP/1.1\r\n" + H +
                     b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nxx")

    def test_differing_content_lengths_in_one_field(self):
        self.refused(b"POST /cl2b HTTP/1.1\r\n" + H + b"Content-Length: 1, 2\r\n\r\nxx")

    def test_invalid_content_length(self):
        for value in (b"-1", b"abc", b"1e3", b"+5"):
            with self.subTest(value=value):
                self.refused(b"POST /clbad HTTP/1.1\r\n" + H + b"Content-Length: " + value +
                             b"\r\n\r\n")
                self.origin.reset_stats()

    def test_transfer_encoding_not_ending_in_chunked(self):
        for te in (b"chunked, gzip", b"gzip", b"identity"):
            with self.subTest(te=te):
                self.refused(b"POST /te HTTP/1.1\r\n" + H + b"Transfer-Encoding: " + te +
                             b"\r\n\r\n0\r\n\r\n")
                self.origin.reset_stats()

    def test_invalid_chunk_size(self):
        self.refused(b"POST /chunk HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
                     b"zz\r\nhello\r\n0\r\n\r\n")

    # ---- head syntax -------------------------------------------------------------------------

    def test_bare_lf_in_header_section(self):
        self.refused(b"GET /lf HTTP/1.1\r\n" + H + b"X-A: 1\nX-B: 2\r\n\r\n")

    def test_bare_lf_everywhere(self):
        self.refused(b"GET /lf2 HTTP/1.1\nHost: example.test\nX-A: 1\n\n")

    def test_obs_fold(self):
        self.refused(b"GET /fold HTTP/1.1\r\n" + H + b"X-A: first\r\n  continued\r\n\r\n")

    def test_whitespace_before_colon(self):
        self.refused(b"GET /ws HTTP/1.1\r\n" + H + b"X-A : 1\r\n\r\n")

    def test_whitespace_before_colon_on_framing_header(self):
        self.refused(b"POST /ws2 HTTP/1.1\r\n" + H +
                     b"Transfer-Encoding : chunked\r\nContent-Length: 3\r\n\r\nabc")

    def test_nul_in_field_value(self):
        self.refused(b"GET /nul HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n\r\n")

    def test_control_character_in_field_value(self):
        self.refused(b"GET /ctl HTTP/1.1\r\n" + H + b"X-A: a\x01b\r\n\r\n")

    def test_missing_host_http11(self):
        self.refused(b"GET /nohost HTTP/1.1\r\nX-A: 1\r\n\r\n")

    def test_two_host_fields(self):
        self.refused(b"GET /twohost HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n")

    def test_invalid_host(self):
        self.refused(b"GET /badhost HTTP/1.1\r\nHost: a b.example\r\n\r\n")

    def test_invalid_method_token(self):
        for method in (b"G{T", b"GE\x7fT", b"G\"ET"):
            with self.subTest(method=method):
                self.refused(method + b" /m HTTP/1.1\r\n" + H + b"\r\n")
                self.origin.reset_stats()

    def test_http09_request_line(self):
        self.refused(b"GET /\r\n\r\n")

    def test_http2_version_505(self):
        self.refused(b"GET /v2 HTTP/2.0\r\n" + H + b"\r\n", status=505)

    def test_garbage_version_400(self):
        self.refused(b"GET /v HTTP/1.x\r\n" + H + b"\r\n")

    def test_first_line_not_http1_at_all_is_closed_without_an_answer(self):
        # The cleartext port also takes h2c: an HTTP/2 client whose preface is broken must
        # not get HTTP/1.1 text, which it would read as a frame header (h2spec 3.5/2).
        res = raw_exchange(self.host, self.port, b"INVALID CONNECTION PREFACE\r\n\r\n",
                           timeout=5)
        self.assertEqual(res.data, b"")
        self.assertNotEqual(res.ended, "timeout", "meridian did not close the connection")
        self.assert_origin_untouched()
        # Not on a kept-alive connection's later requests: there the client spoke HTTP/1.
        res = raw_exchange(self.host, self.port, b"GET /first HTTP/1.1\r\n" + H + b"\r\n"
                           b"INVALID LATER LINE\r\n\r\n", timeout=5)
        responses, _ = parse_responses(res.data)
        self.assertEqual([r.status for r in responses], [200, 400])

    # ---- pipelining ----------------------------------------------------------------------

    def test_pipelined_valid_then_malformed(self):
        data = (b"GET /first HTTP/1.1\r\n" + H + b"\r\n"
                b"POST /second HTTP/1.1\r\n" + H +
                b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"0\r\n\r\n"
                b"GET /smuggled HTTP/1.1\r\n" + H + b"\r\n")
        res = raw_exchange(self.host, self.port, data, timeout=5)
        responses, rest = parse_responses(res.data)
        self.assertEqual([r.status for r in responses], [200, 400], res)
        self.assertEqual(responses[0].header("X-Origin-Name"), "o1")
        self.assertIsNone(responses[1].header("X-Origin-Name"))
        self.assertNotEqual(res.ended, "timeout", "connection not closed after the 400")
        log = self.origin.log()
        self.assertEqual([e["path"] for e in log], ["/first"], "origin got more than one")
        self.assertEqual(self.origin.bad_requests(), [])

    def test_valid_request_after_refusal_on_new_connection(self):
        self.refused(b"GET /x HTTP/1.1\r\n" + H + b"X-A : 1\r\n\r\n")
        r = self.meridian.get("/ok")
        self.assertEqual(r.status, 200)
        self.assertEqual([e["path"] for e in self.origin.log()], ["/ok"])


if __name__ == "__main__":
    unittest.main()
