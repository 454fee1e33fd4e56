"""SIGHUP: routes and backends swap; an invalid file keeps the running configuration; a kept
keep-alive client connection sees the new routes on its next request. (Listener changes, POST
/reload and file watching: test_reload.py.)"""

import signal
import unittest

from harness import Meridian, Origin, wait_until

CONFIG = """
node: {name: edge-hup}
workers: 2
admin:
  listen: "{admin}"
listeners:
  - name: public
    listen: "{listen}"
    routes:
      - {name: all, match: {path_prefix: /}, backend: %s}
backends:
  - name: first
    regions:
      - {name: r1, location: {lat: 50.0, lon: 8.0}, endpoints: [{address: "{o1}"}]}
  - name: second
    regions:
      - {name: r1, location: {lat: 50.0, lon: 8.0}, endpoints: [{address: "{o2}"}]}
"""


class SighupTest(unittest.TestCase):
    def test_reload_swaps_routes_and_keeps_old_config_when_invalid(self):
        with Origin("one") as o1, Origin("two") as o2, \
                Meridian(CONFIG % "first", {"o1": o1.address, "o2": o2.address}) as m:
            self.assertEqual(m.get("/x").header("X-Origin-Name"), "one")
            with m.conn() as kept:
                self.assertEqual(kept.request("GET", "/k").header("X-Origin-Name"), "one")

                m.write_config(CONFIG % "second", {"o1": o1.address, "o2": o2.address})
                m.send_signal(signal.SIGHUP)
                wait_until(lambda: m.get("/x").header("X-Origin-Name") == "two", timeout=5,
                           message="the reloaded route never took effect")
                # The kept connection's requests move to the new snapshot too, as soon as
                # its worker has taken the posted update (workers take it independently).
                wait_until(lambda: kept.request("GET", "/k").header("X-Origin-Name") == "two",
                           timeout=5, message="the kept connection stayed on the old routes")

            m.write_config(CONFIG % "nonexistent", {"o1": o1.address, "o2": o2.address})
            m.send_signal(signal.SIGHUP)
            wait_until(lambda: "failed; keeping generation" in m.stderr_text(), timeout=5,
                       message="the invalid file was not reported")
            self.assertIn("nonexistent", m.stderr_text())
            self.assertEqual(m.get("/x").header("X-Origin-Name"), "two")


if __name__ == "__main__":
    unittest.main()
