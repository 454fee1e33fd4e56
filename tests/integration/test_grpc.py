"""gRPC through meridian, with Debian's python3-grpcio as the client: the answers meridian gives
itself to a gRPC call are gRPC statuses (trailers-only: HTTP 200, application/grpc,
grpc-status and grpc-message), as Envoy gives them -- UNAVAILABLE when no origin can take the
call, RESOURCE_EXHAUSTED from the rate limit (with its RateLimit fields as trailing metadata),
UNIMPLEMENTED without a route, DEADLINE_EXCEEDED when the client's grpc-timeout passes first --
over h2c and over TLS with ALPN h2.

Calls that reach an origin over HTTP/2 (backends[].protocol: h2 / h2c) come with the HTTP/2
upstream; this file covers what holds whatever the origin speaks."""

import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))

from harness import Meridian, Origin, free_port, wait_until  # noqa: E402
from test_tls import make_certificate  # noqa: E402

try:
    import grpc
except ImportError:
    # Debian's python3-grpcio lives in the system's dist-packages, which a python3 of another
    # installation (pyenv's, say) does not search; built for Debian's Python 3.11.
    sys.path.append("/usr/lib/python3/dist-packages")
    try:
        import grpc
    except ImportError:  # not installed: tests/install-deps.sh installs python3-grpcio
        grpc = None
try:
    from h2client import H2Client
except ImportError:
    H2Client = None

CONFIG = """
node: {name: edge-grpc}
workers: 1
admin: {listen: "{admin}"}
access_log: {path: "{dir}/access.log", format: json}
listeners:
  - name: h2c
    listen: "{h2c}"
    routes: &routes
      - {name: down, match: {path_prefix: /down.}, backend: dead}
      - {name: limited, match: {path_prefix: /limited.}, backend: live,
         rate_limit: {rate: 1/h, burst: 1}}
      - {name: slow, match: {path_prefix: /slow.}, backend: live}
  - name: tls
    listen: "{tls}"
    tls:
      certificates: [{cert: "{certs}/grpc.pem", key: "{certs}/grpc.key"}]
    routes: *routes
backends:
  - name: dead
    regions:
      - {name: r1, location: {lat: 50.1, lon: 8.7}, endpoints: [{address: "{dead}"}]}
  - name: live
    regions:
      - {name: r1, location: {lat: 50.1, lon: 8.7}, endpoints: [{address: "{origin}"}]}
"""

OPTIONS = [("grpc.enable_http_proxy", 0), ("grpc.enable_retries", 0)]


@unittest.skipUnless(grpc and H2Client, "python3-grpcio and python3-h2 needed")
class GrpcLocalAnswersTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = tempfile.mkdtemp(prefix="meridian-grpc-")
        make_certificate(cls.certs, "grpc", "grpc.test", ["grpc.test"])
        cls.origin = Origin("origin").start()
        cls.addresses = {"h2c": f"127.0.0.1:{free_port()}", "tls": f"127.0.0.1:{free_port()}"}
        cls.meridian = Meridian(CONFIG, {
            "origin": cls.origin.address, "dead": f"127.0.0.1:{free_port()}",
            "certs": cls.certs, **cls.addresses}).start()

    @classmethod
    def tearDownClass(cls):
        cls.meridian.stop()
        cls.origin.stop()
        shutil.rmtree(cls.certs, ignore_errors=True)

    def channel(self, kind):
        if kind == "h2c":
            return grpc.insecure_channel(self.addresses["h2c"], options=OPTIONS)
        with open(os.path.join(self.certs, "grpc.pem"), "rb") as f:
            credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
        return grpc.secure_channel(self.addresses["tls"], credentials, options=OPTIONS + [
            ("grpc.ssl_target_name_override", "grpc.test")])

    def call(self, kind, method, timeout=10):
        """A unary call with raw bytes; returns the grpc.RpcError it ends with."""
        with self.channel(kind) as channel:
            stub = channel.unary_unary(method)
            with self.assertRaises(grpc.RpcError) as caught:
                stub(b"\x00\x00\x00\x00\x00", timeout=timeout)
            return caught.exception

    def test_no_origin_to_take_the_call_is_unavailable(self):
        for kind in ("h2c", "tls"):
            with self.subTest(kind):
                e = self.call(kind, "/down.Service/Call")
                self.assertEqual(e.code(), grpc.StatusCode.UNAVAILABLE, e)
                self.assertIn("upstream connect failed", e.details())

    def test_the_rate_limit_is_resource_exhausted_with_its_fields(self):
        for kind in ("h2c", "tls"):
            with self.subTest(kind):
                # The first call is let through (the origin speaks no gRPC; what it answers
                # does not matter here); the second is refused by meridian.
                with self.channel(kind) as channel:
                    stub = channel.unary_unary(f"/limited.{kind}/Call")
                    try:
                        stub(b"", timeout=10)
                    except grpc.RpcError:
                        pass
                    with self.assertRaises(grpc.RpcError) as caught:
                        stub(b"", timeout=10)
                e = caught.exception
                self.assertEqual(e.code(), grpc.StatusCode.RESOURCE_EXHAUSTED, e)
                self.assertEqual(e.details(), "rate limit exceeded")
                trailing = dict(e.trailing_metadata())
                self.assertEqual(trailing.get("ratelimit-limit"), "1")
                self.assertIn("retry-after", trailing)

    def test_no_route_is_unimplemented(self):
        e = self.call("h2c", "/nowhere.Service/Call")
        self.assertEqual(e.code(), grpc.StatusCode.UNIMPLEMENTED, e)

    def test_the_clients_deadline_is_honoured_as_deadline_exceeded(self):
        # A raw HTTP/2 client, so that the answer seen is meridian's (grpcio would give up on
        # its own at the same deadline): grpc-timeout 300m, an origin that takes 5 s, and the
        # route's own timeout at its 15 s default.
        with H2Client(self.addresses["h2c"]) as c:
            stream_id = c.request("POST", "/slow.Service/Call?delay_ms=5000", headers=[
                ("content-type", "application/grpc"), ("te", "trailers"),
                ("grpc-timeout", "300m")], body=b"\x00\x00\x00\x00\x00", authority="grpc.test")
            c.run_until(lambda: c.streams[stream_id].done, timeout=10)
            s = c.streams[stream_id]
        self.assertEqual(s.headers.get(":status"), "200", s.headers)
        self.assertEqual(s.headers.get("content-type"), "application/grpc")
        self.assertEqual(s.headers.get("grpc-status"), "4", s.headers)
        # The origin's answer would carry no grpc-status: this is meridian's deadline. Metrics
        # and the access log keep the HTTP status, a 504.
        entry = wait_until(lambda: [e for e in self.meridian.access_log("access.log")
                                    if e.get("path") == "/slow.Service/Call"],
                           message="access log line")[0]
        self.assertEqual(entry["status"], 504)



if __name__ == "__main__":
    unittest.main()
