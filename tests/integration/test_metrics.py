"""GET /metrics: promtool accepts it, every metric of docs/metrics.md is there with its labels,
request counters rise by exactly the requests sent, and the health, latency, retry, rate-limit
and reload series move as the origins and the operator make them."""

import shutil
import subprocess
import unittest

from harness import CONTRACT_METRICS, Meridian, Origin, free_port, parse_metrics, wait_until

CONFIG = """
node: {name: edge-metrics}
workers: 2
admin:
  listen: "{admin}"
listeners:
  - name: public
    listen: "{listen}"
    routes:
      - {name: limited, match: {path_prefix: /limited/}, backend: b,
         rate_limit: {rate: 1/h, burst: 2, key: route}}
      - {name: flaky, match: {path_prefix: /flaky/}, backend: flaky, retries: 1}
      - {name: api, match: {path_prefix: /api/}, backend: b}
      - {name: lonely, match: {path_prefix: /lonely/}, backend: lonely, retries: 2}
backends:
  - name: b
    health_check: {path: /health, interval: 100ms, timeout: 1s, healthy_threshold: 1,
                   unhealthy_threshold: 1}
    regions:
      - name: r1
        location: {lat: 50.0, lon: 8.0}
        endpoints: [{address: "{o1}"}, {address: "{o2}"}]
  - name: lonely
    regions:
      - {name: r1, location: {lat: 50.0, lon: 8.0},
         endpoints: [{address: "127.0.0.1:{dead_port}"}]}
  - name: flaky
    steering: {policy: failover}
    regions:
      - {name: dead, endpoints: [{address: "127.0.0.1:{dead_port}"}]}
      - {name: alive, endpoints: [{address: "{o1}"}]}
"""

CONTRACT = CONTRACT_METRICS


class MetricsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.o1 = Origin("one").start()
        cls.o2 = Origin("two").start()
        cls.subs = {"o1": cls.o1.address, "o2": cls.o2.address, "dead_port": free_port()}
        cls.meridian = Meridian(CONFIG, cls.subs).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.meridian.__exit__(None, None, None)
        cls.o1.stop()
        cls.o2.stop()

    def setUp(self):
        self.o1.set_health(200, delay_ms=0)
        self.o2.set_health(200, delay_ms=0)

    def value(self, name, **labels):
        return self.meridian.metric(name, labels) or 0.0

    def test_promtool_accepts_the_exposition_and_every_spec_metric_is_there(self):
        m = self.meridian
        for i in range(5):
            m.get(f"/api/{i}")
        m.get("/flaky/x")
        m.get("/limited/x")
        m.get("/nowhere-route")  # matched by nothing? /api/ only: a 404 with route ""
        text = m.metrics()
        promtool = shutil.which("promtool")
        self.assertIsNotNone(promtool, "promtool missing: run tests/install-deps.sh")
        check = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                               capture_output=True, timeout=30)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        types = {}
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split()
                types[name] = kind
        samples = parse_metrics(text)
        for name, (kind, labels) in CONTRACT.items():
            self.assertEqual(types.get(name), kind, name)
            series = [lab for n, lab, _ in samples
                      if n == name or (kind == "histogram" and n == name + "_count")]
            self.assertTrue(series, f"{name} has no sample")
            for lab in series:
                self.assertEqual(set(lab), labels, f"{name} labels {lab}")

    def test_requests_total_rises_by_exactly_the_requests_sent(self):
        m = self.meridian
        before = self.value("meridian_http_requests_total", route="api", code="200")
        before_hist = self.value("meridian_http_request_duration_seconds_count", route="api")
        for i in range(37):
            self.assertEqual(m.get(f"/api/count/{i}").status, 200)
        with m.conn() as c:
            for i in range(13):
                self.assertEqual(c.request("GET", f"/api/kept/{i}").status, 200)
        # A request is counted when its worker has seen the last response byte written, which
        # may be just after the client read it: poll (a slow build, TSan, shows the gap).
        wait_until(lambda: self.value("meridian_http_requests_total", route="api", code="200")
                   - before >= 50, 5, message="50 requests counted")
        self.assertEqual(self.value("meridian_http_requests_total", route="api", code="200")
                         - before, 50)
        self.assertEqual(self.value("meridian_http_request_duration_seconds_count",
                                    route="api") - before_hist, 50)
        self.assertEqual(self.value("meridian_http_requests_total", listener="public",
                                    route="api", backend="b", region="r1", code="200")
                         - before, 50)

    def test_local_answers_carry_empty_backend_and_region(self):
        m = self.meridian
        self.assertEqual(m.get("/").status, 404)
        self.assertGreaterEqual(self.value("meridian_http_requests_total", route="",
                                           backend="", region="", code="404"), 1)
        for _ in range(3):
            m.get("/limited/x")
        self.assertGreaterEqual(self.value("meridian_http_requests_total", route="limited",
                                           backend="b", region="", code="429"), 1)
        self.assertGreaterEqual(self.value("meridian_rate_limited_total", listener="public",
                                           route="limited"), 1)

    def test_retries_and_region_selection(self):
        before = self.value("meridian_upstream_retries_total", backend="flaky", region="dead")
        selected = self.value("meridian_region_selected_total", backend="flaky",
                              region="dead", reason="nearest")
        r = self.meridian.get("/flaky/x")
        self.assertEqual(r.status, 200)  # the dead region's connect failure was retried
        self.assertEqual(self.value("meridian_upstream_retries_total", backend="flaky",
                                    region="dead") - before, 1)
        self.assertEqual(self.value("meridian_region_selected_total", backend="flaky",
                                    region="dead", reason="nearest") - selected, 1)
        self.assertGreaterEqual(self.value("meridian_http_requests_total", route="flaky",
                                           region="alive", code="200"), 1)

    def test_no_retry_counted_when_none_went_out(self):
        # One endpoint, retries: 2, a refused connect: there is no other endpoint to retry
        # on, so no retry is sent and none is counted.
        self.assertEqual(self.meridian.get("/lonely/x").status, 502)
        self.assertEqual(self.value("meridian_upstream_retries_total", backend="lonely",
                                    region="r1"), 0)
        self.assertGreaterEqual(self.value("meridian_http_requests_total", route="lonely",
                                           region="r1", code="502"), 1)

    def test_health_and_latency_gauges_follow_the_origins(self):
        labels = {"backend": "b", "region": "r1", "endpoint": self.o2.address}
        self.assertEqual(self.value("meridian_endpoint_healthy", **labels), 1)
        self.o2.set_health(503)
        wait_until(lambda: self.value("meridian_endpoint_healthy", **labels) == 0, 5,
                   message="endpoint_healthy to drop to 0")
        self.assertGreater(self.value("meridian_health_checks_total", result="failure",
                                      **labels), 0)
        self.o2.set_health(200)
        wait_until(lambda: self.value("meridian_endpoint_healthy", **labels) == 1, 5,
                   message="endpoint_healthy to come back")
        # Slow probes on both endpoints: the region's measured latency rises past 100 ms.
        self.o1.set_health(200, delay_ms=150)
        self.o2.set_health(200, delay_ms=150)
        wait_until(lambda: self.value("meridian_region_latency_seconds", backend="b",
                                      region="r1") > 0.1, 10,
                   message="region latency to follow the slower probes")

    def test_connections_gauge(self):
        m = self.meridian
        base = self.value("meridian_downstream_connections_active", listener="public")
        conns = [m.conn() for _ in range(3)]
        try:
            for c in conns:
                c.request("GET", "/api/open")
            self.assertEqual(self.value("meridian_downstream_connections_active",
                                        listener="public") - base, 3)
        finally:
            for c in conns:
                c.close()
        wait_until(lambda: self.value("meridian_downstream_connections_active",
                                      listener="public") == base, 5,
                   message="the gauge to go back down")

    def test_reload_counters(self):
        m = self.meridian
        failures = self.value("meridian_config_reloads_total", result="failure")
        successes = self.value("meridian_config_reloads_total", result="success")
        generation = self.value("meridian_config_generation")
        m.write_config(CONFIG.replace("backend: b}", "backend: missing}"), self.subs)
        self.assertEqual(m.reload().status, 400)
        self.assertEqual(self.value("meridian_config_reloads_total", result="failure"),
                         failures + 1)
        m.write_config(CONFIG, self.subs)
        self.assertEqual(m.reload().status, 200)
        self.assertEqual(self.value("meridian_config_reloads_total", result="success"),
                         successes + 1)
        self.assertEqual(self.value("meridian_config_generation"), generation + 1)
        # Counters carry over the reload.
        self.assertGreater(self.value("meridian_http_requests_total", route="api"), 0)


if __name__ == "__main__":
    unittest.main()
