"""One behaviour suite over the three downstream protocols (Proxygen's typed tests): the same
checks -- header rules both ways, retries, upstream failures, the route timeout, 413, the long
target and 431 limits, rate limits, steering and the access log -- run for a client speaking
HTTP/1.1, HTTP/2 over TLS and h2c (prior knowledge), each against the real binary and the test
origin. A behaviour that differs by protocol says so in PROTOCOL_DIFFERENCES below; nothing
else may differ.

Each protocol is a subclass of BehaviourSuite with its own meridian (protocol_clients.py)."""

import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))

from harness import (FRANKFURT, LOOPBACK_DB, NEW_YORK, Meridian, Origin,  # noqa: E402
                     free_port, wait_until)
from test_tls import make_certificate  # noqa: E402

try:
    from protocol_clients import PROTOCOLS
except ImportError:  # python3-h2 missing: tests/install-deps.sh installs it
    PROTOCOLS = None


# What legitimately differs between the protocols, and why.
PROTOCOL_DIFFERENCES = {
    # HTTP/2 has no request line: a long :path counts against the header list (RFC 7541
    # 4.1 measure), so it is 431 where HTTP/1.1 says 414.
    "long_target_status": {"http1": 414, "h2": 431, "h2c": 431},
}

CONFIG = """
node: {name: edge-matrix}
workers: 1
debug_headers: true
admin: {listen: "{admin}"}
geoip: {database: "{geoip}"}
access_log: {path: "{dir}/access.log", format: json}
limits:
  max_request_header_bytes: 4KiB
  max_request_body_bytes: 1KiB
listeners:
  - name: plain
    listen: "{plain}"
    routes: &routes
      - {name: limited, match: {path_prefix: /limited}, backend: world,
         rate_limit: {rate: 1/h, burst: 1}}
      - {name: slow, match: {path_prefix: /slow}, backend: world, timeout: 300ms}
      - {name: retry, match: {path_prefix: /retry}, backend: flaky, retries: 1}
      - {name: fragile, match: {path_prefix: /fragile}, backend: world, retries: 0}
      - {name: all, match: {host: matrix.test}, backend: world}
  - name: tls
    listen: "{tls}"
    tls:
      certificates: [{cert: "{certs}/matrix.pem", key: "{certs}/matrix.key"}]
    routes: *routes
backends:
  - name: world
    steering: {policy: geo}
    regions:
      - {name: us-east, location: {lat: 38.90, lon: -77.04}, endpoints: [{address: "{us}"}]}
      - {name: eu-west, location: {lat: 53.35, lon: -6.26}, endpoints: [{address: "{eu}"}]}
  - name: flaky
    balance: round_robin
    regions:
      - name: only
        location: {lat: 50.1, lon: 8.7}
        endpoints: [{address: "{dead}"}, {address: "{us}"}]
"""


class BehaviourSuite:
    """The checks; a subclass per protocol sets PROTOCOL (a key of protocol_clients.PROTOCOLS)
    and mixes in unittest.TestCase."""

    PROTOCOL = None

    @classmethod
    def setUpClass(cls):
        cls.certs = tempfile.mkdtemp(prefix="meridian-matrix-")
        make_certificate(cls.certs, "matrix", "matrix.test", ["matrix.test"])
        cls.us = Origin("us").start()
        cls.eu = Origin("eu").start()
        cls.addresses = {"plain": f"127.0.0.1:{free_port()}", "tls": f"127.0.0.1:{free_port()}"}
        cls.meridian = Meridian(CONFIG, {
            "us": cls.us.address, "eu": cls.eu.address, "certs": cls.certs,
            "geoip": LOOPBACK_DB, "dead": f"127.0.0.1:{free_port()}", **cls.addresses}).start()
        cls.client = PROTOCOLS[cls.PROTOCOL](cls.addresses, os.path.join(cls.certs, "matrix.pem"))

    @classmethod
    def tearDownClass(cls):
        cls.meridian.stop()
        cls.us.stop()
        cls.eu.stop()
        shutil.rmtree(cls.certs, ignore_errors=True)

    def setUp(self):
        self.us.reset_stats()
        self.eu.reset_stats()

    def request(self, method, path, **kwargs):
        return self.client.request(method, path, **kwargs)

    def forwarded(self, path):
        """The requests the origins received for `path`."""
        return self.us.log(path=path) + self.eu.log(path=path)

    # ---- header rules --------------------------------------------------------------------

    def test_request_headers_are_rewritten_for_the_origin(self):
        r = self.request("GET", "/echo", headers=[("X-Forwarded-For", "192.0.2.1"),
                                                  ("X-Request-Id", "matrix-1"),
                                                  ("X-Custom", "kept")])
        self.assertEqual(r.status, 200, r)
        seen = {}
        for name, value in r.json()["headers"]:
            seen.setdefault(name.lower(), []).append(value)
        self.assertEqual(seen["x-forwarded-for"], ["192.0.2.1, 127.0.0.1"])
        self.assertEqual(seen["x-forwarded-proto"], ["https" if self.client.https else "http"])
        self.assertEqual(seen["x-request-id"], ["matrix-1"])
        self.assertEqual(seen["x-custom"], ["kept"])
        self.assertEqual(seen["host"], ["matrix.test"])
        self.assertIn("edge-matrix", seen["via"][0])

    def test_request_id_is_generated_when_absent(self):
        r = self.request("GET", "/rid")
        ids = [v for n, v in r.json()["headers"] if n.lower() == "x-request-id"]
        self.assertEqual(len(ids), 1)
        self.assertTrue(ids[0])

    def test_response_headers_lose_hop_by_hop_fields_and_gain_via(self):
        r = self.request("GET", "/resp?header=Keep-Alive:timeout%3D5&header=X-Kept:yes"
                                "&header=Connection:X-Named&header=X-Named:gone")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("x-kept"), "yes")
        self.assertIsNone(r.header("keep-alive"))
        self.assertIsNone(r.header("x-named"))
        self.assertIn("edge-matrix", r.header("via", ""))
        self.assertIsNotNone(r.header("x-meridian-region"))

    # ---- upstream failures, retries, timeouts ----------------------------------------------

    def test_a_dead_endpoint_is_retried_on_the_next(self):
        statuses = [self.request("GET", f"/retry/{i}").status for i in range(4)]
        self.assertEqual(statuses, [200] * 4)
        self.assertGreaterEqual(wait_until(lambda: self.meridian.metric(
            "meridian_upstream_retries_total", {"backend": "flaky"}), message="retry counted"), 1)

    def test_an_origin_that_resets_is_a_502(self):
        r = self.request("GET", "/fragile?reset_before=1")
        self.assertEqual(r.status, 502, r)
        self.assertIn(b"upstream", r.body)

    def test_the_route_timeout_is_a_504(self):
        r = self.request("GET", "/slow?delay_ms=3000")
        self.assertEqual(r.status, 504, r)
        self.assertIn(b"timed out", r.body)

    # ---- limits --------------------------------------------------------------------------

    def test_a_body_over_the_limit_is_413_and_not_forwarded(self):
        r = self.request("POST", "/big-body", body=b"x" * 2000,
                         headers=[("Content-Length", "2000")])
        self.assertEqual(r.status, 413, r)
        self.assertEqual(self.forwarded("/big-body"), [])

    def test_a_long_target_is_refused(self):
        r = self.request("GET", "/long/" + "a" * 5000)
        expected = PROTOCOL_DIFFERENCES["long_target_status"][self.PROTOCOL]
        self.assertEqual(r.status, expected, r)

    def test_a_header_list_over_the_limit_is_431(self):
        r = self.request("GET", "/big-header", headers=[("X-Big", "b" * 5000)])
        self.assertEqual(r.status, 431, r)
        self.assertEqual(self.forwarded("/big-header"), [])

    # ---- rate limits ---------------------------------------------------------------------

    def test_the_rate_limit_answers_429_with_its_fields(self):
        first = self.request("GET", "/limited/a")
        second = self.request("GET", "/limited/b")
        self.assertEqual(first.status, 200, first)
        self.assertEqual(first.header("ratelimit-limit"), "1")
        self.assertEqual(second.status, 429, second)
        self.assertEqual(second.header("ratelimit-remaining"), "0")
        self.assertIsNotNone(second.header("retry-after"))
        self.assertEqual(self.forwarded("/limited/b"), [])

    # ---- steering ------------------------------------------------------------------------

    def test_clients_are_steered_to_their_nearest_region(self):
        self.assertEqual(self.request("GET", "/steer", source=FRANKFURT).header(
            "x-meridian-region"), "eu-west")
        self.assertEqual(self.request("GET", "/steer", source=NEW_YORK).header(
            "x-meridian-region"), "us-east")

    # ---- access log ----------------------------------------------------------------------

    def test_the_access_log_records_the_request(self):
        path = f"/logged-{self.PROTOCOL}"
        r = self.request("GET", path + "?q=1", headers=[("X-Request-Id", "log-1"),
                                                         ("User-Agent", "matrix/1")],
                         source=NEW_YORK)
        self.assertEqual(r.status, 200)
        entry = wait_until(lambda: [e for e in self.meridian.access_log("access.log")
                                    if e.get("path") == path],
                           message="access log line")[0]
        self.assertEqual(entry["status"], 200)
        self.assertEqual(entry["method"], "GET")
        self.assertEqual(entry["region"], "us-east")
        self.assertEqual(entry["client"], NEW_YORK)
        self.assertEqual(entry["request_id"], "log-1")
        self.assertEqual(entry["user_agent"], "matrix/1")
        self.assertEqual(entry["listener"], "tls" if self.client.https else "plain")



@unittest.skipUnless(PROTOCOLS, "python3-h2 needed")
class Http1Behaviour(BehaviourSuite, unittest.TestCase):
    PROTOCOL = "http1"


@unittest.skipUnless(PROTOCOLS, "python3-h2 needed")
class H2TlsBehaviour(BehaviourSuite, unittest.TestCase):
    PROTOCOL = "h2"


@unittest.skipUnless(PROTOCOLS, "python3-h2 needed")
class H2cBehaviour(BehaviourSuite, unittest.TestCase):
    PROTOCOL = "h2c"


if __name__ == "__main__":
    unittest.main()
