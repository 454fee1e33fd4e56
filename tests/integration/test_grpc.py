"""gRPC through meridian, with Debian's python3-grpcio as client and origin.

GrpcLocalAnswersTest: the answers meridian gives itself to a gRPC call are gRPC statuses
(trailers-only: HTTP 200, application/grpc, grpc-status and grpc-message), as Envoy gives
them -- UNAVAILABLE when no origin can take the call, RESOURCE_EXHAUSTED from the rate limit
(with its RateLimit fields as trailing metadata), UNIMPLEMENTED without a route,
DEADLINE_EXCEEDED when the client's grpc-timeout passes first -- over h2c and over TLS with
ALPN h2.

GrpcEndToEndTest: calls that reach a grpcio server through meridian, over each pair of
downstream (h2c, TLS) and upstream (backends[].protocol h2c, h2 over TLS) protocols: unary,
server-streaming, client-streaming and bidirectional calls with their trailing metadata, an
error status with its message and metadata, the client's deadline, and UNAVAILABLE when the
origin is gone."""

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


END_TO_END = """
node: {name: edge-grpc-e2e}
workers: 1
admin: {listen: "{admin}"}
access_log: {path: "{dir}/access.log", format: json}
listeners:
  - name: h2c
    listen: "{h2c}"
    routes: &routes
      - {name: via-h2c, match: {host: plain.grpc}, backend: grpc-h2c}
      - {name: via-h2, match: {host: tls.grpc}, backend: grpc-h2}
      - {name: gone, match: {host: gone.grpc}, backend: gone}
  - name: tls
    listen: "{tls}"
    tls:
      certificates: [{cert: "{certs}/grpc.pem", key: "{certs}/grpc.key"}]
    routes: *routes
backends:
  - name: grpc-h2c
    protocol: h2c
    regions:
      - {name: r1, location: {lat: 50.1, lon: 8.7}, endpoints: [{address: "{plain_origin}"}]}
  - name: grpc-h2
    protocol: h2
    tls: {verify: false}
    regions:
      - {name: r1, location: {lat: 50.1, lon: 8.7}, endpoints: [{address: "{tls_origin}"}]}
  - name: gone
    protocol: h2c
    regions:
      - {name: r1, location: {lat: 50.1, lon: 8.7}, endpoints: [{address: "{gone}"}]}
"""


def echo_service():
    """Raw-bytes handlers (no protobuf): each call's messages are bytes."""
    import time as _time

    def unary(request, context):
        context.set_trailing_metadata([("x-served-by", "grpc-origin")])
        return request[::-1]

    def server_stream(request, context):
        for i in range(int(request.decode())):
            yield f"msg-{i}".encode()

    def client_stream(requests, context):
        return b"|".join(requests)

    def bidi(requests, context):
        for r in requests:
            yield b"echo:" + r

    def fail(request, context):
        context.set_trailing_metadata([("x-why", "because")])
        context.abort(grpc.StatusCode.NOT_FOUND, "no such thing: " + request.decode())

    def slow(request, context):
        _time.sleep(3)
        return b"late"

    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
        "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
        "Slow": grpc.unary_unary_rpc_method_handler(slow),
    }
    return grpc.method_handlers_generic_handler("test.Echo", handlers)


@unittest.skipUnless(grpc, "python3-grpcio needed")
class GrpcEndToEndTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        from concurrent import futures
        cls.certs = tempfile.mkdtemp(prefix="meridian-grpc-e2e-")
        make_certificate(cls.certs, "grpc", "grpc.test", ["grpc.test"])
        make_certificate(cls.certs, "origin", "origin.test", ["origin.test"])
        with open(os.path.join(cls.certs, "origin.key"), "rb") as k, \
                open(os.path.join(cls.certs, "origin.pem"), "rb") as c:
            origin_credentials = grpc.ssl_server_credentials([(k.read(), c.read())])
        cls.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        cls.server.add_generic_rpc_handlers((echo_service(),))
        plain = cls.server.add_insecure_port("127.0.0.1:0")
        tls = cls.server.add_secure_port("127.0.0.1:0", origin_credentials)
        cls.server.start()
        cls.addresses = {"h2c": f"127.0.0.1:{free_port()}", "tls": f"127.0.0.1:{free_port()}"}
        cls.meridian = Meridian(END_TO_END, {
            "plain_origin": f"127.0.0.1:{plain}", "tls_origin": f"127.0.0.1:{tls}",
            "gone": f"127.0.0.1:{free_port()}", "certs": cls.certs, **cls.addresses}).start()

    @classmethod
    def tearDownClass(cls):
        cls.meridian.stop()
        cls.server.stop(0)
        shutil.rmtree(cls.certs, ignore_errors=True)

    def channel(self, downstream, authority):
        options = OPTIONS + [("grpc.default_authority", authority)]
        if downstream == "h2c":
            return grpc.insecure_channel(self.addresses["h2c"], options=options)
        with open(os.path.join(self.certs, "grpc.pem"), "rb") as f:
            credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
        return grpc.secure_channel(self.addresses["tls"], credentials, options=options + [
            ("grpc.ssl_target_name_override", "grpc.test")])

    COMBINATIONS = [(d, a) for d in ("h2c", "tls") for a in ("plain.grpc", "tls.grpc")]

    def test_unary_with_trailing_metadata(self):
        for downstream, authority in self.COMBINATIONS:
            with self.subTest(downstream=downstream, upstream=authority), \
                    self.channel(downstream, authority) as channel:
                call = channel.unary_unary("/test.Echo/Unary")
                reply, state = call.with_call(b"hello", timeout=10)
                self.assertEqual(reply, b"olleh")
                self.assertEqual(state.code(), grpc.StatusCode.OK)
                self.assertIn(("x-served-by", "grpc-origin"), tuple(state.trailing_metadata()))
                big = os.urandom(1_000_000)  # many flow-control windows each way
                self.assertEqual(call(big, timeout=20), big[::-1])

    def test_server_client_and_bidi_streaming(self):
        for downstream, authority in self.COMBINATIONS:
            with self.subTest(downstream=downstream, upstream=authority), \
                    self.channel(downstream, authority) as channel:
                stream = channel.unary_stream("/test.Echo/ServerStream")
                self.assertEqual(list(stream(b"50", timeout=10)),
                                 [f"msg-{i}".encode() for i in range(50)])
                upload = channel.stream_unary("/test.Echo/ClientStream")
                self.assertEqual(upload(iter([b"a", b"b", b"c"]), timeout=10), b"a|b|c")
                bidi = channel.stream_stream("/test.Echo/Bidi")
                self.assertEqual(list(bidi(iter([b"1", b"2", b"3"]), timeout=10)),
                                 [b"echo:1", b"echo:2", b"echo:3"])

    def test_an_error_status_passes_with_its_message_and_metadata(self):
        for downstream, authority in self.COMBINATIONS:
            with self.subTest(downstream=downstream, upstream=authority), \
                    self.channel(downstream, authority) as channel:
                with self.assertRaises(grpc.RpcError) as caught:
                    channel.unary_unary("/test.Echo/Fail")(b"x42", timeout=10)
                e = caught.exception
                self.assertEqual(e.code(), grpc.StatusCode.NOT_FOUND)
                self.assertEqual(e.details(), "no such thing: x42")
                self.assertIn(("x-why", "because"), tuple(e.trailing_metadata()))

    def test_the_deadline_is_honoured(self):
        for downstream, authority in self.COMBINATIONS:
            with self.subTest(downstream=downstream, upstream=authority), \
                    self.channel(downstream, authority) as channel:
                with self.assertRaises(grpc.RpcError) as caught:
                    channel.unary_unary("/test.Echo/Slow")(b"", timeout=0.5)
                self.assertEqual(caught.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)

    def test_an_origin_that_is_gone_is_unavailable(self):
        for downstream in ("h2c", "tls"):
            with self.subTest(downstream=downstream), self.channel(downstream, "gone.grpc") as ch:
                with self.assertRaises(grpc.RpcError) as caught:
                    ch.unary_unary("/test.Echo/Unary")(b"x", timeout=10)
                self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAVAILABLE)


if __name__ == "__main__":
    unittest.main()
