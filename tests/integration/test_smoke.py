"""Smoke test of a built binary, small enough to run under a user-mode emulator: the ARM64
cross-build (tests/run-tests.sh --arm64) runs it with the aarch64 binary under
qemu-aarch64-static. A client placed in Frankfurt by the loopback GeoIP database is
proxied to the nearest region's origin with the forwarding headers, /metrics counts the
request, /status shows the endpoints, and SIGTERM drains and exits 0.

With MERIDIAN_EXPECT_MACHINE=aarch64 (set by --arm64) the test first checks that the binary
under test really is an aarch64 executable, so an emulated run cannot pass on a native
binary by mistake."""
# ctest-label: smoke

import os
import struct
import unittest

from harness import Meridian, Origin, meridian_bin, wait_until

GEOIP = os.path.join(os.environ.get("MERIDIAN_SOURCE_DIR", "../.."),
                     "tests/data/geoip/loopback-city.mmdb")

CONFIG = """
node: {name: edge-smoke}
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
      - {name: all, backend: world}
backends:
  - name: world
    regions:
      - {name: us-east, location: {lat: 38.90, lon: -77.04}, endpoints: [{address: "{us}"}]}
      - {name: eu-west, location: {lat: 53.35, lon: -6.26}, endpoints: [{address: "{eu}"}]}
"""

# ELF e_machine values (System V ABI, <elf.h>).
ELF_MACHINES = {"x86_64": 62, "aarch64": 183}


def elf_machine(path):
    with open(path, "rb") as f:
        header = f.read(20)
    if header[:4] != b"\x7fELF":
        raise AssertionError(f"{path} is not an ELF file")
    little_endian = header[5] == 1
    return struct.unpack("<H" if little_endian else ">H", header[18:20])[0]


class SmokeTest(unittest.TestCase):
    def test_binary_is_built_for_the_expected_machine(self):
        expected = os.environ.get("MERIDIAN_EXPECT_MACHINE")
        if not expected:
            self.skipTest("MERIDIAN_EXPECT_MACHINE not set (native run)")
        self.assertEqual(elf_machine(meridian_bin()), ELF_MACHINES[expected],
                         f"{meridian_bin()} is not an {expected} executable")

    def test_proxies_steers_counts_and_drains(self):
        with Origin("us") as us, Origin("eu") as eu:
            subs = {"us": us.address, "eu": eu.address, "geoip": GEOIP}
            # An emulated binary starts slower than a native one.
            with Meridian(CONFIG, subs, ready_timeout=60) as m:
                r = m.get("/hello", source_address=("127.0.2.1", 0))  # Frankfurt
                self.assertEqual(r.status, 200, r.text())
                self.assertEqual(r.header("x-meridian-region"), "eu-west")
                self.assertIn("edge-smoke", r.header("via", ""))
                seen = eu.log(include_health=False, path="/hello")
                self.assertEqual(len(seen), 1, seen)
                self.assertEqual(us.requests("/hello"), 0)

                r = m.get("/hello", source_address=("127.0.1.1", 0))  # New York
                self.assertEqual(r.status, 200, r.text())
                self.assertEqual(r.header("x-meridian-region"), "us-east")

                # A request is counted when it ends, which may be just after its client has
                # read the answer.
                labels = {"route": "all", "backend": "world", "code": "200"}
                wait_until(lambda: m.metric("meridian_http_requests_total", labels) == 2, 10,
                           message="two requests counted in /metrics")
                self.assertEqual(m.metric("meridian_build_info"), 1)

                status = m.status()
                regions = {r["name"] for b in status["backends"] for r in b["regions"]}
                self.assertEqual(regions, {"us-east", "eu-west"})
            # Leaving the block sends SIGTERM and fails the test unless meridian exits 0.


if __name__ == "__main__":
    unittest.main()
