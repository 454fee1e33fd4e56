"""1 GiB each way through meridian, streamed: the body arrives intact and meridian's peak
resident memory stays small (bodies are streamed both ways, never buffered whole)."""

import os
import unittest

from harness import Meridian, Origin, PatternSink, pattern_sha256, upload_pattern

GIB = 1 << 30
RSS_LIMIT_KIB = 64 * 1024

CONFIG = """
node: {name: edge-large}
workers: 2
admin:
  listen: "{admin}"
listeners:
  - name: public
    listen: "{listen}"
    routes:
      - {name: all, backend: b, timeout: 300s}
backends:
  - name: b
    regions:
      - name: r1
        location: {lat: 50.0, lon: 8.0}
        endpoints: [{address: "{o1}"}]
"""


class LargeBodiesTest(unittest.TestCase):
    def setUp(self):
        self.origin = Origin("o1").start()
        self.addCleanup(self.origin.stop)
        self.meridian = Meridian(CONFIG, {"o1": self.origin.address}).__enter__()
        self.addCleanup(self.meridian.__exit__, None, None, None)

    def assert_rss_small(self):
        if os.environ.get("MERIDIAN_SANITIZED"):
            return  # ASan's shadow memory and quarantine make RSS meaningless here
        peak = self.meridian.rss_peak_kib()
        self.assertLess(peak, RSS_LIMIT_KIB,
                        f"meridian peak RSS {peak} KiB (VmHWM) over {RSS_LIMIT_KIB} KiB")

    def test_upload_1gib(self):
        expected = pattern_sha256(GIB)  # computed before, not while meridian streams
        with self.meridian.conn(timeout=120) as c:
            r = upload_pattern(c, "POST", "/upload-1g", GIB)
        self.assertEqual(r.status, 200, r.text())
        rep = r.json()
        self.assertEqual(rep["body_length"], GIB)
        self.assertEqual(rep["body_sha256"], expected)
        self.assert_rss_small()

    def test_download_1gib(self):
        sink = PatternSink()
        with self.meridian.conn(timeout=120) as c:
            r = c.request("GET", f"/download-1g?size={GIB}", sink=sink)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Length"), str(GIB))
        self.assertTrue(sink.ok(GIB), f"got {sink.length} bytes, first mismatch at "
                                      f"{sink.mismatch_at}")
        self.assert_rss_small()


if __name__ == "__main__":
    unittest.main()
