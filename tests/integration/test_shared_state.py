"""Runtime overrides shared by the fleet (admin.shared_state: redis; docs/admin-api.md): a
POST /state on one node changes steering on another within a second, through a real Redis;
a node that starts (or reconnects) later catches up from the hash; Redis going down changes
nothing already applied, and an override made meanwhile holds on its node ("shared":
false)."""

import time
import unittest

from harness import Meridian, Origin, RedisServer, wait_until

CONFIG = """
node: {name: "{name}"}
workers: 2
debug_headers: true
admin:
  listen: "{admin}"
  shared_state: redis
rate_limit_store:
  redis: "{redis}"
listeners:
  - name: public
    listen: "{listen}"
    routes: [{name: all, backend: web, retries: 2}]
backends:
  - name: web
    steering: {policy: failover}
    regions:
      - {name: primary, endpoints: [{address: "{p1}"}]}
      - {name: secondary, endpoints: [{address: "{s1}"}]}
"""


def region_of(m):
    r = m.get("/x")
    assert r.status == 200, r.text()
    return r.header("x-meridian-region")


class SharedStateTest(unittest.TestCase):
    def setUp(self):
        self.redis = RedisServer().__enter__()
        self.origins = {n: Origin(n).start() for n in ("p1", "s1")}
        self.subs = {"p1": self.origins["p1"].address, "s1": self.origins["s1"].address,
                     "redis": self.redis.address}

    def tearDown(self):
        for o in self.origins.values():
            o.stop()
        self.redis.__exit__(None, None, None)

    def node(self, name):
        return Meridian(CONFIG, dict(self.subs, name=name))

    def following(self, m):
        shared = m.status()["shared_state"]
        return shared is not None and shared["connected"]

    def test_an_override_on_one_node_steers_another_within_a_second(self):
        with self.node("edge-a") as a, self.node("edge-b") as b:
            for m in (a, b):
                wait_until(lambda m=m: self.following(m), 10, message="not following Redis")
                self.assertEqual(region_of(m), "primary")
            r = a.admin("POST", "/state?backend=web&region=primary&state=disabled")
            self.assertEqual(r.status, 200, r.text())
            self.assertEqual(r.json()["shared"], True)
            set_at = time.monotonic()
            wait_until(lambda: region_of(b) == "secondary", 5, interval=0.01,
                       message="edge-b never followed")
            took = time.monotonic() - set_at
            print(f"\nedge-b steered away {took * 1000:.0f} ms after POST /state on edge-a",
                  flush=True)
            self.assertLess(took, 1.0)
            self.assertEqual(region_of(a), "secondary")
            regions = {r["name"]: r for r in b.status()["backends"][0]["regions"]}
            self.assertEqual(regions["primary"]["state"], "disabled")
            self.assertIn("runtime state (the fleet): backend web region primary: active -> "
                          "disabled", b.stderr_text())

            # A node started later reads the hash; an endpoint override travels too.
            r = b.admin("POST", f"/state?backend=web&region=secondary&endpoint={self.subs['s1']}"
                                "&state=drain")
            self.assertEqual(r.json()["shared"], True)
            with self.node("edge-c") as c:
                wait_until(lambda: self.following(c), 10)
                wait_until(lambda: c.status()["backends"][0]["regions"][0]["state"] ==
                           "disabled", 5, message="edge-c never caught up")
                endpoint = c.status()["backends"][0]["regions"][1]["endpoints"][0]
                self.assertEqual(endpoint["state"], "drain")
                self.assertEqual(region_of(c), "secondary")  # drain, but nothing else is left

            # Back to active everywhere.
            a.admin("POST", "/state?backend=web&region=primary&state=active")
            wait_until(lambda: region_of(b) == "primary", 5)

    def test_redis_down_changes_nothing_applied_and_a_reconnect_catches_up(self):
        with self.node("edge-a") as a, self.node("edge-b") as b:
            for m in (a, b):
                wait_until(lambda m=m: self.following(m), 10)
            a.admin("POST", "/state?backend=web&region=primary&state=disabled")
            wait_until(lambda: region_of(b) == "secondary", 5)
            self.redis.kill()
            wait_until(lambda: not self.following(b), 10, message="edge-b did not notice")
            self.assertEqual(region_of(b), "secondary")  # still applied
            r = a.admin("POST", "/state?backend=web&region=primary&state=active")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json()["shared"], False)  # holds on edge-a only
            self.assertEqual(region_of(a), "primary")
            self.assertEqual(region_of(b), "secondary")
            # Redis back (empty: it keeps no data): the override is written again on edge-b
            # and edge-a catches up when it reconnects.
            self.redis.start()
            wait_until(lambda: self.following(a) and self.following(b), 10)
            r = b.admin("POST", "/state?backend=web&region=primary&state=drain")
            self.assertEqual(r.json()["shared"], True)
            wait_until(lambda: a.status()["backends"][0]["regions"][0]["state"] == "drain", 5)
            self.assertEqual(region_of(a), "secondary")


if __name__ == "__main__":
    unittest.main()
