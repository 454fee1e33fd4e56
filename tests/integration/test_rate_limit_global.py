"""Rate limiting, scope global: several meridian processes share one bucket in a real Redis;
with Redis killed or hung, on_error decides within the store's timeout and no request hangs;
sharing resumes when Redis is back."""

import time
import unittest

from harness import HttpConn, Meridian, Origin, RedisServer, wait_until

CONFIG = """
node: {name: %(node)s}
workers: 2
admin:
  listen: "{admin}"
rate_limit_store:
  redis: "{redis}"
  timeout: 100ms
  on_error: %(on_error)s
listeners:
  - name: public
    listen: "{listen}"
    routes:
      - {name: shared, match: {path_prefix: /shared/}, backend: b,
         rate_limit: {rate: 10/m, burst: 10, key: "header:X-Tenant", scope: global}}
      - {name: open, backend: b}
backends:
  - name: b
    regions:
      - name: r1
        location: {lat: 50.0, lon: 8.0}
        endpoints: [{address: "{o1}"}]
"""


class GlobalRateLimitTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = RedisServer().start()
        cls.origin = Origin("o1").start()
        cls.nodes = []
        try:
            for node, on_error in (("edge-a", "deny"), ("edge-b", "allow")):
                subs = {"o1": cls.origin.address, "redis": cls.redis.address}
                cls.nodes.append(Meridian(CONFIG % {"node": node, "on_error": on_error},
                                          subs).__enter__())
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for m in cls.nodes:
            m.__exit__(None, None, None)
        cls.origin.stop()
        cls.redis.__exit__(None, None, None)

    def get(self, node, tenant):
        with HttpConn(node.listen_address) as c:
            return c.request("GET", "/shared/x", [("X-Tenant", tenant)])

    def timed_get(self, node, tenant):
        start = time.monotonic()
        r = self.get(node, tenant)
        return r, time.monotonic() - start

    def wait_connected(self):
        # Every worker of both nodes has its Redis connection back (they reconnect with
        # backoff, each on its own).
        def all_up():
            for node in self.nodes:
                store = node.status()["rate_limits"]["store"]
                if store["workers_connected"] != store["workers"]:
                    return False
            return True
        wait_until(all_up, 15, interval=0.05, message="every worker to reconnect to redis")

    def setUp(self):
        self.wait_connected()

    def test_two_nodes_share_one_bucket(self):
        statuses = [self.get(self.nodes[i % 2], "t-shared").status for i in range(30)]
        self.assertEqual(statuses.count(200), 10, statuses)
        self.assertEqual(statuses.count(429), 20, statuses)
        self.assertEqual(statuses[:10], [200] * 10, "the first ten are allowed, then none")
        self.assertIn("meridian:rl:public/shared:h=t-shared", self.redis.keys())
        ttl = self.redis.command("PTTL", "meridian:rl:public/shared:h=t-shared")
        self.assertGreater(ttl, 0, "bucket keys expire")
        self.assertLessEqual(ttl, 61_000 + 1000)

    def test_headers_come_from_the_shared_bucket(self):
        r1 = self.get(self.nodes[0], "t-headers")
        r2 = self.get(self.nodes[1], "t-headers")
        self.assertEqual((r1.header("RateLimit-Remaining"), r2.header("RateLimit-Remaining")),
                         ("9", "8"))
        self.assertEqual(r2.header("RateLimit-Limit"), "10")

    def test_redis_killed_then_back(self):
        deny, allow = self.nodes
        self.redis.kill()
        wait_until(lambda: all(n.status()["rate_limits"]["store"]["workers_connected"] == 0
                               for n in self.nodes), 10, message="the nodes to see redis gone")
        try:
            for node, expected in ((deny, 503), (allow, 200)):
                for _ in range(4):
                    r, took = self.timed_get(node, "t-down")
                    self.assertEqual(r.status, expected, r)
                    self.assertLess(took, 2.0, "a request waited on a dead store")
                    if expected == 503:
                        self.assertIn("rate limit store", r.text())
        finally:
            self.redis.start()
        self.wait_connected()
        statuses = [self.get(self.nodes[i % 2], "t-back").status for i in range(12)]
        self.assertEqual(statuses, [200] * 10 + [429] * 2, "sharing resumed")

    def test_redis_hung_decided_within_timeout(self):
        deny, allow = self.nodes
        self.redis.pause()
        try:
            for node, expected in ((deny, 503), (allow, 200)):
                r, took = self.timed_get(node, "t-hung")
                self.assertEqual(r.status, expected, r)
                # timeout is 100 ms; the route's own timeout (30 s) is never reached.
                self.assertLess(took, 2.0, f"took {took:.2f}s with a hung store")
        finally:
            self.redis.resume()
        self.wait_connected()


if __name__ == "__main__":
    unittest.main()
