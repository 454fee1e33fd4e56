"""HTTP/2 conformance: h2spec (github.com/summerwind/h2spec, 146 cases of RFC 7540/9113 and
RFC 7541) against meridian's HTTP/2 listeners -- TLS with ALPN h2, and the cleartext listener
that takes HTTP/1.1 and prior-knowledge h2c on one port -- in front of the test origin.

Runs when an h2spec binary is found: $H2SPEC, `h2spec` on PATH, or /tmp/h2spec-bin/h2spec;
skipped otherwise. The repository does not build h2spec (none of its code or build is kept
here); CI builds it before the suite when it can. Every case must pass; a failure names the
cases with what h2spec expected and what it got."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))

from harness import Meridian, Origin, free_port  # noqa: E402
from test_tls import make_certificate  # noqa: E402

TOTAL_CASES = 146

CONFIG = """
node: {name: edge-h2spec}
workers: 1
admin: {listen: "{admin}"}
listeners:
  - name: h2c
    listen: "{h2c}"
    routes: &routes
      - {name: all, match: {path_prefix: /}, backend: origin}
  - name: tls
    listen: "{tls}"
    tls:
      certificates: [{cert: "{certs}/h2spec.pem", key: "{certs}/h2spec.key"}]
    routes: *routes
backends:
  - name: origin
    regions:
      - {name: local, location: {lat: 50.1, lon: 8.7}, endpoints: [{address: "{origin}"}]}
"""


def h2spec_binary():
    for candidate in (os.environ.get("H2SPEC"), shutil.which("h2spec"), "/tmp/h2spec-bin/h2spec"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def failed_cases(report_path):
    """The failed and errored cases of an h2spec JUnit report: [(section, case, message)]."""
    failures = []
    for suite in ET.parse(report_path).getroot().iter("testsuite"):
        for case in suite.iter("testcase"):
            for bad in list(case.findall("failure")) + list(case.findall("error")):
                failures.append((suite.get("package", "") + " " + suite.get("name", ""),
                                 case.get("name", ""), (bad.text or bad.get("message") or "")))
    return failures


@unittest.skipUnless(h2spec_binary(), "no h2spec binary ($H2SPEC, PATH, /tmp/h2spec-bin)")
class H2specTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="meridian-h2spec-")
        make_certificate(cls.dir, "h2spec", "localhost", ["localhost"])
        cls.origin = Origin("origin").start()
        cls.ports = {"h2c": free_port(), "tls": free_port()}
        cls.meridian = Meridian(CONFIG, {
            "origin": cls.origin.address, "certs": cls.dir,
            **{name: f"127.0.0.1:{port}" for name, port in cls.ports.items()}}).start()

    @classmethod
    def tearDownClass(cls):
        cls.meridian.stop()
        cls.origin.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def run_h2spec(self, name, *flags):
        report = os.path.join(self.dir, f"{name}.xml")
        proc = subprocess.run(
            [h2spec_binary(), "-h", "127.0.0.1", "-p", str(self.ports[name]), "-o", "3",
             "-j", report, *flags], capture_output=True, timeout=600)
        output = proc.stdout.decode(errors="replace")
        summary = re.search(r"(\d+) tests, (\d+) passed, (\d+) skipped, (\d+) failed", output)
        self.assertIsNotNone(summary, output[-3000:])
        total, passed = int(summary.group(1)), int(summary.group(2))
        failures = failed_cases(report) if os.path.exists(report) else []
        detail = "\n".join(f"{s} / {c}: {m.strip()}" for s, c, m in failures)
        self.assertEqual((total, passed), (TOTAL_CASES, TOTAL_CASES),
                         f"h2spec over {name}: {passed}/{total}\n{detail}")
        self.assertTrue(self.meridian.running, "meridian died under h2spec")

    def test_h2c_prior_knowledge_passes_every_case(self):
        self.run_h2spec("h2c")

    def test_tls_alpn_h2_passes_every_case(self):
        self.run_h2spec("tls", "-t", "-k")


if __name__ == "__main__":
    unittest.main()
