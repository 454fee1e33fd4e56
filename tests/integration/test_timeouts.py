"""Downstream connection limits (the `limits` keys): header_timeout -> 408 and close,
idle_timeout closes idle keep-alive connections, max_connections accepts and closes."""

import socket
import time
import unittest

from harness import (HttpConn, Meridian, Origin, ProtocolError, parse_responses, raw_exchange,
                     split_address, wait_until)

CONFIG = """
node: {name: edge-timeouts}
workers: 2
admin:
  listen: "{admin}"
limits:
  header_timeout: 1s
  idle_timeout: 1s
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

MAXCONN_CONFIG = CONFIG.replace("  header_timeout: 1s\n  idle_timeout: 1s\n",
                                "  max_connections: 2\n")

BOUND = 5.0  # generous upper bound for anything that should happen after ~1 s


class TimeoutsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.origin = Origin("o1").start()
        try:
            cls.meridian = Meridian(CONFIG, {"o1": cls.origin.address}).__enter__()
        except BaseException:
            cls.origin.stop()
            raise
        cls.host, cls.port = split_address(cls.meridian.listen_address)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.meridian.__exit__(None, None, None)
        finally:
            cls.origin.stop()

    def setUp(self):
        self.origin.reset_stats()

    def test_header_timeout_partial_head_408(self):
        res = raw_exchange(self.host, self.port,
                           b"GET /partial HTTP/1.1\r\nHost: example.test\r\nX-A: 1",
                           timeout=BOUND)
        self.assertNotEqual(res.ended, "timeout",
                            f"connection still open {BOUND}s after a 1 s header_timeout")
        responses, _ = parse_responses(res.data)
        self.assertEqual([r.status for r in responses], [408], res)
        self.assertEqual(self.origin.log(), [])

    def test_header_timeout_not_extended_by_trickling(self):
        """A head sent one byte every 200 ms never completes: header_timeout bounds the
        whole head, not the gap between bytes (slowloris)."""
        head = b"GET /trickle HTTP/1.1\r\nHost: example.test\r\n" + b"X-Slow: " + b"a" * 200
        data = bytearray()
        closed = None
        start = time.monotonic()
        with socket.create_connection((self.host, self.port), timeout=BOUND) as s:
            s.settimeout(0.2)
            for byte in head:
                if time.monotonic() - start > BOUND:
                    break
                try:
                    s.sendall(bytes([byte]))
                except (BrokenPipeError, ConnectionResetError):
                    closed = "reset"
                    break
                try:
                    chunk = s.recv(65536)  # waits up to 0.2 s: paces the trickle
                except TimeoutError:
                    continue
                except ConnectionResetError:
                    closed = "reset"
                    break
                if not chunk:
                    closed = "eof"
                    break
                data += chunk
        self.assertIsNotNone(closed, f"meridian kept a trickling head open for {BOUND}s "
                                     f"with header_timeout 1s; got {bytes(data)!r}")
        responses, _ = parse_responses(bytes(data))
        self.assertIn([r.status for r in responses], ([408], []), data)
        self.assertEqual(self.origin.log(), [])

    def test_idle_keepalive_connection_closed(self):
        with HttpConn(self.meridian.listen_address) as c:
            r = c.request("GET", "/before-idle")
            self.assertEqual(r.status, 200)
            self.assertFalse(r.will_close)
            how = c.wait_closed(BOUND)
        self.assertIsNotNone(how, f"idle connection still open after {BOUND}s "
                                  f"(idle_timeout 1s)")

    def test_active_keepalive_connection_survives_past_idle_timeout(self):
        """Requests spaced under idle_timeout keep one connection alive for longer than
        idle_timeout in total."""
        with HttpConn(self.meridian.listen_address) as c:
            start = time.monotonic()
            n = 0
            while time.monotonic() - start < 2.0:
                r = c.request("GET", f"/busy/{n}?delay_ms=300")
                self.assertEqual(r.status, 200)
                n += 1
        self.assertEqual(len({e["path"] for e in self.origin.log()}), n)


class MaxConnectionsTest(unittest.TestCase):
    def test_third_connection_accepted_and_closed(self):
        with Origin("o1") as o, Meridian(MAXCONN_CONFIG, {"o1": o.address}) as m:
            c1, c2 = HttpConn(m.listen_address), HttpConn(m.listen_address)
            try:
                # Both are established and being served.
                self.assertEqual(c1.request("GET", "/one").status, 200)
                self.assertEqual(c2.request("GET", "/two").status, 200)
                # The third one: the TCP handshake completes (accepted), then meridian
                # closes it without serving it.
                host, port = split_address(m.listen_address)
                res = raw_exchange(host, port, b"GET /three HTTP/1.1\r\nHost: x\r\n\r\n",
                                   timeout=BOUND)
                self.assertNotEqual(res.ended, "timeout", "third connection left open")
                responses, _ = parse_responses(res.data)
                self.assertFalse(any(r.status == 200 for r in responses), res)
                self.assertEqual(o.requests("/three"), 0)
                # The first two are still usable.
                self.assertEqual(c1.request("GET", "/one-again").status, 200)
                self.assertEqual(c2.request("GET", "/two-again").status, 200)
                # Once one closes, a new connection is served again.
                c1.close()

                def new_conn_served():
                    with HttpConn(m.listen_address, timeout=2) as c3:
                        return c3.request("GET", "/four").status == 200
                wait_until(new_conn_served, BOUND, message="a new connection to be served "
                           "after one of the two closed",
                           ignore=(OSError, ProtocolError))
            finally:
                c1.close()
                c2.close()


if __name__ == "__main__":
    unittest.main()
