"""Balancing rotation is per region: a worker's round robin (and least_conn tie-break) for one
backend is not disturbed by the traffic its other backends see. Requests alternating between two
backends on one worker must still alternate between each backend's endpoints (with one counter
shared by the worker, backend A would see only even tickets and always land on its first
endpoint)."""

import collections
import unittest

from harness import Meridian, Origin

CONFIG = """
node: {name: edge-balance}
workers: 1
debug_headers: true
admin:
  listen: "{admin}"
listeners:
  - name: public
    listen: "{listen}"
    routes:
      - {name: a, match: {path_prefix: /a/}, backend: a}
      - {name: b, match: {path_prefix: /b/}, backend: b}
backends:
  - name: a
    balance: %(balance)s
    regions:
      - {name: r1, location: {lat: 50, lon: 8}, endpoints: [{address: "{a1}"}, {address: "{a2}"}]}
  - name: b
    balance: %(balance)s
    regions:
      - {name: r1, location: {lat: 50, lon: 8}, endpoints: [{address: "{b1}"}, {address: "{b2}"}]}
"""


class PerRegionRotationTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.origins = {n: Origin(n).start() for n in ("a1", "a2", "b1", "b2")}

    @classmethod
    def tearDownClass(cls):
        for o in cls.origins.values():
            o.stop()

    def alternate(self, balance):
        subs = {n: o.address for n, o in self.origins.items()}
        seen = collections.Counter()
        with Meridian(CONFIG % {"balance": balance}, subs) as m, m.conn() as c:
            for i in range(20):
                for backend in ("a", "b"):
                    r = c.request("GET", f"/{backend}/{i}")
                    self.assertEqual(r.status, 200, r)
                    seen[(backend, r.header("x-meridian-endpoint"))] += 1
        by_name = {(n[0], o.address): n for n, o in self.origins.items()}
        counts = {by_name[k]: v for k, v in seen.items()}
        # Sequential requests: in-flight counts are all 0, so least_conn is pure rotation too.
        self.assertEqual(counts, {"a1": 10, "a2": 10, "b1": 10, "b2": 10}, seen)

    def test_round_robin_alternating_backends(self):
        self.alternate("round_robin")

    def test_least_conn_ties_alternating_backends(self):
        self.alternate("least_conn")


if __name__ == "__main__":
    unittest.main()
