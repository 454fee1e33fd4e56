"""Operations files: docker/ (Dockerfile, compose.yaml, the meridian config for compose,
Prometheus config and alert rules, Grafana dashboard and provisioning) and
conf/meridian.service. Checked with the tools that read them where they exist here
(promtool, systemd-analyze, meridian --check, json), structurally otherwise, and against the
metrics: every metric and label they use is one docs/metrics.md lists.

promtool (Debian package `prometheus`) is required: tests/install-deps.sh installs it."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import CONTRACT_METRICS, EXTENSION_METRICS, SOURCE_DIR, meridian_bin

DOCKER = os.path.join(SOURCE_DIR, "docker")
REGIONS = ("us-east", "us-west", "eu-west", "ap-southeast")

METRICS = {**CONTRACT_METRICS, **EXTENSION_METRICS}
TARGET_LABELS = {"instance", "job"}     # added by Prometheus to every scraped series


def series_labels():
    """Every series name a query may use -> its labels (histograms expand to 3 series)."""
    out = {}
    for name, (kind, labels) in METRICS.items():
        if kind == "histogram":
            out[name + "_bucket"] = labels | {"le"} | TARGET_LABELS
            out[name + "_sum"] = labels | TARGET_LABELS
            out[name + "_count"] = labels | TARGET_LABELS
        else:
            out[name] = labels | TARGET_LABELS
    return out


SERIES = series_labels()
ALL_LABELS = set().union(*SERIES.values())


def read(*parts):
    with open(os.path.join(SOURCE_DIR, *parts)) as f:
        return f.read()


def run(argv, cwd=None, timeout=60):
    proc = subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=timeout)
    return (proc.returncode, proc.stdout.decode("utf-8", "replace"),
            proc.stderr.decode("utf-8", "replace"))


def promtool():
    path = shutil.which("promtool")
    if not path:
        raise AssertionError("promtool not found: run tests/install-deps.sh "
                             "(it installs the Debian package prometheus)")
    return path


def alert_exprs(text):
    """The expr of every rule in alerts.yml: block scalars (`expr: |`) or one line."""
    exprs, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        m = re.match(r"^(\s*)expr:\s*(.*)$", lines[i])
        i += 1
        if not m:
            continue
        if m.group(2) not in ("|", ">", "|-", ">-"):
            exprs.append(m.group(2))
            continue
        indent, body = len(m.group(1)), []
        while i < len(lines) and (not lines[i].strip()
                                  or len(lines[i]) - len(lines[i].lstrip()) > indent):
            body.append(lines[i].strip())
            i += 1
        exprs.append("\n".join(body))
    return exprs


def dashboard_targets(dashboard):
    out = []
    for panel in dashboard["panels"]:
        for p in [panel] + panel.get("panels", []):
            for t in p.get("targets", []):
                out.append((p["title"], t["expr"]))
    return out


def grafana_to_promql(expr):
    """A dashboard query with Grafana's variables replaced, so promtool can parse it."""
    for var, value in (("$__rate_interval", "1m"), ("$__interval", "1m"), ("$__range", "1h"),
                       ("$instance", ".*"), ("$backend", ".*")):
        expr = expr.replace(var, value)
    return expr


def strip_annotations(rules_text):
    """alerts.yml without its annotations blocks (block-style YAML), so that a rule unit test
    checks when alerts fire and with which labels, not their wording."""
    out, skip_deeper = [], None
    for line in rules_text.splitlines():
        indent = len(line) - len(line.lstrip())
        if skip_deeper is not None and (not line.strip() or indent > skip_deeper):
            continue
        skip_deeper = None
        if line.strip() == "annotations:":
            skip_deeper = indent
            continue
        out.append(line)
    return "\n".join(out) + "\n"


def top_level_block(text, key):
    """{child key: its lines} of a top-level mapping `key:` in block-style YAML."""
    blocks, current, inside = {}, None, False
    for line in text.splitlines():
        if re.match(r"^\S", line):
            inside = line.startswith(key + ":")
            continue
        if not inside or not line.strip() or line.lstrip().startswith("#"):
            continue
        m = re.match(r"^  ([A-Za-z0-9._-]+):", line)
        if m:
            current = m.group(1)
            blocks[current] = []
        elif current:
            blocks[current].append(line)
    return blocks


class PrometheusFilesTest(unittest.TestCase):
    def test_config_is_valid_and_loads_the_rules(self):
        # From docker/, as in the compose container: rule_files are relative to the config.
        code, out, err = run([promtool(), "check", "config", "prometheus.yml"], cwd=DOCKER)
        self.assertEqual(code, 0, out + err)
        self.assertIn("1 rule files found", out + err)
        text = read("docker", "prometheus.yml")
        self.assertRegex(text, r"job_name:\s*meridian\b")
        self.assertRegex(text, r"metrics_path:\s*/metrics\b")
        self.assertRegex(text, r"targets:\s*\[\s*\"meridian:9901\"\s*\]")
        self.assertRegex(text, r"rule_files:\s*\n\s*-\s*alerts\.yml")

    def test_rules_are_valid(self):
        code, out, err = run([promtool(), "check", "rules", "alerts.yml"], cwd=DOCKER)
        self.assertEqual(code, 0, out + err)
        for name in ("MeridianRegionDown", "MeridianHigh5xxRatio", "MeridianHighP99Latency",
                     "MeridianConfigReloadFailed", "MeridianRateLimitSurge"):
            self.assertIn("alert: " + name, read("docker", "alerts.yml"))

    def test_every_alert_has_severity_summary_and_description(self):
        text = read("docker", "alerts.yml")
        blocks = re.split(r"\n\s*- alert: ", text)[1:]
        self.assertGreaterEqual(len(blocks), 5)
        for block in blocks:
            name = block.split("\n", 1)[0]
            for key in ("severity:", "summary:", "description:"):
                self.assertIn(key, block, f"{name}: no {key}")

    def test_rules_fire_on_the_cases_they_are_for(self):
        directory = tempfile.mkdtemp(prefix="meridian-rules-")
        self.addCleanup(shutil.rmtree, directory, ignore_errors=True)
        with open(os.path.join(directory, "alerts.yml"), "w") as f:
            f.write(strip_annotations(read("docker", "alerts.yml")))
        with open(os.path.join(directory, "test.yml"), "w") as f:
            f.write(RULE_TESTS)
        code, out, err = run([promtool(), "test", "rules", "test.yml"], cwd=directory)
        self.assertEqual(code, 0, out + err)


# promtool rule unit tests (1m steps). a and b are two nodes.
RULE_TESTS = """
rule_files: [alerts.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'up{job="meridian", instance="a:9901"}'
        values: '1 1 0x5'
      # eu-west down everywhere; us-west down from node a only; us-east healthy.
      - series: 'meridian_endpoint_healthy{instance="a:9901", backend="web", region="eu-west", endpoint="eu-west:8080"}'
        values: '1 0x10'
      - series: 'meridian_endpoint_healthy{instance="b:9901", backend="web", region="eu-west", endpoint="eu-west:8080"}'
        values: '1 0x10'
      - series: 'meridian_endpoint_healthy{instance="a:9901", backend="web", region="us-west", endpoint="us-west:8080"}'
        values: '0x10'
      - series: 'meridian_endpoint_healthy{instance="b:9901", backend="web", region="us-west", endpoint="us-west:8080"}'
        values: '1x10'
      - series: 'meridian_endpoint_healthy{instance="a:9901", backend="web", region="us-east", endpoint="us-east:8080"}'
        values: '1x10'
      - series: 'meridian_config_reloads_total{instance="a:9901", job="meridian", result="failure"}'
        values: '0 0 1x8'
      # b's failure series appears with its first failure (not initialised at 0).
      - series: 'meridian_config_reloads_total{instance="b:9901", job="meridian", result="failure"}'
        values: '_ _ 1x8'
      - series: 'meridian_config_generation{instance="a:9901", job="meridian"}'
        values: '3x10'
    alert_rule_test:
      - {eval_time: 1m, alertname: MeridianDown}
      - eval_time: 5m
        alertname: MeridianDown
        exp_alerts:
          - exp_labels: {severity: critical, job: meridian, instance: "a:9901"}
      - {eval_time: 1m, alertname: MeridianRegionDown}
      - eval_time: 3m
        alertname: MeridianRegionDown
        exp_alerts:
          - exp_labels: {severity: critical, backend: web, region: eu-west}
      - {eval_time: 3m, alertname: MeridianBackendNoHealthyRegion}
      - eval_time: 7m
        alertname: MeridianRegionUnreachableFromNode
        exp_alerts:
          - exp_labels: {severity: warning, instance: "a:9901", backend: web, region: us-west}
      - {eval_time: 1m, alertname: MeridianConfigReloadFailed}
      - eval_time: 3m
        alertname: MeridianConfigReloadFailed
        exp_alerts:
          - exp_labels: {severity: warning, instance: "a:9901", job: meridian, result: failure}
          - exp_labels: {severity: warning, instance: "b:9901", job: meridian, result: failure}

  - interval: 1m
    input_series:
      - series: 'meridian_endpoint_healthy{instance="a:9901", backend="api", region="eu-west", endpoint="e1:80"}'
        values: '0x10'
      - series: 'meridian_endpoint_healthy{instance="a:9901", backend="api", region="us-east", endpoint="u1:80"}'
        values: '0x10'
    alert_rule_test:
      - eval_time: 3m
        alertname: MeridianBackendNoHealthyRegion
        exp_alerts:
          - exp_labels: {severity: critical, backend: api}

  - interval: 1m
    input_series:
      # route web: 1/s 200, 0.2/s 502 (17% 5xx). route quiet: one 500 among very few.
      - series: 'meridian_http_requests_total{listener="public", route="web", backend="web", region="eu-west", code="200"}'
        values: '0+60x20'
      - series: 'meridian_http_requests_total{listener="public", route="web", backend="web", region="eu-west", code="502"}'
        values: '0+12x20'
      - series: 'meridian_http_requests_total{listener="public", route="quiet", backend="web", region="eu-west", code="500"}'
        values: '0+1x20'
      # route api: 5/s, of which 2/s refused with 429.
      - series: 'meridian_http_requests_total{listener="public", route="api", backend="", region="", code="429"}'
        values: '0+120x20'
      - series: 'meridian_http_requests_total{listener="public", route="api", backend="web", region="eu-west", code="200"}'
        values: '0+180x20'
      - series: 'meridian_rate_limited_total{listener="public", route="api"}'
        values: '0+120x20'
      # route web: half the requests under 0.5s, half between 0.5s and 2.5s.
      - series: 'meridian_http_request_duration_seconds_bucket{listener="public", route="web", backend="web", region="eu-west", le="0.5"}'
        values: '0+30x20'
      - series: 'meridian_http_request_duration_seconds_bucket{listener="public", route="web", backend="web", region="eu-west", le="2.5"}'
        values: '0+60x20'
      - series: 'meridian_http_request_duration_seconds_bucket{listener="public", route="web", backend="web", region="eu-west", le="+Inf"}'
        values: '0+60x20'
    alert_rule_test:
      - {eval_time: 4m, alertname: MeridianHigh5xxRatio}
      - eval_time: 12m
        alertname: MeridianHigh5xxRatio
        exp_alerts:
          - exp_labels: {severity: critical, listener: public, route: web}
      - {eval_time: 8m, alertname: MeridianHighP99Latency}
      - eval_time: 17m
        alertname: MeridianHighP99Latency
        exp_alerts:
          - exp_labels: {severity: warning, listener: public, route: web}
      - {eval_time: 8m, alertname: MeridianRateLimitSurge}
      - eval_time: 17m
        alertname: MeridianRateLimitSurge
        exp_alerts:
          - exp_labels: {severity: warning, listener: public, route: api}
"""


class DashboardTest(unittest.TestCase):
    def setUp(self):
        with open(os.path.join(DOCKER, "grafana", "dashboard.json")) as f:
            self.dashboard = json.load(f)

    def test_shape(self):
        d = self.dashboard
        self.assertGreaterEqual(d["schemaVersion"], 36)
        self.assertTrue(d["uid"] and d["title"])
        variables = {v["name"]: v for v in d["templating"]["list"]}
        self.assertEqual(variables["datasource"]["type"], "datasource")
        self.assertEqual(variables["datasource"]["query"], "prometheus")
        ids = [p["id"] for p in d["panels"]]
        self.assertEqual(len(ids), len(set(ids)), "panel ids must be unique")
        for p in d["panels"]:
            if p["type"] == "row":
                continue
            self.assertEqual(p["datasource"]["uid"], "${datasource}", p["title"])
            self.assertTrue(p.get("targets"), p["title"])
            for key in ("x", "y", "w", "h"):
                self.assertIn(key, p["gridPos"], p["title"])

    def test_covers_the_operational_metrics(self):
        used = " ".join(expr for _, expr in dashboard_targets(self.dashboard))
        for name in ("meridian_http_requests_total", "meridian_http_request_duration_seconds_bucket",
                     "meridian_upstream_requests_active", "meridian_endpoint_healthy",
                     "meridian_region_latency_seconds", "meridian_region_selected_total",
                     "meridian_upstream_retries_total", "meridian_rate_limited_total",
                     "meridian_config_generation", "meridian_config_reloads_total",
                     "meridian_tls_handshakes_total"):
            self.assertIn(name, used)

    def test_queries_parse_as_promql(self):
        # promtool parses the queries when they are recording rules of a rule file.
        rules = ["groups:", "  - name: dashboard", "    rules:"]
        for i, (title, expr) in enumerate(dashboard_targets(self.dashboard)):
            rules.append(f"      - record: dashboard:query_{i}  # {title}")
            rules.append("        expr: " + json.dumps(grafana_to_promql(expr)))
        directory = tempfile.mkdtemp(prefix="meridian-dashboard-")
        self.addCleanup(shutil.rmtree, directory, ignore_errors=True)
        path = os.path.join(directory, "dashboard-rules.yml")
        with open(path, "w") as f:
            f.write("\n".join(rules) + "\n")
        code, out, err = run([promtool(), "check", "rules", path])
        self.assertEqual(code, 0, out + err)


class MetricContractTest(unittest.TestCase):
    """Every meridian_* name and every label the rules and the dashboard use is documented
    (docs/metrics.md)."""

    def queries(self):
        with open(os.path.join(DOCKER, "grafana", "dashboard.json")) as f:
            dashboard = json.load(f)
        out = [("alerts.yml", e) for e in alert_exprs(read("docker", "alerts.yml"))]
        out += [("dashboard.json " + t, e) for t, e in dashboard_targets(dashboard)]
        out += [("dashboard.json $" + v["name"], v["definition"])
                for v in dashboard["templating"]["list"] if v.get("definition")]
        self.assertGreater(len(out), 10)
        return out

    def test_metric_names(self):
        for where, expr in self.queries():
            for name in re.findall(r"\bmeridian_[a-z0-9_]+", expr):
                self.assertTrue(name in SERIES, f"{where}: {name} is not a documented series")

    def test_labels_of_selectors(self):
        for where, expr in self.queries():
            for name, matchers in re.findall(r"\b(meridian_[a-z0-9_]+)\{([^}]*)\}", expr):
                for label in re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", matchers):
                    self.assertTrue(label in SERIES.get(name, set()),
                                    f"{where}: {name} has no label {label}")

    def test_labels_of_groupings(self):
        made_here = {"code_class"}   # label_replace in the dashboard
        for where, expr in self.queries():
            for clause in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
                for label in re.findall(r"[a-zA-Z_][a-zA-Z0-9_]*", clause):
                    self.assertTrue(label in ALL_LABELS | made_here,
                                    f"{where}: unknown label {label}")
        for label in re.findall(r"\$labels\.([a-zA-Z_]+)", read("docker", "alerts.yml")):
            self.assertTrue(label in ALL_LABELS,
                            f"alerts.yml: annotation uses unknown label {label}")

    def test_documented_metrics_match_this_list(self):
        # docs/metrics.md's table, "| `name` [(extension)] | type | `label`, ... |", is what
        # operators read: every metric, its type and its labels must agree with the list the
        # tests check /metrics, the alerts and the dashboard against.
        documented = {}
        for name, extension, kind, labels in re.findall(
                r"^\| `(meridian_[a-z0-9_]+)`( \(extension\))? \| ([a-z]+)[^|]* \| ([^|]*) \|",
                read("docs", "metrics.md"), re.M):
            documented[name] = (kind, set(re.findall(r"`([a-z_]+)`", labels)), bool(extension))
        self.assertEqual(set(documented), set(METRICS))
        for name, (kind, labels) in METRICS.items():
            self.assertEqual(documented[name][:2], (kind, labels), name)
            self.assertEqual(documented[name][2], name in EXTENSION_METRICS, name)


class ComposeTest(unittest.TestCase):
    def setUp(self):
        self.compose = read("docker", "compose.yaml")
        self.services = top_level_block(self.compose, "services")

    def assert_yaml_parses(self, path, top_key):
        """meridian's YAML parser (yaml-cpp) as a syntax check: a file that parses is walked
        and its top-level keys are reported as unknown (PATH:LINE:COLUMN: key: ...); a syntax
        error stops before the walk."""
        code, out, err = run([meridian_bin(), "--check", "--config", path])
        self.assertNotIn("syntax error", (out + err).lower(), f"{path}: {out}{err}")
        self.assertRegex(out + err, r"(?m)^\S*:\d+:\d+: " + re.escape(top_key) + r"\b",
                         f"{path} did not parse as YAML: {out}{err}")

    def test_yaml_syntax(self):
        for rel, key in (("compose.yaml", "services"), ("prometheus.yml", "scrape_configs"),
                         ("alerts.yml", "groups"),
                         ("grafana/provisioning/datasources/prometheus.yaml", "datasources"),
                         ("grafana/provisioning/dashboards/meridian.yaml", "providers")):
            with self.subTest(rel):
                self.assert_yaml_parses(os.path.join(DOCKER, rel), key)
        for rel in ("compose.yaml", "meridian.compose.yaml", "prometheus.yml", "alerts.yml"):
            self.assertNotIn("\t", read("docker", rel), f"{rel}: tab characters")

    def test_services(self):
        for name in REGIONS + ("meridian", "prometheus"):
            self.assertIn(name, self.services)
        for region in REGIONS:
            block = "\n".join(self.services[region])
            self.assertIn("/origin.py", block, region)
            self.assertRegex(block, r'"--delay-ms", "\d+"', region)
            self.assertRegex(block, r'"--host", "0\.0\.0\.0"', region)
        self.assertIn("<<: *origin", "\n".join(self.services["us-east"]))
        meridian = "\n".join(self.services["meridian"])
        self.assertRegex(meridian, r"context:\s*\.\.\s")
        self.assertRegex(meridian, r"dockerfile:\s*docker/Dockerfile")
        self.assertIn("service_healthy", meridian)
        self.assertRegex(meridian, r"stop_grace_period:\s*\d+s")
        prometheus = "\n".join(self.services["prometheus"])
        self.assertIn("prom/prometheus", prometheus)

    def test_bind_mounts_exist(self):
        # Short syntax `- SOURCE:TARGET[:ro]`; sources are relative to docker/.
        mounts = re.findall(r"^\s*-\s*(\.{1,2}/[^:\s]+):(/[^:\s]+)", self.compose, re.M)
        self.assertGreaterEqual(len(mounts), 5)
        for source, _ in mounts:
            self.assertTrue(os.path.exists(os.path.normpath(os.path.join(DOCKER, source))),
                            f"compose.yaml mounts {source}, which does not exist")
        targets = dict((os.path.basename(s), t) for s, t in mounts)
        # rule_files: [alerts.yml] resolves in the container as it does in docker/.
        self.assertEqual(os.path.dirname(targets["prometheus.yml"]),
                         os.path.dirname(targets["alerts.yml"]))

    def test_grafana_provisioning(self):
        if "grafana" not in self.services:
            self.skipTest("no grafana service")
        datasource = read("docker", "grafana", "provisioning", "datasources", "prometheus.yaml")
        self.assertRegex(datasource, r"url:\s*http://prometheus:9090")
        self.assertRegex(datasource, r"type:\s*prometheus")
        provider = read("docker", "grafana", "provisioning", "dashboards", "meridian.yaml")
        path = re.search(r"path:\s*(\S+)", provider).group(1)
        grafana = "\n".join(self.services["grafana"])
        self.assertRegex(grafana, r"dashboard\.json:" + re.escape(path.rstrip("/")) + r"/")
        self.assertIn("./grafana/provisioning:/etc/grafana/provisioning", grafana)

    def test_meridian_config_points_at_the_compose_services(self):
        config = read("docker", "meridian.compose.yaml")
        hosts = set(re.findall(r"address:\s*([A-Za-z0-9.-]+):(\d+)", config))
        self.assertEqual({h for h, _ in hosts}, set(REGIONS))
        for host, port in hosts:
            self.assertRegex("\n".join(self.services[host]), rf'"--port", "{port}"', host)
        self.assertRegex(config, r"(?m)^  listen: 0\.0\.0\.0:9901$")     # admin, for Prometheus
        self.assertRegex(config, r"listen: 0\.0\.0\.0:8080")
        self.assertIn("rate_limit:", config)
        self.assertIn("health_check:", config)
        prometheus = read("docker", "prometheus.yml")
        self.assertIn('"meridian:9901"', prometheus)

    def test_meridian_config_passes_check(self):
        # Compose service names resolve only inside compose, and the GeoIP database is
        # mounted there: check a copy that points at 127.0.0.1 and the repository's file.
        config = read("docker", "meridian.compose.yaml")
        for region in REGIONS:
            config = re.sub(rf"\b{region}:(\d+)", r"127.0.0.1:\1", config)
        mmdb = os.path.join(SOURCE_DIR, "tests", "data", "geoip", "loopback-city.mmdb")
        config = config.replace("/etc/meridian/loopback-city.mmdb", mmdb)
        config = re.sub(r"listen: 0\.0\.0\.0:\d+", 'listen: "127.0.0.1:0"', config)
        left = re.findall(r"address:\s*([a-z][^\s]*)", config)
        self.assertEqual(left, [], "endpoints that are not compose services")
        directory = tempfile.mkdtemp(prefix="meridian-compose-")
        self.addCleanup(shutil.rmtree, directory, ignore_errors=True)
        with open(os.path.join(directory, "meridian.yaml"), "w") as f:
            f.write(config)
        code, out, err = run([meridian_bin(), "--check", "--config", "meridian.yaml"],
                             cwd=directory)
        self.assertEqual(code, 0, out + err)


class DockerfileTest(unittest.TestCase):
    def setUp(self):
        self.text = read("docker", "Dockerfile")
        # Join continuation lines, drop comments.
        joined = re.sub(r"\\\n", " ", self.text)
        self.lines = [l.strip() for l in joined.splitlines()
                      if l.strip() and not l.lstrip().startswith("#")]

    def test_stages_and_runtime_settings(self):
        froms = [l for l in self.lines if l.startswith("FROM ")]
        self.assertEqual(froms, ["FROM debian:12 AS build", "FROM debian:12-slim"])
        self.assertIn("bash tests/install-deps.sh", self.text)
        self.assertRegex(self.text, r"--target meridian")
        self.assertIn("EXPOSE 8080 9901", self.lines)
        self.assertIn("STOPSIGNAL SIGTERM", self.lines)
        self.assertIn('ENTRYPOINT ["meridian"]', self.lines)
        self.assertIn('CMD ["--config", "/etc/meridian/meridian.yaml"]', self.lines)
        self.assertIn("/usr/local/bin/meridian", self.text)
        user = [l for l in self.lines if l.startswith("USER ")]
        self.assertTrue(user and user[-1] not in ("USER root", "USER 0"), user)
        health = [l for l in self.lines if l.startswith("HEALTHCHECK ")]
        self.assertEqual(len(health), 1)
        self.assertIn("/health", health[0])

    def test_healthcheck_is_exec_form_json(self):
        health = [l for l in self.lines if l.startswith("HEALTHCHECK ")][0]
        argv = json.loads(health[health.index(" CMD ") + 5:])
        self.assertEqual(argv[0], "bash")

    def test_copy_sources_exist(self):
        for line in self.lines:
            if line.startswith("COPY ") and "--from=" not in line:
                for source in line.split()[1:-1]:
                    self.assertTrue(os.path.exists(os.path.join(SOURCE_DIR, source)),
                                    f"Dockerfile: {line}: {source} does not exist")

    def test_runtime_packages_cover_the_binary(self):
        # The packages of the shared libraries the built binary links must all be installed
        # in the runtime stage (the slim base has libc6, libgcc-s1 and libstdc++6).
        if not shutil.which("dpkg") or not shutil.which("ldd"):
            self.skipTest("not a Debian system")
        runtime = self.text.split("FROM debian:12-slim", 1)[1]
        install = re.search(r"apt-get install -y --no-install-recommends([^&]*)",
                            re.sub(r"\\\n", " ", runtime)).group(1).split()
        code, out, err = run(["ldd", meridian_bin()])
        self.assertEqual(code, 0, err)
        base = {"libc6", "libgcc-s1", "libstdc++6"}
        sanitizer = {"libasan8", "libubsan1", "liblsan0"}
        for path in re.findall(r"=>\s*(/\S+)", out):
            code, owner, _ = run(["dpkg", "-S", os.path.realpath(path)])
            if code != 0:
                code, owner, _ = run(["dpkg", "-S", path])
            self.assertEqual(code, 0, f"no package owns {path}")
            package = owner.split(":", 1)[0]
            if package in base or package in sanitizer:
                continue
            self.assertIn(package, install, f"{path} ({package}) missing from the runtime stage")


class SystemdUnitTest(unittest.TestCase):
    def setUp(self):
        self.text = read("conf", "meridian.service")

    def directive(self, key):
        values = re.findall(rf"(?m)^{key}=(.*)$", self.text)
        self.assertTrue(values, f"no {key}=")
        return values[-1].strip()

    def test_directives(self):
        self.assertIn(self.directive("Type"), ("exec", "simple", "notify"))
        self.assertIn("--check", self.directive("ExecStartPre"))
        self.assertEqual(self.directive("ExecReload"), "/bin/kill -HUP $MAINPID")
        self.assertEqual(self.directive("KillSignal"), "SIGTERM")
        # More than the shipped configuration's drain_grace + drain_timeout.
        example = read("conf", "meridian.yaml")
        drain = sum(int(re.search(rf"(?m)^{key}: (\d+)s\b", example).group(1))
                    for key in ("drain_grace", "drain_timeout"))
        self.assertGreater(int(re.match(r"(\d+)s?$", self.directive("TimeoutStopSec")).group(1)),
                           drain)
        self.assertEqual(self.directive("Restart"), "on-failure")
        self.assertEqual(self.directive("LimitNOFILE"), "1048576")
        for key, value in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                           ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
                           ("CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"),
                           ("AmbientCapabilities", "CAP_NET_BIND_SERVICE")):
            self.assertEqual(self.directive(key), value)
        self.assertTrue(self.directive("ReadWritePaths"))
        self.assertTrue(re.search(r"(?m)^(DynamicUser=yes|User=(?!root)\S+)$", self.text))

    def test_runs_the_installed_example_config(self):
        # The unit checks and runs /etc/meridian/meridian.yaml, and its header says how
        # conf/meridian.yaml gets there.
        installed = "--config /etc/meridian/meridian.yaml"
        self.assertIn(installed, self.directive("ExecStartPre"))
        self.assertIn(installed, self.directive("ExecStart"))
        self.assertRegex(self.text, r"(?m)^#.*install .*conf/meridian\.yaml "
                                    r"/etc/meridian/meridian\.yaml")
        # The example's access log lies in a directory the sandbox lets the service write.
        example = read("conf", "meridian.yaml")
        path = re.search(r"(?m)^access_log:\n(?:\s+#.*\n)*\s+path: (\S+)", example).group(1)
        writable = self.directive("ReadWritePaths").split()
        self.assertTrue(any(path.startswith(d.rstrip("/") + "/") for d in writable),
                        f"access_log.path {path} is outside ReadWritePaths={writable}")

    def test_systemd_analyze_verify(self):
        analyze = shutil.which("systemd-analyze")
        if not analyze:
            self.skipTest("systemd-analyze is not installed")
        # verify requires the binaries to exist: check a copy naming the built one.
        directory = tempfile.mkdtemp(prefix="meridian-unit-")
        self.addCleanup(shutil.rmtree, directory, ignore_errors=True)
        unit = os.path.join(directory, "meridian.service")
        with open(unit, "w") as f:
            f.write(self.text.replace("/usr/local/bin/meridian", meridian_bin()))
        code, out, err = run([analyze, "verify", unit])
        # verify warns about unknown keys and bad values but still exits 0: any line about
        # this unit is a failure (lines about other units of the host are not ours).
        ours = [l for l in (out + err).splitlines() if "meridian.service" in l]
        self.assertEqual(ours, [], out + err)
        self.assertEqual(code, 0, out + err)


if __name__ == "__main__":
    unittest.main()
