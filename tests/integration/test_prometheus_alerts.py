"""The shipped monitoring files against the real thing (docker/alerts.yml, docker/grafana/
dashboard.json): Debian's Prometheus, started by this test, scrapes a real meridian in front of
real origins every second and evaluates the shipped alert rules unchanged. When every origin
of a region fails its health checks, MeridianRegionDown must fire within the rule's `for` (1m)
plus a scrape and an evaluation interval. Meanwhile every query of every panel of the Grafana
dashboard (Grafana is not packaged by Debian, so the dashboard is not rendered; its queries
are run against this Prometheus with its variables filled in) must return data.

This is the check the container stack (docker/compose.yaml) would make; containers cannot run
on the CI machines (docs/operations.md, containers), so it runs here without them. About 80 s."""

import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse
import urllib.request

from harness import (SOURCE_DIR, HttpConn, Meridian, Origin, _die_with_parent_argv, free_port,
                     split_address, wait_until)
from test_tls import make_certificate

ALERTS = os.path.join(SOURCE_DIR, "docker", "alerts.yml")
DASHBOARD = os.path.join(SOURCE_DIR, "docker", "grafana", "dashboard.json")
SCRAPE_S = 1
RULE_FOR_S = 60  # MeridianRegionDown's `for: 1m` in docker/alerts.yml (checked below)

CONFIG = """
node: {name: edge-prom-1}
workers: 1
admin:
  listen: "{admin}"
listeners:
  - name: public
    listen: "{listen}"
    routes:
      - name: limited
        match: {path_prefix: /limited/}
        backend: web
        rate_limit: {rate: 1/s, burst: 1}
      - name: errors
        match: {path_prefix: /errors/}
        backend: errors
      - name: web
        backend: web
        retry: {on: [connect, reset, 503]}
  - name: public-tls
    listen: "{listen_tls}"
    tls:
      certificates: [{cert: "{dir}/a.pem", key: "{dir}/a.key"}]
    routes: [{name: web-tls, backend: web}]
backends:
  - name: errors
    regions:
      - name: err
        location: {lat: 50.11, lon: 8.68}
        endpoints: [{address: "{err1}"}]
  - name: web
    health_check: {path: /health, interval: 300ms, timeout: 200ms, unhealthy_threshold: 1,
                   healthy_threshold: 1}
    regions:
      - name: eu-west
        location: {lat: 53.35, lon: -6.26}
        endpoints: [{address: "{eu1}"}, {address: "{eu2}"}]
      - name: us-east
        location: {lat: 38.90, lon: -77.04}
        endpoints: [{address: "{us1}"}]
"""


def api(address, path, **params):
    url = f"http://{address}{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


class Traffic:
    """Requests to every route every 20 ms from a thread, so rates have something to show
    (/errors/ is answered 500 by its origin: the 5xx panels must not depend on a failover
    happening to cost a request, which under load it does not), and a TLS connection to the
    TLS listener every 10th round, resuming the session of the one before (the TLS panels)."""

    def __init__(self, address, tls_address=None, ca=None):
        self.address = address
        self.tls_address = tls_address
        self.tls_context = None
        if tls_address:
            self.tls_context = ssl.create_default_context(cafile=ca)
            self.tls_context.maximum_version = ssl.TLSVersion.TLSv1_2  # sessions at once
        self.tls_session = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def tls_request(self):
        host, port = split_address(self.tls_address)
        with socket.create_connection((host, port), timeout=5) as raw:
            with self.tls_context.wrap_socket(raw, server_hostname="a.test",
                                              session=self.tls_session) as s:
                s.sendall(b"GET /page HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
                while s.recv(65536):
                    pass
                self.tls_session = s.session

    def run(self):
        while not self.stop.is_set():
            try:
                with HttpConn(self.address, timeout=5) as c:
                    rounds = 0
                    while not self.stop.is_set():
                        c.request("GET", "/page")
                        c.request("GET", "/limited/x")
                        c.request("GET", "/errors/x")
                        if self.tls_context is not None and rounds % 10 == 0:
                            self.tls_request()
                        rounds += 1
                        time.sleep(0.02)
            except Exception:  # noqa: BLE001 (a dropped connection: start another)
                time.sleep(0.05)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)


class PrometheusAlertsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.origins = {n: Origin(n).start() for n in ("eu1", "eu2", "us1", "err1")}
        cls.origins["err1"].set_answer(500)
        cls.dir = tempfile.mkdtemp(prefix="meridian-prometheus-")
        cls.prometheus = None
        cls.prom_log = None
        try:
            make_certificate(cls.dir, "a", "a.test", ["a.test"])
            cls.meridian = Meridian(CONFIG, {"dir": cls.dir,
                                             **{n: o.address for n, o in cls.origins.items()}}
                                    ).__enter__()
            cls.prom_address = f"127.0.0.1:{free_port()}"
            with open(os.path.join(cls.dir, "prometheus.yml"), "w") as f:
                f.write(f"""
global:
  scrape_interval: {SCRAPE_S}s
  evaluation_interval: {SCRAPE_S}s
rule_files: ["{ALERTS}"]
scrape_configs:
  - job_name: meridian
    metrics_path: /metrics
    static_configs:
      - targets: ["{cls.meridian.admin_address}"]
""")
            cls.prom_log = open(os.path.join(cls.dir, "prometheus.log"), "w")
            # Killed with this process if the test runner dies (the harness's trampoline).
            cls.prometheus = subprocess.Popen(
                _die_with_parent_argv(
                    [shutil.which("prometheus") or "/usr/bin/prometheus",
                     "--config.file=prometheus.yml", f"--storage.tsdb.path={cls.dir}/data",
                     f"--web.listen-address={cls.prom_address}"]),
                cwd=cls.dir, stdin=subprocess.DEVNULL, stdout=cls.prom_log, stderr=cls.prom_log)
            wait_until(lambda: urllib.request.urlopen(
                f"http://{cls.prom_address}/-/ready", timeout=2).status == 200, 20,
                message="Prometheus ready", ignore=(OSError,))
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.prometheus is not None:
            cls.prometheus.terminate()
            try:
                cls.prometheus.wait(10)
            except subprocess.TimeoutExpired:
                cls.prometheus.kill()
                cls.prometheus.wait(10)
        if getattr(cls, "prom_log", None) is not None:
            cls.prom_log.close()
        meridian = getattr(cls, "meridian", None)
        try:
            if meridian is not None:
                meridian.__exit__(None, None, None)
        finally:
            for o in cls.origins.values():
                o.stop()
            shutil.rmtree(cls.dir, ignore_errors=True)

    def region_down_alert(self):
        alerts = api(self.prom_address, "/api/v1/alerts")["data"]["alerts"]
        return [a for a in alerts if a["labels"].get("alertname") == "MeridianRegionDown"
                and a["labels"].get("region") == "eu-west"]

    def dashboard_queries(self):
        """Every panel's queries, with Grafana's variables filled in as for this scrape."""
        with open(DASHBOARD) as f:
            dashboard = json.load(f)
        out = []
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                expr = (target["expr"].replace("$__rate_interval", "30s")
                        .replace("$__interval", "30s").replace('"$instance"', '".*"')
                        .replace('"$backend"', '".*"'))
                self.assertNotIn("$", expr.replace("${1}", ""), f"an unfilled variable: {expr}")
                out.append((panel["title"], expr))
        return out

    def test_region_down_fires_and_every_dashboard_panel_has_data(self):
        with open(ALERTS) as f:
            self.assertRegex(f.read(), r"alert: MeridianRegionDown\n(.*\n){1,4}\s*for: 1m\b")
        with Traffic(self.meridian.listen_address, self.meridian.addresses["listen_tls"],
                     os.path.join(self.dir, "a.pem")):
            # Something for the retry panel (eu2 answers 503, retried on eu1) and the reload
            # panel; then the region goes down: both its origins fail their health checks.
            self.origins["eu2"].set_answer(503)
            self.assertEqual(self.meridian.reload().status, 200)
            time.sleep(3 * SCRAPE_S)  # a few scrapes of the healthy region and the retries
            for name in ("eu1", "eu2"):
                self.origins[name].set_health(503)
            down_at = time.monotonic()
            wait_until(lambda: self.region_down_alert(), 15, message="MeridianRegionDown pending",
                       ignore=(OSError,))
            self.assertEqual(self.region_down_alert()[0]["state"], "pending")

            # While the rule's `for` runs: every dashboard panel returns data.
            time.sleep(20)
            empty = []
            for title, expr in self.dashboard_queries():
                result = api(self.prom_address, "/api/v1/query", query=expr)
                self.assertEqual(result["status"], "success", expr)
                if not result["data"]["result"]:
                    empty.append(f"{title}: {expr}")
            self.assertEqual(empty, [], "dashboard queries without data")
            # The TLS traffic resumes its sessions, and the resumption panel shows it.
            resumed = api(self.prom_address, "/api/v1/query",
                          query='sum(meridian_tls_handshakes_total{result="resumed"})')
            self.assertGreater(float(resumed["data"]["result"][0]["value"][1]), 0)

            wait_until(lambda: any(a["state"] == "firing" for a in self.region_down_alert()),
                       RULE_FOR_S + 30, interval=0.5, message="MeridianRegionDown firing",
                       ignore=(OSError,))
            took = time.monotonic() - down_at
        # Health checks every 300 ms notice at once; then the scrape, the `for`, one evaluation.
        print(f"\nMeridianRegionDown fired {took:.1f} s after the region went down")
        self.assertGreaterEqual(took, RULE_FOR_S - 1)
        # The for, a scrape and an evaluation, the health check's 0.3 s and the 0.5 s poll:
        # about 63 s; 8 s of room for a loaded machine.
        self.assertLessEqual(took, RULE_FOR_S + 2 * SCRAPE_S + 8)
        firing = [a for a in self.region_down_alert() if a["state"] == "firing"][0]
        self.assertEqual(firing["labels"]["backend"], "web")
        self.assertEqual(firing["labels"]["severity"], "critical")
        self.assertTrue(re.search(r"eu-west", firing["annotations"]["summary"]))


if __name__ == "__main__":
    unittest.main()
