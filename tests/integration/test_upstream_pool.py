"""Upstream connection handling (backends.connect_timeout, keepalive.*): the connect timeout
answers 504, pooled idle connections are closed after keepalive.idle_timeout, and no more than
keepalive.max_idle_per_endpoint stay pooled."""

import socket
import threading
import unittest

from harness import Meridian, Origin, http_get, wait_until

CONFIG = """
node: {name: edge-pool}
workers: 1
admin:
  listen: "{admin}"
listeners:
  - name: public
    listen: "{listen}"
    routes:
      - {name: blackhole, match: {path_prefix: /blackhole}, backend: blackhole, retries: 1}
      - {name: all, backend: b}
backends:
  - name: b
    keepalive: {max_idle_per_endpoint: 2, idle_timeout: 1s}
    regions:
      - name: r1
        location: {lat: 50.0, lon: 8.0}
        endpoints: [{address: "{o1}"}]
  - name: blackhole
    connect_timeout: 300ms
    regions:
      - name: r1
        location: {lat: 50.0, lon: 8.0}
        endpoints: [{address: "{hole}"}]
"""


class Blackhole:
    """A listening socket that never accepts, with its accept queue filled: further SYNs
    are dropped by the kernel, so a connect to it hangs until the client gives up."""

    def __init__(self):
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(0)
        self.address = "127.0.0.1:%d" % self.lsock.getsockname()[1]
        self.fillers = []
        for _ in range(4):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex(self.lsock.getsockname())
            self.fillers.append(s)

    def close(self):
        for s in self.fillers:
            s.close()
        self.lsock.close()


class UpstreamPoolTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.origin = Origin("o1").start()
        cls.hole = Blackhole()
        try:
            cls.meridian = Meridian(CONFIG, {"o1": cls.origin.address,
                                             "hole": cls.hole.address}).__enter__()
        except BaseException:
            cls.origin.stop()
            cls.hole.close()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.meridian.__exit__(None, None, None)
        finally:
            cls.origin.stop()
            cls.hole.close()

    def test_connect_timeout_answers_504(self):
        r = self.meridian.get("/blackhole/x", timeout=10)
        self.assertEqual(r.status, 504, r.text())
        self.assertIn("connect timed out", r.text())

    def test_idle_pooled_connection_closed_after_idle_timeout(self):
        self.origin.reset_stats()
        self.assertEqual(self.meridian.get("/warm").status, 200)
        self.assertGreaterEqual(self.origin.stats()["connections_active"], 1)
        # keepalive.idle_timeout is 1 s: meridian closes the pooled connection by itself.
        wait_until(lambda: self.origin.stats()["connections_active"] == 0, timeout=5,
                   message="pooled upstream connection still open after its idle timeout")

    def test_at_most_max_idle_connections_stay_pooled(self):
        self.origin.reset_stats()
        # Five concurrent slow requests need five upstream connections ...
        results = []

        def slow(i):
            results.append(http_get(self.meridian.listen_address, f"/slow/{i}?delay_ms=500",
                                    timeout=10).status)

        threads = [threading.Thread(target=slow, args=(i,)) for i in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(results, [200] * 5)
        self.assertGreaterEqual(self.origin.stats()["connections_accepted"], 5)
        # ... but only max_idle_per_endpoint (2) of them are kept once they are idle.
        wait_until(lambda: self.origin.stats()["connections_active"] <= 2, timeout=3,
                   message="more idle upstream connections kept than max_idle_per_endpoint")


if __name__ == "__main__":
    unittest.main()
