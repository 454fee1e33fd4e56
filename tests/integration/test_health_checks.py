"""Active health checks (backends.health_check): one prober per node whatever the number of
workers, the first probe at once, one kept-alive probe connection, thresholds both ways,
unhealthy endpoints skipped, no eligible region answered 503 with Retry-After, probe timeouts,
health kept across a reload, and no probes without a health_check."""

import signal
import time
import unittest

from harness import Meridian, Origin, wait_until

INTERVAL_MS = 200

CONFIG = """
node: {name: edge-health}
workers: %(workers)d
admin:
  listen: "{admin}"
listeners:
  - name: public
    listen: "{listen}"
    routes:
      - {name: all, backend: b}
backends:
  - name: b
    balance: round_robin
%(health)s
    regions:
      - name: r1
        location: {lat: 50.0, lon: 8.0}
        endpoints: [%(endpoints)s]
"""

HEALTH = """    health_check:
      path: /health
      interval: %(interval)dms
      timeout: %(timeout)dms
      healthy_threshold: 2
      unhealthy_threshold: 2
"""


def config(endpoints, workers=2, interval=INTERVAL_MS, timeout=300, health=True):
    block = HEALTH % {"interval": interval, "timeout": timeout} if health else ""
    eps = ", ".join('{address: "{%s}"}' % name for name in endpoints)
    return CONFIG % {"workers": workers, "health": block, "endpoints": eps}


def served_by(m, n=10):
    """Names of the origins that served n sequential requests."""
    return {m.get("/x").header("X-Origin-Name") for _ in range(n)}


def proxied(origin):
    """Requests the origin received other than health probes."""
    s = origin.stats()
    return s["requests"] - s["requests_by_path"].get("/health", 0)


class HealthCheckTest(unittest.TestCase):
    def test_first_probe_at_once_one_prober_per_node_on_one_connection(self):
        with Origin("o1") as o1:
            # A 10 s interval: a first probe after one interval would miss the deadline.
            with Meridian(config(["o1"], workers=4, interval=10_000), {"o1": o1.address}):
                wait_until(lambda: o1.requests("/health") >= 1, timeout=3,
                           message="no probe right after start")
                self.assertEqual(o1.requests("/health"), 1)  # not one per worker

        with Origin("o1") as o1:
            with Meridian(config(["o1"], workers=4), {"o1": o1.address}):
                start = time.monotonic()
                wait_until(lambda: o1.requests("/health") >= 6, timeout=10,
                           message="probes stopped")
                elapsed_ms = (time.monotonic() - start) * 1000
                probes = o1.requests("/health")
                # One prober: about elapsed / interval probes (+-10% jitter), not 4 times that.
                self.assertLessEqual(probes, elapsed_ms / (0.9 * INTERVAL_MS) + 3,
                                     f"{probes} probes in {elapsed_ms:.0f} ms")
                self.assertEqual(o1.stats()["connections_accepted"], 1)
                entry = o1.log(path="/health")[-1]
                headers = {k.lower(): v for k, v in entry["headers"]}
                self.assertEqual(entry["method"], "GET")
                self.assertEqual(headers.get("host"), o1.address)
                self.assertEqual(headers.get("user-agent"), "meridian-health")

    def test_unhealthy_endpoint_is_skipped_and_comes_back(self):
        with Origin("o1") as o1, Origin("o2") as o2, \
                Meridian(config(["o1", "o2"]), {"o1": o1.address, "o2": o2.address}) as m:
            wait_until(lambda: served_by(m) == {"o1", "o2"}, timeout=5,
                       message="round robin never reached both origins")
            o1.set_health(503)
            wait_until(lambda: "endpoint " + o1.address + ": healthy -> unhealthy"
                       in m.stderr_text(), timeout=5, message="no unhealthy transition logged")
            self.assertIn("(2 failures: status 503)", m.stderr_text())
            self.assertEqual(served_by(m, 20), {"o2"})

            o1.set_health(200)
            wait_until(lambda: "endpoint " + o1.address + ": unhealthy -> healthy"
                       in m.stderr_text(), timeout=5, message="no healthy transition logged")
            wait_until(lambda: served_by(m) == {"o1", "o2"}, timeout=5,
                       message="the recovered endpoint got no traffic")

    def test_no_healthy_endpoint_answers_503_with_retry_after(self):
        with Origin("o1", health_status=500) as o1, \
                Meridian(config(["o1"]), {"o1": o1.address}, wait="health") as m:
            wait_until(lambda: m.get("/x").status == 503, timeout=5,
                       message="the unhealthy endpoint kept serving")
            r = m.get("/x")
            self.assertEqual(r.status, 503)
            self.assertEqual(r.header("Retry-After"), "1")
            # The backend is down, the node is not: readiness never follows the origins.
            self.assertEqual(m.admin("GET", "/ready?backend=b").status, 503)
            self.assertEqual(m.admin("GET", "/ready").status, 200)
            before = proxied(o1)
            m.get("/x")
            self.assertEqual(proxied(o1), before)

            o1.set_health(200)
            wait_until(lambda: m.get("/x").status == 200, timeout=5,
                       message="the endpoint never came back")
            self.assertEqual(m.admin("GET", "/ready?backend=b").status, 200)
            self.assertEqual(m.admin("GET", "/ready").status, 200)

    def test_probe_timeout_counts_as_failure(self):
        with Origin("o1") as o1, Origin("o2") as o2, \
                Meridian(config(["o1", "o2"], timeout=300), {"o1": o1.address,
                                                             "o2": o2.address}) as m:
            o1.set_health(200, delay_ms=2000)
            wait_until(lambda: "endpoint " + o1.address + ": healthy -> unhealthy"
                       in m.stderr_text(), timeout=10, message="slow probes never failed")
            self.assertIn("timeout", m.stderr_text())
            self.assertEqual(served_by(m, 10), {"o2"})

    def test_reload_keeps_health_state(self):
        with Origin("o1") as o1, Origin("o2") as o2:
            subs = {"o1": o1.address, "o2": o2.address}
            with Meridian(config(["o1", "o2"]), subs) as m:
                o1.set_health(503)
                wait_until(lambda: "healthy -> unhealthy" in m.stderr_text(), timeout=5,
                           message="o1 never became unhealthy")
                m.write_config(config(["o1", "o2"]), subs)
                m.send_signal(signal.SIGHUP)
                wait_until(lambda: "reloaded" in m.stderr_text(), timeout=5,
                           message="no reload")
                # Kept endpoint, kept verdict: had it restarted healthy, o1 would serve
                # until two more probes failed.
                self.assertEqual(served_by(m, 20), {"o2"})

    def test_backend_without_health_check_is_not_probed(self):
        with Origin("o1", health_status=503) as o1, \
                Meridian(config(["o1"], health=False), {"o1": o1.address}) as m:
            for _ in range(5):
                self.assertEqual(m.get("/x").status, 200)
            # Had there been a prober, its first probe would have gone out at start-up.
            self.assertEqual(o1.requests("/health"), 0)


if __name__ == "__main__":
    unittest.main()
