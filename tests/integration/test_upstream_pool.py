"""Upstream connection handling (backends.connect_timeout, keepalive.*): the connect timeout
answers 504, pooled idle connections are closed after keepalive.idle_timeout, and the pool
follows demand: a burst of concurrent requests reuses its connections round after round
whatever keepalive.max_idle_per_endpoint says, and once the burst is over the surplus is closed
down to max_idle_per_endpoint, which stay."""

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
      - {name: steady, match: {path_prefix: /steady}, backend: steady}
      - {name: all, backend: b}
backends:
  - name: steady
    keepalive: {max_idle_per_endpoint: 2, idle_timeout: 60s}
    regions:
      - name: r1
        location: {lat: 50.0, lon: 8.0}
        endpoints: [{address: "{o2}"}]
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
        cls.steady = Origin("o2").start()
        cls.hole = Blackhole()
        try:
            cls.meridian = Meridian(CONFIG, {"o1": cls.origin.address,
                                             "o2": cls.steady.address,
                                             "hole": cls.hole.address}).__enter__()
        except BaseException:
            cls.origin.stop()
            cls.steady.stop()
            cls.hole.close()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.meridian.__exit__(None, None, None)
        finally:
            cls.origin.stop()
            cls.steady.stop()
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

    def burst(self, n, delay_ms=300):
        """n concurrent slow requests to the `steady` backend: n upstream connections in use."""
        results = []

        def slow(i):
            results.append(http_get(self.meridian.listen_address,
                                    f"/steady/{i}?delay_ms={delay_ms}", timeout=10).status)

        threads = [threading.Thread(target=slow, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(results, [200] * n)

    def test_pool_follows_demand_then_shrinks_to_max_idle(self):
        self.steady.reset_stats()
        # Three rounds of 20 concurrent requests against max_idle_per_endpoint 2: a fixed cap
        # would close 18 connections after each round and dial them again (56 in all).
        for _ in range(3):
            self.burst(20)
        stats = self.steady.stats()
        self.assertGreaterEqual(stats["connections_accepted"], 20)
        self.assertLessEqual(stats["connections_accepted"], 24,
                             "upstream connections were closed and dialled again between rounds")
        # Kept while the demand is recent (one to two 5 s windows) ...
        self.assertGreater(stats["connections_active"], 2)
        # ... then closed down to max_idle_per_endpoint, which stay pooled (idle_timeout 60 s).
        wait_until(lambda: self.steady.stats()["connections_active"] <= 2, timeout=20,
                   message="the surplus of idle upstream connections was not closed")
        self.assertEqual(self.steady.stats()["connections_active"], 2)
        before = self.steady.stats()["connections_accepted"]
        self.burst(2, delay_ms=0)
        self.assertEqual(self.steady.stats()["connections_accepted"], before,
                         "the two pooled connections were not reused")


if __name__ == "__main__":
    unittest.main()
