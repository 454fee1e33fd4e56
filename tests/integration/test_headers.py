"""Header rewriting on forwarded requests and relayed responses (docs/http-behaviour.md,
headers)."""

import re
import unittest

from harness import HttpConn, Meridian, Origin

NODE = "edge-hdr-1"

CONFIG = """
node: {name: %s}
workers: 1
admin:
  listen: "{admin}"
listeners:
  - name: public
    listen: "{listen}"
    routes:
      - {name: all, backend: b}
backends:
  - name: b
    regions:
      - name: r1
        location: {lat: 50.0, lon: 8.0}
        endpoints: [{address: "{o1}"}]
""" % NODE

CLIENT_IP = "127.0.3.7"  # the test client binds this source address


def values(report, name):
    """Every value of header `name` the origin received, in order."""
    name = name.lower()
    return [v for n, v in report["headers"] if n.lower() == name]


def joined(report, name):
    """The field values of `name` combined as one list (RFC 9110 5.3)."""
    return ", ".join(values(report, name))


class HeaderRewriteTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.origin = Origin("o1").start()
        try:
            cls.meridian = Meridian(CONFIG, {"o1": cls.origin.address}).__enter__()
        except BaseException:
            cls.origin.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.meridian.__exit__(None, None, None)
        finally:
            cls.origin.stop()

    def get(self, target, headers=None, **kwargs):
        with HttpConn(self.meridian.listen_address, source_address=CLIENT_IP) as c:
            r = c.request("GET", target, headers, **kwargs)
        self.assertEqual(r.status, 200, r)
        return r

    # ---- hop-by-hop ------------------------------------------------------------------------

    def test_hop_by_hop_request_headers_removed(self):
        r = self.get("/hop", [
            ("Connection", "keep-alive, X-Hop-Custom"),
            ("Connection", "X-Hop-Second"),
            ("X-Hop-Custom", "secret"),
            ("X-Hop-Second", "secret2"),
            ("Keep-Alive", "timeout=5, max=100"),
            ("Proxy-Connection", "keep-alive"),
            ("TE", "trailers"),
            ("Trailer", "X-Checksum"),
            ("Upgrade", "h2c"),
            ("X-End-To-End", "kept"),
        ])
        rep = r.json()
        names = [n.lower() for n, _ in rep["headers"]]
        for gone in ("x-hop-custom", "x-hop-second", "keep-alive", "proxy-connection", "te",
                     "trailer", "upgrade"):
            self.assertNotIn(gone, names, f"{gone} was forwarded: {rep['headers']}")
        # meridian may send its own Connection header upstream, but not the client's tokens.
        tokens = {t.strip().lower() for v in values(rep, "connection") for t in v.split(",")}
        self.assertFalse(tokens & {"x-hop-custom", "x-hop-second", "upgrade"},
                         f"client's Connection tokens forwarded: {values(rep, 'connection')}")
        self.assertEqual(values(rep, "X-End-To-End"), ["kept"])

    def test_hop_by_hop_response_headers_removed(self):
        r = self.get("/hop-resp?header=Connection:X-Resp-Hop&header=X-Resp-Hop:1"
                     "&header=Keep-Alive:timeout%3D99&header=Proxy-Connection:keep-alive"
                     "&header=X-Resp-Kept:yes")
        self.assertEqual(r.header_all("X-Resp-Hop"), [], r.headers)
        self.assertEqual(r.header_all("Proxy-Connection"), [], r.headers)
        self.assertNotIn("timeout=99", r.header_all("Keep-Alive"), r.headers)
        self.assertNotIn("x-resp-hop", r.connection_tokens, r.headers)
        self.assertEqual(r.header_all("X-Resp-Kept"), ["yes"])

    # ---- X-Forwarded-* ---------------------------------------------------------------------

    def test_x_forwarded_for_set(self):
        rep = self.get("/xff").json()
        self.assertEqual(values(rep, "X-Forwarded-For"), [CLIENT_IP])

    def test_x_forwarded_for_appended_to_existing(self):
        rep = self.get("/xff2", [("X-Forwarded-For", "203.0.113.7, 198.51.100.2")]).json()
        self.assertEqual(joined(rep, "X-Forwarded-For").replace(" ", ""),
                         f"203.0.113.7,198.51.100.2,{CLIENT_IP}")

    def test_x_forwarded_proto_http(self):
        rep = self.get("/xfp").json()
        self.assertEqual(values(rep, "X-Forwarded-Proto"), ["http"])
        # "set", not appended: a client cannot claim https on a plain listener.
        rep = self.get("/xfp2", [("X-Forwarded-Proto", "https")]).json()
        self.assertEqual(values(rep, "X-Forwarded-Proto"), ["http"])

    # ---- X-Request-Id ----------------------------------------------------------------------

    def test_x_request_id_kept(self):
        rep = self.get("/rid", [("X-Request-Id", "client-chosen-id-123")]).json()
        self.assertEqual(values(rep, "X-Request-Id"), ["client-chosen-id-123"])

    def test_x_request_id_generated(self):
        ids = []
        for i in range(3):
            rep = self.get(f"/rid-gen/{i}").json()
            got = values(rep, "X-Request-Id")
            self.assertEqual(len(got), 1, rep["headers"])
            self.assertRegex(got[0], r"^[0-9a-f]{32}$")
            ids.append(got[0])
        self.assertEqual(len(set(ids)), 3, f"request ids repeat: {ids}")

    # ---- Via -------------------------------------------------------------------------------

    def test_via_on_request(self):
        rep = self.get("/via").json()
        self.assertEqual(values(rep, "Via"), [f"1.1 {NODE}"])

    def test_via_appended_to_existing_on_request(self):
        rep = self.get("/via2", [("Via", "1.0 fred, 1.1 p.example.net")]).json()
        parts = [p.strip() for p in joined(rep, "Via").split(",")]
        self.assertEqual(parts, ["1.0 fred", "1.1 p.example.net", f"1.1 {NODE}"])

    def test_via_on_response(self):
        r = self.get("/via-resp")
        self.assertEqual(r.header_all("Via"), [f"1.1 {NODE}"])

    def test_via_appended_to_existing_on_response(self):
        r = self.get("/via-resp2?header=Via:1.1%20upstream-cache")
        parts = [p.strip() for v in r.header_all("Via") for p in v.split(",")]
        self.assertEqual(parts, ["1.1 upstream-cache", f"1.1 {NODE}"])

    # ---- Host ------------------------------------------------------------------------------

    def test_host_unchanged(self):
        for host in ("www.Example.org:8443", "example.com", "127.0.0.1:1",
                     "[2001:db8::1]:8080"):
            with self.subTest(host=host):
                rep = self.get("/host", host=host).json()
                self.assertEqual(values(rep, "Host"), [host])

    def test_all_rewrites_together_on_keepalive_connection(self):
        with HttpConn(self.meridian.listen_address, source_address=CLIENT_IP) as c:
            for i in range(3):
                rep = c.request("GET", f"/multi/{i}", [("X-Request-Id", f"id-{i}")]).json()
                self.assertEqual(values(rep, "X-Request-Id"), [f"id-{i}"])
                self.assertEqual(values(rep, "X-Forwarded-For"), [CLIENT_IP])
                self.assertEqual(values(rep, "Via"), [f"1.1 {NODE}"])
                self.assertEqual(values(rep, "X-Forwarded-Proto"), ["http"])
                self.assertTrue(re.fullmatch(r"127\.0\.0\.1:\d+", values(rep, "Host")[0]))


if __name__ == "__main__":
    unittest.main()
