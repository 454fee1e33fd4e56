"""Rate limiting, scope local: the token bucket per (route, key) shared by all workers, 429 with
Retry-After and RateLimit-* headers, allowed responses with the same headers, keys by client
address, route and header, clients behind a trusted proxy, the node-wide count under load on 4
workers, and buckets kept across a reload."""

import signal
import sys
import threading
import time
import unittest

from harness import HttpConn, Meridian, OneOriginTestCase, Origin, wait_until

CONFIG = """
node: {name: edge-rl}
workers: %(workers)d
admin:
  listen: "{admin}"
client_ip:
  trusted_proxies: ["127.0.0.9/32"]
listeners:
  - name: public
    listen: "{listen}"
    routes:
      - {name: per-client, match: {path_prefix: /ip/}, backend: b,
         rate_limit: {rate: 10/m, burst: 10}}
      - {name: per-key, match: {path_prefix: /key/}, backend: b,
         rate_limit: {rate: 10/m, burst: 3, key: "header:X-Api-Key"}}
      - {name: whole-route, match: {path_prefix: /route/}, backend: b,
         rate_limit: {rate: 10/m, burst: 5, key: route}}
      - {name: steady, match: {path_prefix: /steady/}, backend: b,
         rate_limit: {rate: 40/s, burst: 20}}
      - {name: open, backend: b}
backends:
  - name: b
    regions:
      - name: r1
        location: {lat: 50.0, lon: 8.0}
        endpoints: [{address: "{o1}"}]
"""


def concurrent_gets(address, path, n, source=None, headers=None):
    """n requests at once, each on its own connection (all connected before any is sent);
    returns the responses."""
    conns = [HttpConn(address, source_address=(source, 0) if source else None)
             for _ in range(n)]
    results = [None] * n
    barrier = threading.Barrier(n)

    def one(i):
        barrier.wait()
        results[i] = conns[i].request("GET", f"{path}{i}", headers)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        for c in conns:
            c.close()
    return results


class LocalRateLimitTest(OneOriginTestCase):
    CONFIG = CONFIG % {"workers": 2}

    def assert_limited(self, r, limit):
        self.assertEqual(r.status, 429, r)
        self.assertEqual(r.header("RateLimit-Limit"), str(limit))
        self.assertEqual(r.header("RateLimit-Remaining"), "0")
        self.assertGreaterEqual(int(r.header("Retry-After")), 1)
        self.assertGreaterEqual(int(r.header("RateLimit-Reset")), int(r.header("Retry-After")))
        self.assertIn("rate limit", r.text())
        self.assertIsNone(r.header("X-Origin-Connection-Id"), "a 429 must not reach the origin")

    def test_40_concurrent_requests_exactly_10_allowed_and_a_second_client_has_its_own(self):
        responses = concurrent_gets(self.meridian.listen_address, "/ip/a", 40, "127.0.0.1")
        allowed = [r for r in responses if r.status == 200]
        refused = [r for r in responses if r.status != 200]
        self.assertEqual(len(allowed), 10, [r.status for r in responses])
        self.assertEqual(len(refused), 30)
        for r in refused:
            self.assert_limited(r, 10)
            # 10 tokens a minute: the next one is at most 6 s away.
            self.assertLessEqual(int(r.header("Retry-After")), 6)
        remaining = sorted(int(r.header("RateLimit-Remaining")) for r in allowed)
        self.assertEqual(remaining, list(range(10)), "allowed responses count down 9..0")
        for r in allowed:
            self.assertEqual(r.header("RateLimit-Limit"), "10")
        self.assertEqual(self.origin.requests(), 10)
        # Another source address: a bucket of its own.
        other = concurrent_gets(self.meridian.listen_address, "/ip/b", 12, "127.0.0.2")
        self.assertEqual(sorted(r.status for r in other), [200] * 10 + [429] * 2)

    def test_header_key(self):
        def get(key, source="127.0.0.3"):
            with HttpConn(self.meridian.listen_address, source_address=(source, 0)) as c:
                return c.request("GET", "/key/x", [("X-Api-Key", key)] if key else None)
        self.assertEqual([get("tenant-1").status for _ in range(4)], [200, 200, 200, 429])
        # Another key, same address: its own bucket; the same key elsewhere: the same one.
        self.assertEqual(get("tenant-2").status, 200)
        self.assert_limited(get("tenant-1", source="127.0.0.4"), 3)
        # No header: keyed by the client address, so leaving it out escapes nothing.
        self.assertEqual([get(None, "127.0.0.5").status for _ in range(4)],
                         [200, 200, 200, 429])

    def test_route_key_is_one_bucket_for_everyone(self):
        statuses = []
        for i in range(8):
            source = f"127.0.0.{20 + i}"
            with HttpConn(self.meridian.listen_address, source_address=(source, 0)) as c:
                statuses.append(c.request("GET", "/route/x").status)
        self.assertEqual(statuses, [200] * 5 + [429] * 3)

    def test_trusted_proxy_clients_keyed_by_forwarded_address(self):
        def via_proxy(client):
            with HttpConn(self.meridian.listen_address, source_address=("127.0.0.9", 0)) as c:
                return c.request("GET", "/ip/p", [("X-Forwarded-For", f"{client}, 127.0.0.9")])
        first = [via_proxy("203.0.113.5").status for _ in range(11)]
        self.assertEqual(first, [200] * 10 + [429])
        # Another client behind the same proxy is not limited by the first one's use.
        self.assertEqual(via_proxy("203.0.113.6").status, 200)
        # An untrusted peer's X-Forwarded-For is ignored: keyed by its own address.
        with HttpConn(self.meridian.listen_address, source_address=("127.0.0.10", 0)) as c:
            r = c.request("GET", "/ip/q", [("X-Forwarded-For", "203.0.113.5")])
        self.assertEqual(r.status, 200)

    def test_refusals_are_counted_in_status(self):
        def limited():
            for r in self.meridian.status()["rate_limits"]["routes"]:
                if r["route"] == "public/per-client":
                    return r["limited"]
        before = limited()
        for _ in range(12):
            with HttpConn(self.meridian.listen_address, source_address=("127.0.0.30", 0)) as c:
                c.request("GET", "/ip/c")
        self.assertEqual(limited() - before, 2)

    def test_unlimited_route_has_no_headers(self):
        r = self.meridian.get("/open")
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.header("RateLimit-Limit"))

    def test_refused_request_with_a_body_closes_the_connection(self):
        # The body is never read, so the connection cannot carry a next request.
        with HttpConn(self.meridian.listen_address, source_address=("127.0.0.40", 0)) as c:
            for _ in range(3):
                self.assertEqual(c.request("GET", "/key/x", [("X-Api-Key", "body")]).status,
                                 200)
            r = c.request("POST", "/key/x", [("X-Api-Key", "body")], body=b"x" * 1000)
            self.assertEqual(r.status, 429)
            self.assertTrue(r.will_close)


class NodeWideRateLimitTest(unittest.TestCase):
    """Scope local on 4 workers: all of them draw from one bucket."""

    def test_allowed_count_follows_rate_times_duration_plus_burst(self):
        rate, burst, duration = 40, 20, 5.0
        with Origin("o1") as origin, \
                Meridian(CONFIG % {"workers": 4}, {"o1": origin.address}) as m:
            counts = {"allowed": 0, "refused": 0, "other": 0}
            lock = threading.Lock()
            times = []
            stop_at = time.monotonic() + duration

            def load():
                seen = {"allowed": 0, "refused": 0, "other": 0}
                first = last = None
                conn = m.conn()
                try:
                    while True:
                        now = time.monotonic()
                        if now >= stop_at:
                            break
                        r = conn.request("GET", "/steady/x")
                        first = first or now
                        last = now
                        key = {200: "allowed", 429: "refused"}.get(r.status, "other")
                        seen[key] += 1
                        if r.will_close:
                            conn.close()
                            conn = m.conn()
                finally:
                    conn.close()
                with lock:
                    for k, v in seen.items():
                        counts[k] += v
                    if first is not None:
                        times.append((first, last))

            # 16 connections: SO_REUSEPORT spreads them over the 4 workers.
            threads = [threading.Thread(target=load) for _ in range(16)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            span = max(t[1] for t in times) - min(t[0] for t in times)
            total = counts["allowed"] + counts["refused"]
            self.assertEqual(counts["other"], 0, counts)
            self.assertGreaterEqual(total, 10 * rate * span,
                                    f"the load was not 10x the rate: {counts} in {span:.2f}s")
            expected = rate * span + burst
            print(f"node-wide: {counts['allowed']} allowed of {total} in {span:.2f}s "
                  f"({total / span:.0f} req/s), expected {expected:.0f}", file=sys.stderr)
            self.assertLessEqual(abs(counts["allowed"] - expected), 0.05 * expected,
                                 f"allowed {counts['allowed']}, expected {expected:.0f} "
                                 f"(rate x {span:.2f}s + burst); {counts}")
            self.assertEqual(origin.requests(), counts["allowed"])


class ReloadKeepsBucketsTest(unittest.TestCase):
    def test_reload_does_not_refill_buckets(self):
        with Origin("o1") as origin, \
                Meridian(CONFIG % {"workers": 2}, {"o1": origin.address}) as m:
            statuses = [m.get("/route/x").status for _ in range(6)]
            self.assertEqual(statuses, [200] * 5 + [429])
            generation = m.status()["generation"]
            # The same limits with another node name: the route's bucket carries over.
            m.write_config(CONFIG.replace("edge-rl", "edge-rl-2") % {"workers": 2},
                           {"o1": origin.address})
            m.send_signal(signal.SIGHUP)
            wait_until(lambda: m.status()["generation"] > generation, 10,
                       message="the reload to take effect")
            self.assertEqual(m.get("/route/x").status, 429)
            # A changed limit is a new bucket.
            m.write_config(CONFIG.replace("burst: 5, key: route", "burst: 6, key: route")
                           % {"workers": 2}, {"o1": origin.address})
            generation = m.status()["generation"]
            m.send_signal(signal.SIGHUP)
            wait_until(lambda: m.status()["generation"] > generation, 10,
                       message="the second reload to take effect")
            self.assertEqual(m.get("/route/x").status, 200)


if __name__ == "__main__":
    unittest.main()
