"""Regional steering, balancing and failover: clients placed on continents by the loopback GeoIP
database reach the nearest region (read from x-meridian-region), fail over when a region is down
or unhealthy, stay fenced with strict rules, and get 503 with Retry-After when nothing is
eligible."""

import os
import unittest

from harness import HttpConn, Meridian, Origin, split_address, wait_until

GEOIP = os.path.join(os.environ.get("MERIDIAN_SOURCE_DIR", "../.."),
                     "tests/data/geoip/loopback-city.mmdb")

# Regions at real coordinates; the node stands in Frankfurt.
CONFIG = """
node: {name: edge-steer, location: {lat: 50.11, lon: 8.68}}
workers: 2
debug_headers: true
admin:
  listen: "{admin}"
geoip:
  database: "{geoip}"
listeners:
  - name: public
    listen: "{listen}"
    routes:
      - {name: fenced, match: {path_prefix: /fenced/}, backend: fenced}
      - {name: soft, match: {path_prefix: /soft/}, backend: soft}
      - {name: all, backend: world, retries: 2}
backends:
  - name: world
    # Loopback probe round trips are noise (tens of ms on a loaded CI machine, enough to
    # overturn Sao Paulo's 18 ms margin); a tenth of them keeps the term without the noise.
    steering: {policy: nearest, latency_weight: 0.1}
    health_check: {path: /health, interval: 200ms, timeout: 500ms, healthy_threshold: 1,
                   unhealthy_threshold: 1}
    regions:
      - {name: us-east, location: {lat: 38.90, lon: -77.04}, endpoints: [{address: "{us}"}]}
      - {name: eu-west, location: {lat: 53.35, lon: -6.26}, endpoints: [{address: "{eu}"}]}
      - {name: ap-southeast, location: {lat: 1.35, lon: 103.82},
         endpoints: [{address: "{ap}"}]}
  - name: fenced
    steering:
      policy: nearest
      rules: [{match: {continent: EU}, regions: [eu-west], strict: true}]
    health_check: {path: /health, interval: 200ms, timeout: 500ms, healthy_threshold: 1,
                   unhealthy_threshold: 1}
    regions:
      - {name: us-east, location: {lat: 38.90, lon: -77.04}, endpoints: [{address: "{us}"}]}
      - {name: eu-west, location: {lat: 53.35, lon: -6.26}, endpoints: [{address: "{eu}"}]}
  - name: soft
    steering:
      policy: nearest
      rules: [{match: {country: [SG]}, regions: [us-east]}]
    health_check: {path: /health, interval: 200ms, timeout: 500ms, healthy_threshold: 1,
                   unhealthy_threshold: 1}
    regions:
      - {name: us-east, location: {lat: 38.90, lon: -77.04}, endpoints: [{address: "{us}"}]}
      - {name: eu-west, location: {lat: 53.35, lon: -6.26}, endpoints: [{address: "{eu}"}]}
      - {name: ap-southeast, location: {lat: 1.35, lon: 103.82},
         endpoints: [{address: "{ap}"}]}
"""


class SteeringTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.origins = {name: Origin(name).start() for name in ("us", "eu", "ap")}
        try:
            subs = {name: o.address for name, o in cls.origins.items()}
            subs["geoip"] = os.path.abspath(GEOIP)
            cls.meridian = Meridian(CONFIG, subs).__enter__()
        except BaseException:
            for o in cls.origins.values():
                o.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.meridian.__exit__(None, None, None)
        finally:
            for o in cls.origins.values():
                o.stop()

    def setUp(self):
        for o in self.origins.values():
            o.set_health(200)
        def all_healthy():
            return all(e["healthy"] for b in self.meridian.status()["backends"]
                       for r in b["regions"] for e in r["endpoints"])
        wait_until(all_healthy, timeout=5, message="every endpoint healthy again")

    def get_from(self, source, path):
        host, port = split_address(self.meridian.listen_address)
        with HttpConn(host, port, source_address=source) as c:
            return c.request("GET", path)

    def region_for(self, source, path="/x"):
        r = self.get_from(source, path)
        self.assertEqual(r.status, 200, f"{source} {path}: {r!r} {r.text()!r}")
        return r.header("x-meridian-region")

    def test_clients_reach_the_nearest_region(self):
        self.assertEqual(self.region_for("127.0.1.1"), "us-east")       # New York
        self.assertEqual(self.region_for("127.0.2.1"), "eu-west")       # Frankfurt
        self.assertEqual(self.region_for("127.0.3.1"), "ap-southeast")  # Singapore
        self.assertEqual(self.region_for("127.0.5.1"), "ap-southeast")  # Sydney
        self.assertEqual(self.region_for("127.0.4.1"), "us-east")       # Sao Paulo
        # Not in the database: the node's own location (Frankfurt) stands in.
        self.assertEqual(self.region_for("127.0.0.1"), "eu-west")

    def test_unhealthy_region_is_left_and_taken_back(self):
        self.origins["eu"].set_health(503)
        wait_until(lambda: self.region_for("127.0.2.1") == "us-east", timeout=5,
                   message="Frankfurt clients never left the unhealthy eu-west")
        status = self.meridian.status()
        eu = [r for b in status["backends"] if b["name"] == "world"
              for r in b["regions"] if r["name"] == "eu-west"][0]
        self.assertFalse(eu["endpoints"][0]["healthy"])
        self.assertFalse(eu["eligible"])
        self.origins["eu"].set_health(200)
        wait_until(lambda: self.region_for("127.0.2.1") == "eu-west", timeout=5,
                   message="Frankfurt clients never came back to eu-west")

    def test_everything_down_is_503_with_retry_after_and_backend_not_ready(self):
        for o in self.origins.values():
            o.set_health(503)
        wait_until(lambda: self.get_from("127.0.2.1", "/x").status == 503, timeout=5,
                   message="no 503 with every region unhealthy")
        r = self.get_from("127.0.2.1", "/x")
        self.assertEqual(r.header("Retry-After"), "1")
        self.assertIsNone(r.header("X-Origin-Name"))
        self.assertEqual(self.meridian.admin("GET", "/ready?backend=world").status, 503)
        # The node stays ready: its other backends and the other nodes see the same origins.
        self.assertEqual(self.meridian.admin("GET", "/ready").status, 200)

    def test_strict_fencing_keeps_eu_clients_in_eu(self):
        self.assertEqual(self.region_for("127.0.2.1", "/fenced/a"), "eu-west")
        # Fencing decides, not distance: a New York client is not fenced and goes home.
        self.assertEqual(self.region_for("127.0.1.1", "/fenced/a"), "us-east")
        self.origins["eu"].set_health(503)
        wait_until(lambda: self.get_from("127.0.2.1", "/fenced/a").status == 503, timeout=5,
                   message="a strict fence let EU clients leave EU")
        self.assertEqual(self.region_for("127.0.1.1", "/fenced/a"), "us-east")

    def test_non_strict_rule_prefers_its_regions_and_fails_over(self):
        # Singapore clients prefer us-east by rule, though ap-southeast is nearer.
        self.assertEqual(self.region_for("127.0.3.1", "/soft/a"), "us-east")
        self.assertEqual(self.region_for("127.0.2.1", "/soft/a"), "eu-west")
        self.origins["us"].set_health(503)
        wait_until(lambda: self.region_for("127.0.3.1", "/soft/a") == "ap-southeast",
                   timeout=5, message="a non-strict rule did not fail over")

    def test_stopped_origin_fails_over_by_retry(self):
        # No time for health checks to notice: the connect is refused and the request is
        # retried in the next region by score.
        eu = self.origins["eu"]
        eu.stop()
        try:
            self.assertEqual(self.region_for("127.0.2.1"), "us-east")
        finally:
            eu.start()


if __name__ == "__main__":
    unittest.main()
