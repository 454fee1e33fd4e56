"""HTTP/2 to origins (backends[].protocol: h2c and h2), on real sockets: every downstream
protocol (HTTP/1.1, h2c, HTTP/2 over TLS) to every upstream one, request and response bodies
larger than a flow-control window, trailers end to end (HTTP/2 and chunked HTTP/1.1 clients),
streams multiplexed on few connections and bounded by the origin's
SETTINGS_MAX_CONCURRENT_STREAMS, a refused stream and a GOAWAY retried (even for POST, since
the origin did not process them), a stream reset before its answer, an origin that does not
speak HTTP/2, and the route timeout.

The origin is tests/support/h2_origin.py (python3-h2 on asyncio)."""

import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))

from harness import HttpConn, Meridian, Origin, free_port, wait_until  # noqa: E402
from test_tls import make_certificate  # noqa: E402

try:
    from h2client import H2Client
except ImportError:  # python3-h2 missing: tests/install-deps.sh installs it
    H2Client = None

H2_ORIGIN = os.path.join(os.path.dirname(__file__), "..", "support", "h2_origin.py")

CONFIG = """
node: {name: edge-h2up}
workers: 1
admin: {listen: "{admin}"}
access_log: {path: "{dir}/access.log", format: json}
listeners:
  - name: plain
    listen: "{plain}"
    routes: &routes
      - {name: c, match: {path_prefix: /c/}, backend: h2c-api, timeout: 2s}
      - {name: t, match: {path_prefix: /t/}, backend: h2-api}
      - {name: n, match: {path_prefix: /n/}, backend: narrow}
      - {name: dead, match: {path_prefix: /dead/}, backend: dead}
      - {name: not-h2, match: {path_prefix: /h1/}, backend: not-h2}
      - {name: h1-origin, match: {path_prefix: /o1/}, backend: h1-api}
  - name: tls
    listen: "{tls}"
    tls:
      certificates: [{cert: "{certs}/edge.pem", key: "{certs}/edge.key"}]
    routes: *routes
backends:
  - name: h2c-api
    protocol: h2c
    health_check: {path: /health, interval: 200ms}
    regions:
      - {name: r1, location: {lat: 50.1, lon: 8.7}, endpoints: [{address: "{h2c}"}]}
  - name: h2-api
    protocol: h2
    tls: {verify: false}
    health_check: {path: /health, interval: 200ms}
    regions:
      - {name: r1, location: {lat: 50.1, lon: 8.7}, endpoints: [{address: "{h2tls}"}]}
  - name: narrow
    protocol: h2c
    regions:
      - {name: r1, location: {lat: 50.1, lon: 8.7}, endpoints: [{address: "{narrow}"}]}
  - name: dead
    protocol: h2c
    regions:
      - {name: r1, location: {lat: 50.1, lon: 8.7}, endpoints: [{address: "{dead}"}]}
  - name: not-h2
    protocol: h2
    tls: {verify: false}
    regions:
      - {name: r1, location: {lat: 50.1, lon: 8.7}, endpoints: [{address: "{h1tls}"}]}
  - name: h1-api
    regions:
      - {name: r1, location: {lat: 50.1, lon: 8.7}, endpoints: [{address: "{h1plain}"}]}
  - name: not-h2-checked
    protocol: h2
    tls: {verify: false}
    health_check: {path: /health, interval: 200ms, unhealthy_threshold: 2}
    regions:
      - {name: r1, location: {lat: 50.1, lon: 8.7}, endpoints: [{address: "{h1tls}"}]}
  - name: failing-checked
    protocol: h2c
    health_check: {path: "/health?status=503", interval: 200ms, unhealthy_threshold: 2}
    regions:
      - {name: r1, location: {lat: 50.1, lon: 8.7}, endpoints: [{address: "{h2c}"}]}
"""


class H2Origin:
    """tests/support/h2_origin.py in a subprocess."""

    def __init__(self, name, *extra):
        self.proc = subprocess.Popen(
            [sys.executable, H2_ORIGIN, "--port", "0", "--name", name, *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("LISTENING"):
            self.proc.kill()
            raise RuntimeError(f"h2 origin {name} did not start: {self.proc.stderr.read()}")
        self.address = f"127.0.0.1:{line.split()[1]}"
        self.tls = "--tls-cert" in extra

    def stats(self):
        context = None
        if self.tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        with H2Client(self.address, tls_context=context) as c:
            stream = c.get("/__stats")
            return json.loads(bytes(stream.body))

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def client_tls_context():
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@unittest.skipUnless(H2Client, "python3-h2 needed")
class H2UpstreamTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = tempfile.mkdtemp(prefix="meridian-h2up-")
        make_certificate(cls.certs, "edge", "edge.test", ["edge.test"])
        make_certificate(cls.certs, "origin", "origin.test", ["origin.test"])
        pem, key = os.path.join(cls.certs, "origin.pem"), os.path.join(cls.certs, "origin.key")
        cls.h2c = H2Origin("h2c-origin")
        cls.h2tls = H2Origin("h2-origin", "--tls-cert", pem, "--tls-key", key)
        cls.narrow = H2Origin("narrow", "--max-streams", "2")
        cls.h1tls = Origin("h1-tls", extra_args=["--tls-cert", pem, "--tls-key", key]).start()
        cls.h1plain = Origin("h1-plain").start()
        cls.addresses = {"plain": f"127.0.0.1:{free_port()}", "tls": f"127.0.0.1:{free_port()}"}
        cls.meridian = Meridian(CONFIG, {
            "h2c": cls.h2c.address, "h2tls": cls.h2tls.address, "narrow": cls.narrow.address,
            "dead": f"127.0.0.1:{free_port()}", "h1tls": cls.h1tls.address,
            "h1plain": cls.h1plain.address,
            "certs": cls.certs, **cls.addresses}).start()

    @classmethod
    def tearDownClass(cls):
        cls.meridian.stop()
        for o in (cls.h2c, cls.h2tls, cls.narrow):
            o.stop()
        cls.h1tls.stop()
        cls.h1plain.stop()
        shutil.rmtree(cls.certs, ignore_errors=True)

    # -- clients ---------------------------------------------------------------------------

    def h2(self, kind):
        if kind == "h2c":
            return H2Client(self.addresses["plain"])
        return H2Client(self.addresses["tls"], tls_context=client_tls_context(),
                        server_hostname="edge.test")

    def fetch(self, downstream, method, path, body=None, headers=(), trailers=None):
        """(status, headers dict, body bytes, trailers dict) over `downstream`; `trailers`:
        the request's (chunked over HTTP/1.1)."""
        if downstream == "http1":
            host, port = self.addresses["plain"].rsplit(":", 1)
            with HttpConn(host, int(port)) as conn:
                r = conn.request(method, path, headers=list(headers), body=body,
                                 chunked=True if trailers else None, trailers=trailers)
                return (r.status, {n.lower(): v for n, v in r.headers}, r.body,
                        {n.lower(): v for n, v in r.trailers})
        with self.h2(downstream) as c:
            sid = c.request(method, path, headers=list(headers), body=body, trailers=trailers)
            c.run_until(lambda: c.streams[sid].done)
            s = c.streams[sid]
            return s.status, s.headers, bytes(s.body), s.trailers

    # -- tests -----------------------------------------------------------------------------

    def test_every_downstream_to_every_upstream(self):
        body = os.urandom(300_000)  # several stream windows each way
        for downstream in ("http1", "h2c", "h2"):
            for prefix, scheme in (("/c/", "http"), ("/t/", "https")):
                with self.subTest(downstream=downstream, upstream=prefix):
                    status, headers, got, _ = self.fetch(downstream, "GET", prefix + "get?x=1")
                    self.assertEqual(status, 200, got[:200])
                    report = json.loads(got)
                    self.assertEqual(report["method"], "GET")
                    self.assertEqual(report["path"], prefix + "get?x=1")
                    self.assertEqual(report["scheme"], scheme)
                    names = [n for n, _ in report["headers"]]
                    self.assertIn("x-forwarded-for", names)
                    self.assertIn("via", names)
                    for hop in ("connection", "host", "transfer-encoding", "keep-alive"):
                        self.assertNotIn(hop, names)
                    self.assertEqual(headers.get("via"), "1.1 edge-h2up")

                    status, _, got, _ = self.fetch(downstream, "POST", prefix + "post", body=body)
                    self.assertEqual(status, 200)
                    self.assertEqual(json.loads(got)["body_length"], len(body))

                    status, headers, got, _ = self.fetch(downstream, "GET",
                                                         prefix + "big?size=1000000")
                    self.assertEqual(status, 200)
                    self.assertEqual(len(got), 1_000_000)
                    self.assertEqual(got, b"x" * 1_000_000)

    def test_trailers_reach_http2_and_chunked_http1_clients(self):
        path = "/c/t?size=10&trailer=grpc-status:0&trailer=x-checksum:abc"
        for downstream in ("h2c", "h2"):
            with self.subTest(downstream=downstream):
                status, _, got, trailers = self.fetch(downstream, "GET", path)
                self.assertEqual((status, got), (200, b"x" * 10))
                self.assertEqual(trailers, {"grpc-status": "0", "x-checksum": "abc"})
        status, headers, got, trailers = self.fetch("http1", "GET", path)
        self.assertEqual((status, got), (200, b"x" * 10))
        self.assertEqual(headers.get("transfer-encoding"), "chunked")
        self.assertEqual(trailers, {"grpc-status": "0", "x-checksum": "abc"})
        # A response without a body but with trailers (gRPC's trailers-only errors are
        # HEADERS with END_STREAM; this is HEADERS, then trailers).
        status, _, got, trailers = self.fetch("h2c", "GET", "/c/t?size=0&trailer=grpc-status:5")
        self.assertEqual((status, got, trailers), (200, b"", {"grpc-status": "5"}))

    def test_trailers_of_a_chunked_http1_origin_reach_every_client(self):
        path = "/o1/t?size=10&chunked=1&trailer=grpc-status:0&trailer=X-Checksum:abc"
        for downstream in ("http1", "h2c", "h2"):
            with self.subTest(downstream=downstream):
                status, _, got, trailers = self.fetch(downstream, "GET", path)
                self.assertEqual((status, len(got)), (200, 10))
                self.assertEqual(trailers, {"grpc-status": "0", "x-checksum": "abc"})

    def test_request_trailers_reach_every_origin(self):
        sent = [("x-request-checksum", "c0ffee"), ("grpc-meta", "1")]
        for downstream in ("http1", "h2c", "h2"):
            for prefix, key in (("/c/", "request_trailers"), ("/o1/", "trailers")):
                with self.subTest(downstream=downstream, upstream=prefix):
                    status, _, got, _ = self.fetch(downstream, "POST", prefix + "rt",
                                                   body=b"payload", trailers=sent)
                    self.assertEqual(status, 200, got)
                    report = json.loads(got)
                    self.assertEqual(report["body_length"], 7)
                    received = {n.lower(): v for n, v in report[key]}
                    self.assertEqual(received, dict(sent), report)

    def test_streams_share_connections_within_the_origins_limit(self):
        before = self.narrow.stats()
        # One request first: the connection's SETTINGS (2 streams at most) are known after it.
        self.assertEqual(self.fetch("h2c", "GET", "/n/warm")[0], 200)
        with self.h2("h2c") as c:
            ids = [c.request("GET", f"/n/slow?delay_ms=300&i={i}") for i in range(8)]
            c.run_until(lambda: all(c.streams[i].done for i in ids), timeout=15)
            self.assertEqual([c.streams[i].status for i in ids], [200] * 8)
            connections = {json.loads(bytes(c.streams[i].body))["connection_id"] for i in ids}
        stats = self.narrow.stats()
        self.assertLessEqual(stats["max_concurrent"], 2, stats)
        self.assertGreaterEqual(len(connections), 4, connections)
        self.assertGreaterEqual(stats["connections"] - before["connections"], 3)

        # Sequential requests reuse one connection.
        seen = set()
        for i in range(20):
            status, _, got, _ = self.fetch("http1", "GET", f"/c/seq?i={i}")
            self.assertEqual(status, 200)
            seen.add(json.loads(got)["connection_id"])
        self.assertLessEqual(len(seen), 2, seen)  # one, or a second after an idle close

    def test_unprocessed_streams_are_sent_again_even_for_post(self):
        for kind in ("refuse_once", "goaway_once"):
            for downstream, method in (("h2c", "POST"), ("http1", "GET")):
                with self.subTest(kind=kind, downstream=downstream, method=method):
                    key = f"{kind}-{method}-{free_port()}"
                    status, _, got, _ = self.fetch(downstream, method, f"/c/p?{kind}={key}")
                    self.assertEqual(status, 200, got)
                    self.assertEqual(self.h2c.stats()["keys"][key], 2)
        # A body handed to the refused stream is gone: not replayed, whatever the method.
        key = f"refuse_once-body-{free_port()}"
        status, _, got, _ = self.fetch("h2c", "PUT", f"/c/p?refuse_once={key}", body=b"abc")
        self.assertEqual(status, 502, got)
        self.assertIn(b"upstream refused the stream", got)
        self.assertEqual(self.h2c.stats()["keys"][key], 1)

    def test_failures_before_an_answer(self):
        # Reset by the origin: a POST is not sent again (the origin may have acted on it).
        status, _, got, _ = self.fetch("http1", "POST", "/c/r?reset=1", body=b"abc")
        self.assertEqual(status, 502)
        self.assertIn(b"upstream closed the connection before answering", got)
        status, _, got, _ = self.fetch("h2c", "GET", "/dead/x")
        self.assertEqual(status, 502)
        self.assertIn(b"upstream connect failed", got)
        # A TLS origin that does not choose h2 by ALPN is not sent HTTP/2 at all.
        status, _, got, _ = self.fetch("http1", "GET", "/h1/x")
        self.assertEqual(status, 502)
        self.assertEqual(self.h1tls.stats()["requests"], 0)
        wait_until(lambda: "did not choose h2 by ALPN" in self.meridian.stderr_text(),
                   message="the ALPN failure is logged")

    def test_health_probes_speak_http2(self):
        def endpoint(backend):
            for b in self.meridian.status()["backends"]:
                if b["name"] == backend:
                    return b["regions"][0]["endpoints"][0]
            raise KeyError(backend)

        # h2c and h2 origins answer the probes (their RTT is measured); an origin that does
        # not choose h2 by ALPN and one that answers 503 go down.
        for backend in ("h2c-api", "h2-api"):
            wait_until(lambda: endpoint(backend)["healthy"] and endpoint(backend)["latency_ms"] > 0,
                       message=f"{backend} probed over HTTP/2")
        for backend in ("not-h2-checked", "failing-checked"):
            wait_until(lambda: not endpoint(backend)["healthy"], message=f"{backend} goes down")
        probes = self.meridian.metric("meridian_health_checks_total",
                                      {"backend": "h2-api", "result": "success"})
        self.assertGreater(probes or 0, 0)

    def test_route_timeout_leaves_the_connection_usable(self):
        status, _, got, _ = self.fetch("h2c", "GET", "/c/slow?delay_ms=4000")
        self.assertEqual(status, 504)
        self.assertIn(b"upstream timed out", got)
        status, _, got, _ = self.fetch("h2c", "GET", "/c/after")
        self.assertEqual(status, 200)

    def test_many_concurrent_clients(self):
        results = []

        def client(n):
            with self.h2("h2c") as c:
                ids = [c.request("GET", f"/c/m?size=20000&n={n}&i={i}") for i in range(25)]
                c.run_until(lambda: all(c.streams[i].done for i in ids), timeout=30)
                results.extend((c.streams[i].status, len(c.streams[i].body)) for i in ids)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(results, [(200, 20000)] * 150)
        lines = [e for e in self.meridian.access_log() if e["route"] == "c"]
        self.assertTrue(all(e["endpoint"] == self.h2c.address for e in lines))


if __name__ == "__main__":
    unittest.main()
