"""Fast failure detection (docs/http-behaviour.md, health checks): with the default probe
settings (every 2 s, 3 failures in a row), a region whose origins die under steady load is
left within about one probe timeout, not 3 intervals: a connect the data path could not make
counts as a failed probe and the endpoint is probed again at once, then every 200 ms while it
is failing. No request fails meanwhile (connect failures are retried in the next region),
and the region comes back only through its probes (healthy_threshold)."""

import time
import unittest

from harness import Meridian, Origin, SteadyLoad, wait_until

CONFIG = """
node: {name: edge-detect}
workers: 2
admin:
  listen: "{admin}"
listeners:
  - name: public
    listen: "{listen}"
    routes: [{name: all, backend: web, retries: 2}]
backends:
  - name: web
    steering: {policy: failover}
    health_check: {path: /health}   # interval 2s, timeout 1s, 3 failures, 2 successes
    regions:
      - name: primary
        endpoints: [{address: "{p1}"}, {address: "{p2}"}]
      - name: secondary
        endpoints: [{address: "{s1}"}]
"""


def primary(status):
    return next(r for r in status["backends"][0]["regions"] if r["name"] == "primary")


class FailureDetectionTest(unittest.TestCase):
    def test_dead_region_is_left_within_two_seconds_without_failed_requests(self):
        origins = {n: Origin(n).start() for n in ("p1", "p2", "s1")}
        try:
            subs = {n: o.address for n, o in origins.items()}
            with Meridian(CONFIG, subs) as m, SteadyLoad(m.listen_address) as load:
                wait_until(lambda: load.ok > 50, 10, message="no steady load")
                self.assertEqual(origins["s1"].requests("/load"), 0)  # failover: primary
                killed = time.monotonic()
                origins["p1"].kill()
                origins["p2"].kill()
                wait_until(lambda: not primary(m.status())["eligible"], 10, interval=0.01,
                           message="the dead region was never left")
                took = time.monotonic() - killed
                print(f"\nregion left {took * 1000:.0f} ms after its origins died "
                      f"(default probes: 2 s interval, 3 failures)", flush=True)
                served_before = origins["s1"].requests("/load")
                wait_until(lambda: origins["s1"].requests("/load") > served_before + 20, 10)
                log = m.stderr_text()
            self.assertLess(took, 2.0)
            self.assertEqual(load.failed, [], f"{len(load.failed)} failed requests")
            self.assertIn("a request could not connect; probing now", log)
            self.assertIn("healthy -> unhealthy", log)
        finally:
            for o in origins.values():
                o.stop()

    def test_region_comes_back_through_its_probes(self):
        origins = {n: Origin(n, health_status=503).start() for n in ("p1", "p2")}
        origins["s1"] = Origin("s1").start()
        try:
            subs = {n: o.address for n, o in origins.items()}
            with Meridian(CONFIG, subs, wait="health") as m:
                wait_until(lambda: not primary(m.status())["eligible"], 10)
                for n in ("p1", "p2"):
                    origins[n].set_health(200)
                back = time.monotonic()
                wait_until(lambda: primary(m.status())["eligible"], 10, interval=0.05)
                # Two good probes at the 2 s interval: the region is not taken back on the
                # first success.
                self.assertGreater(time.monotonic() - back, 1.5)
                self.assertEqual(m.get("/x").header("X-Origin-Name")[0], "p")
        finally:
            for o in origins.values():
                o.stop()


if __name__ == "__main__":
    unittest.main()
