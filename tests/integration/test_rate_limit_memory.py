"""The number of rate limit keys held in memory is bounded, so a flood of distinct client
addresses cannot exhaust memory. One million distinct clients (X-Forwarded-For from a trusted
peer) go through a rate-limited route; meridian's RSS stays within the documented bound of
limits.max_rate_limit_keys x 40 bytes, and a smaller bound evicts instead of growing. The
backend is kept down (a failing health check), so each request is answered 503 by meridian
itself right after the limiter and the test measures the limiter, not an origin."""
# ctest-label: heavy

import os
import socket
import sys
import threading
import unittest

from harness import Meridian, free_port, split_address, wait_until

CONFIG = """
node: {name: edge-rl-mem}
workers: 2
admin:
  listen: "{admin}"
limits:
  max_rate_limit_keys: %(max_keys)d
client_ip:
  trusted_proxies: ["127.0.0.1/32"]
listeners:
  - name: public
    listen: "{listen}"
    routes:
      - {name: api, backend: down, rate_limit: {rate: 1/h, burst: 1}}
backends:
  - name: down
    health_check: {path: /health, interval: 100ms, timeout: 100ms, unhealthy_threshold: 1}
    regions:
      - name: r1
        location: {lat: 50.0, lon: 8.0}
        endpoints: [{address: "127.0.0.1:%(dead_port)d"}]
"""

BYTES_PER_KEY = 40
SLACK_KIB = 24 * 1024  # connection buffers, allocator arenas, the admin scrape


def client_address(i):
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def flood(address, first, count, batch=2000):
    """Pipelined GETs with X-Forwarded-For client_address(first..first+count-1) on one
    connection; returns how many responses came back with status 503."""
    host, port = split_address(address)
    sock = socket.create_connection((host, port), timeout=30)
    answered = 0
    tail = b""
    try:
        sent = 0
        while sent < count:
            n = min(batch, count - sent)
            payload = b"".join(
                b"GET /x HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: %s\r\n\r\n"
                % client_address(first + sent + k).encode() for k in range(n))
            sock.sendall(payload)
            sent += n
            # Read this batch's answers before sending more (bounded buffers both ways).
            while answered < sent:
                data = sock.recv(1 << 20)
                if not data:
                    raise AssertionError(f"connection closed after {answered} answers")
                chunk = tail + data
                answered += chunk.count(b"HTTP/1.1 503 ")
                tail = chunk[-12:]
                # A status line split across reads is counted once the rest arrives; the
                # 12-byte tail cannot hold a whole one, so nothing is counted twice.
                if tail.count(b"HTTP/1.1 503 "):
                    tail = b""
    finally:
        sock.close()
    return answered


@unittest.skipIf(os.environ.get("MERIDIAN_SANITIZED"), "sanitizers change RSS")
class RateLimitMemoryTest(unittest.TestCase):
    def run_flood(self, max_keys, clients):
        with Meridian(CONFIG % {"max_keys": max_keys, "dead_port": free_port()},
                      wait="health") as m:
            wait_until(lambda: m.admin("GET", "/ready?backend=down").status == 503, 10,
                       message="the backend to be found down")
            baseline = m.rss_kib()
            parts = 4
            share = clients // parts
            results = [0] * parts
            errors = []

            def worker(k):
                try:
                    results[k] = flood(m.listen_address, k * share, share)
                except Exception as e:  # reported below
                    errors.append(e)

            threads = [threading.Thread(target=worker, args=(k,)) for k in range(parts)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(600)
            self.assertEqual(errors, [])
            self.assertEqual(sum(results), share * parts, "every request answered 503")
            rate_limits = m.status()["rate_limits"]
            peak = m.rss_peak_kib()
            print(f"max_rate_limit_keys {max_keys}: {share * parts} clients, "
                  f"{rate_limits['keys']} keys held, RSS {baseline} KiB -> peak {peak} KiB "
                  f"(+{(peak - baseline) / 1024:.1f} MiB)", file=sys.stderr)
            return baseline, peak, rate_limits

    def test_one_million_clients_stay_within_the_bound(self):
        clients = 1_000_000
        baseline, peak, rate_limits = self.run_flood(1_000_000, clients)
        self.assertGreaterEqual(rate_limits["keys"], clients * 95 // 100)
        self.assertLessEqual(peak - baseline, 1_000_000 * BYTES_PER_KEY // 1024 + SLACK_KIB)

    def test_smaller_bound_evicts(self):
        baseline, peak, rate_limits = self.run_flood(20_000, 200_000)
        self.assertLessEqual(rate_limits["keys"], 20_000 + 64 * 16)
        self.assertLessEqual(peak - baseline, 20_000 * BYTES_PER_KEY // 1024 + SLACK_KIB)


if __name__ == "__main__":
    unittest.main()
