"""TLS to the endpoints (a backend's `tls`): requests and health checks go over TLS, the
endpoint's certificate is verified by default (against `ca`, for the name `server_name` or the
endpoint's host, sent as SNI), a certificate that does not verify is a connect failure (retried
elsewhere, 502 when nothing is left) and fails health checks, `verify: false` accepts it, and
pooled TLS connections are reused."""

import json
import os
import shutil
import tempfile
import unittest

from harness import Meridian, Origin, wait_until
from test_tls import make_certificate
from test_websocket import WsClient

CONFIG = """
node: {name: edge-up-tls}
workers: 1
admin:
  listen: "{admin}"
listeners:
  - name: public
    listen: "{listen}"
    routes:
      - {name: verified, match: {path_prefix: /verified}, backend: verified, retries: 0}
      - {name: wrong-name, match: {path_prefix: /wrong-name}, backend: wrong_name, retries: 0}
      - {name: unverified, match: {path_prefix: /unverified}, backend: unverified}
      - {name: checked, match: {path_prefix: /checked}, backend: checked}
      - {name: ws, match: {path_prefix: /ws}, backend: verified}
      - {name: slow, match: {path_prefix: /slow}, backend: verified, timeout: 300ms, retries: 0}
backends:
  - name: verified
    tls: {ca: "{certs}/origin.pem", server_name: origin.test}
    regions: [{name: r1, location: {lat: 0, lon: 0}, endpoints: [{address: "{o1}"}]}]
  - name: wrong_name
    tls: {ca: "{certs}/origin.pem", server_name: other.test}
    regions: [{name: r1, location: {lat: 0, lon: 0}, endpoints: [{address: "{o1}"}]}]
  - name: unverified
    tls: {verify: false}
    regions: [{name: r1, location: {lat: 0, lon: 0}, endpoints: [{address: "{o1}"}]}]
  - name: checked
    tls: {ca: "{certs}/origin.pem", server_name: origin.test}
    health_check: {path: /health, interval: 200ms, timeout: 1s, healthy_threshold: 1,
                   unhealthy_threshold: 1}
    regions: [{name: r1, location: {lat: 0, lon: 0}, endpoints: [{address: "{o1}"}]}]
"""


@unittest.skipUnless(shutil.which("openssl"), "openssl needed")
class UpstreamTlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = tempfile.mkdtemp(prefix="meridian-up-tls-")
        make_certificate(cls.certs, "origin", "origin.test", ["origin.test"])
        cls.origin = Origin("o1", extra_args=[
            "--tls-cert", os.path.join(cls.certs, "origin.pem"),
            "--tls-key", os.path.join(cls.certs, "origin.key")]).start()
        cls.meridian = Meridian(CONFIG, {"o1": cls.origin.address, "certs": cls.certs}).start()

    @classmethod
    def tearDownClass(cls):
        cls.meridian.stop()
        cls.origin.stop()
        shutil.rmtree(cls.certs, ignore_errors=True)

    def tls_connections(self):
        return self.origin.stats()["tls_connections"]

    def test_requests_go_over_tls_with_verification_and_reuse(self):
        before = self.tls_connections()
        connections = set()
        for i in range(5):
            r = self.meridian.get(f"/verified/{i}")
            self.assertEqual(r.status, 200, r)
            report = json.loads(r.body)
            self.assertEqual(report["path"], f"/verified/{i}")
            self.assertTrue(report["tls"], "the origin received it over TLS")
            connections.add(report["connection_id"])
        # One worker, sequential requests: one pooled TLS connection served all five (made
        # now, or by an earlier test of this class).
        self.assertEqual(len(connections), 1)
        self.assertLessEqual(self.tls_connections() - before, 1)
        with self.meridian.conn() as c:
            r = c.request("POST", "/verified/body", body=b"x" * 100000)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(json.loads(r.body)["body_length"], 100000)

    def test_a_certificate_for_another_name_is_refused(self):
        before = self.origin.requests("/wrong-name")
        r = self.meridian.get("/wrong-name")
        self.assertEqual(r.status, 502, r)
        self.assertEqual(self.origin.requests("/wrong-name"), before, "nothing was sent")

    def test_verify_false_accepts_it(self):
        r = self.meridian.get("/unverified")
        self.assertEqual(r.status, 200, r)

    def test_timeout_while_a_tls_read_is_pending(self):
        # The route's timeout drops the upstream connection while its TLS read of the
        # response is pending (the origin delays): the stream must outlive the cancelled
        # operation (under ASan a use-after-free otherwise).
        for _ in range(3):
            r = self.meridian.get("/slow/x?delay_ms=1500")
            self.assertEqual(r.status, 504, r)
        self.assertEqual(self.meridian.get("/verified/after").status, 200)

    def test_websocket_to_a_tls_backend(self):
        ws = WsClient(self.meridian.listen_address, "/ws")
        try:
            self.assertEqual(ws.status, 101)
            for i in range(5):
                ws.send(1, f"over tls {i}".encode())
                self.assertEqual(ws.recv(), (1, f"over tls {i}".encode()))
        finally:
            ws.close()

    def test_health_checks_over_tls(self):
        def healthy_and_probed():
            for b in self.meridian.status()["backends"]:
                if b["name"] == "checked":
                    e = b["regions"][0]["endpoints"][0]
                    return e["healthy"] and e.get("checks", {}).get("successes", 1) > 0
            return False
        wait_until(healthy_and_probed, 10, message="TLS health checks succeed")
        self.assertGreater(self.origin.requests("/health"), 0)
        self.assertEqual(self.meridian.get("/checked").status, 200)


if __name__ == "__main__":
    unittest.main()
