"""Signals: SIGTERM / SIGINT drain -- stop accepting, finish in-flight requests, close idle
keep-alive connections, exit 0; /ready answers 503 while draining."""

import signal
import socket
import unittest

from harness import (HttpConn, Meridian, Origin, ProtocolError, http_request, split_address,
                     wait_until)

CONFIG = """
node: {name: edge-life}
workers: 2
drain_timeout: 10s
admin:
  listen: "{admin}"
listeners:
  - name: public
    listen: "{listen}"
    routes:
      - {name: all, backend: b}
backends:
  - name: b
    regions:
      - name: r1
        location: {lat: 50.0, lon: 8.0}
        endpoints: [{address: "{o1}"}]
"""

BOUND = 5.0


def new_request_not_served(address, origin, path):
    """Try a fresh connection + request; True when it is not served (refused, closed, reset,
    or answered without reaching the origin)."""
    try:
        r = http_request(address, "GET", path, timeout=1.0)
    except (OSError, ProtocolError):
        return True
    return r.status != 200 and origin.requests(path) == 0


class DrainTest(unittest.TestCase):
    def test_sigterm_finishes_in_flight_request_then_exits_0(self):
        with Origin("o1") as o, Meridian(CONFIG, {"o1": o.address}) as m:
            c = HttpConn(m.listen_address, timeout=15)
            try:
                c.send_request("GET", "/inflight?delay_ms=2000")
                wait_until(lambda: o.requests("/inflight") == 1, BOUND,
                           message="the in-flight request to reach the origin")
                m.send_signal(signal.SIGTERM)

                # New connections are not served any more (polled: the signal is handled
                # asynchronously).
                probes = iter(range(1000))
                wait_until(lambda: new_request_not_served(
                    m.listen_address, o, f"/after-term/{next(probes)}"), 1.5,
                    message="new connections to be refused after SIGTERM", ignore=())

                # /ready answers 503 while draining, if the admin listener is still up.
                try:
                    ready = m.admin("GET", "/ready", timeout=1.0)
                except (OSError, ProtocolError):
                    ready = None
                if ready is not None:
                    self.assertEqual(ready.status, 503, "/ready while draining")

                r = c.read_response()
                self.assertEqual(r.status, 200, "in-flight request must finish")
                self.assertEqual(r.json()["path"], "/inflight")
            finally:
                c.close()
            code = m.wait(timeout=15)
            self.assertEqual(code, 0, m.stderr_text()[-2000:])

    def test_sigterm_closes_idle_keepalive_connections(self):
        with Origin("o1") as o, Meridian(CONFIG, {"o1": o.address}) as m:
            with HttpConn(m.listen_address) as c:
                self.assertEqual(c.request("GET", "/idle").status, 200)
                m.send_signal(signal.SIGTERM)
                self.assertIsNotNone(c.wait_closed(BOUND),
                                     "idle keep-alive connection not closed on SIGTERM")
            code = m.wait(timeout=BOUND * 2)
            self.assertEqual(code, 0, m.stderr_text()[-2000:])

    def test_sigint_exits_0(self):
        with Origin("o1") as o, Meridian(CONFIG, {"o1": o.address}) as m:
            self.assertEqual(m.get("/x").status, 200)
            m.send_signal(signal.SIGINT)
            code = m.wait(timeout=BOUND * 2)
            self.assertEqual(code, 0, m.stderr_text()[-2000:])
            host, port = split_address(m.listen_address)
            with self.assertRaises(ConnectionRefusedError):
                socket.create_connection((host, port), timeout=2).close()

    def test_drain_timeout_bounds_a_stuck_request(self):
        cfg = CONFIG.replace("drain_timeout: 10s", "drain_timeout: 1s")
        with Origin("o1") as o, Meridian(cfg, {"o1": o.address}) as m:
            c = HttpConn(m.listen_address, timeout=30)
            try:
                c.send_request("GET", "/stuck?delay_ms=20000")
                wait_until(lambda: o.requests("/stuck") == 1, BOUND)
                m.send_signal(signal.SIGTERM)
                # Exits well before the 20 s request would have finished.
                code = m.wait(timeout=10)
                self.assertEqual(code, 0, m.stderr_text()[-2000:])
            finally:
                c.close()


if __name__ == "__main__":
    unittest.main()
