"""Origin traffic policy on real sockets (docs/configuration.md, route retry and spill-over and
shedding): a region's capacity spills to the next region; a region short of healthy endpoints
and a region with a traffic dial keep only part of their clients, each client consistently; a
recovered region takes its clients back over slow_start; status codes are retried, within a
budget, and a per-try timeout moves a request off a slow origin.

Distinct clients are distinct loopback source addresses (127.1.x.y): meridian decides who is
shed by a hash of the client address."""

import concurrent.futures
import time
import unittest

from harness import Meridian, Origin, free_port, http_request, wait_until

TWO_REGIONS = """
node: {name: edge-policy}
workers: 2
debug_headers: true
access_log: {path: off}
admin:
  listen: "{admin}"
listeners:
  - name: public
    listen: "{listen}"
    routes:
      - {name: all, backend: api, timeout: 10s}
backends:
  - name: api
    steering: {policy: failover}
    %(backend)s
    regions:
      - name: primary
        %(primary)s
        endpoints: [%(primary_endpoints)s]
      - name: secondary
        endpoints: [{address: "{s1}"}]
"""


def two_regions(primary_endpoints, primary="", backend=""):
    return TWO_REGIONS % {"primary_endpoints": primary_endpoints, "primary": primary,
                          "backend": backend}


def client_address(n):
    """The n-th distinct client: 127.1.0.1, 127.1.0.2, ..."""
    n += 1
    return f"127.1.{n // 250}.{n % 250 + 1}"


def region_of(m, n):
    r = http_request(m.listen_address, "GET", f"/c/{n}", [("Connection", "close")],
                     source_address=client_address(n))
    assert r.status == 200, (n, r.status, r.text())
    return r.header("x-meridian-region")


def share_elsewhere(m, clients):
    """How many of `clients` distinct clients the node steers to the secondary region."""
    return sum(1 for n in range(clients) if region_of(m, n) == "secondary")


class CapacityTest(unittest.TestCase):
    def test_capacity_20_serves_20_and_spills_the_rest(self):
        with Origin("p1") as p1, Origin("s1") as s1:
            config = two_regions('{address: "{p1}"}', primary="capacity: 20")
            with Meridian(config, {"p1": p1.address, "s1": s1.address}) as m:
                def slow(i):
                    r = http_request(m.listen_address, "GET", f"/slow/{i}?delay_ms=1500",
                                     [("Connection", "close")], timeout=20)
                    return r.status, r.header("x-meridian-region")

                with concurrent.futures.ThreadPoolExecutor(60) as pool:
                    results = list(pool.map(slow, range(60)))
                self.assertEqual([s for s, _ in results], [200] * 60, "zero errors")
                primary = sum(1 for _, region in results if region == "primary")
                # Two workers deciding at the same instant may each take the last place.
                self.assertGreaterEqual(primary, 20)
                self.assertLessEqual(primary, 21)
                self.assertEqual(p1.stats()["max_in_flight"], primary)
                self.assertEqual(s1.requests(), 60 - primary)
                self.assertEqual(m.metric("meridian_region_selected_total",
                                          {"region": "secondary", "reason": "overflow"}),
                                 60 - primary)


class SheddingTest(unittest.TestCase):
    def test_six_of_eight_down_sheds_a_quarter_each_client_consistently(self):
        with Origin("p1") as p1, Origin("p2") as p2, Origin("s1") as s1:
            # Six endpoints where nothing listens: their health checks fail.
            dead = [f'{{address: "127.0.0.1:{free_port()}"}}' for _ in range(6)]
            endpoints = ", ".join(['{address: "{p1}"}', '{address: "{p2}"}'] + dead)
            backend = ("health_check: {path: /health, interval: 100ms, timeout: 200ms, "
                       "unhealthy_threshold: 1, healthy_threshold: 1}")
            config = two_regions(endpoints, backend=backend)
            with Meridian(config, {"p1": p1.address, "p2": p2.address, "s1": s1.address}) as m:
                def unhealthy():
                    region = m.status()["backends"][0]["regions"][0]
                    return sum(1 for e in region["endpoints"] if not e["healthy"])
                wait_until(lambda: unhealthy() == 6, 10, message="six endpoints to be down")
                time.sleep(0.3)  # the healthy count is published every 100 ms
                clients = 400
                elsewhere = share_elsewhere(m, clients)
                # shed = 0.5 - 2/8 = 25% of 400 = 100; the hash spreads them binomially.
                self.assertGreater(elsewhere, 65)
                self.assertLess(elsewhere, 135)
                for n in range(0, clients, 8):
                    first = region_of(m, n)
                    self.assertEqual(region_of(m, n), first, f"client {n} bounced")
                self.assertGreaterEqual(
                    m.metric("meridian_region_selected_total",
                             {"region": "secondary", "reason": "shed"}), elsewhere)


class TrafficDialTest(unittest.TestCase):
    def test_half_of_the_distinct_clients_go_elsewhere_each_consistently(self):
        with Origin("p1") as p1, Origin("s1") as s1:
            config = two_regions('{address: "{p1}"}', primary="traffic_dial: 50%")
            with Meridian(config, {"p1": p1.address, "s1": s1.address}) as m:
                clients = 400
                first = [region_of(m, n) for n in range(clients)]
                elsewhere = first.count("secondary")
                self.assertGreater(elsewhere, 160)
                self.assertLess(elsewhere, 240)
                for n in range(0, clients, 4):
                    self.assertEqual(region_of(m, n), first[n], f"client {n} bounced")


class SlowStartTest(unittest.TestCase):
    def test_a_recovered_regions_share_rises_over_slow_start(self):
        with Origin("p1") as p1, Origin("p2") as p2, Origin("s1") as s1:
            backend = ("slow_start: 10s\n    health_check: {path: /health, interval: 100ms, "
                       "timeout: 200ms, unhealthy_threshold: 1, healthy_threshold: 1}")
            config = two_regions('{address: "{p1}"}, {address: "{p2}"}', backend=backend)
            with Meridian(config, {"p1": p1.address, "p2": p2.address, "s1": s1.address}) as m:
                self.assertEqual(share_elsewhere(m, 50), 0, "both healthy: nothing shed")
                p1.set_health(503)
                p2.set_health(503)
                wait_until(lambda: region_of(m, 0) == "secondary", 10,
                           message="the primary region to be down")
                p1.set_health(200)
                p2.set_health(200)
                wait_until(lambda: all(e["healthy"] for e in
                                       m.status()["backends"][0]["regions"][0]["endpoints"]),
                           10, message="the primary region's endpoints to recover")
                recovered = time.monotonic()
                clients = 150
                samples = []  # (seconds since recovery, share kept by the primary region)
                while time.monotonic() - recovered < 12:
                    started = time.monotonic() - recovered
                    kept = clients - share_elsewhere(m, clients)
                    samples.append((started, kept / clients))
                # Sampled, not instant: low at first, higher half-way, everything after 10 s.
                early = [s for t, s in samples if t < 2.5]
                middle = [s for t, s in samples if 4 <= t < 7]
                late = [s for t, s in samples if t >= 10.5]
                self.assertTrue(early and middle and late, samples)
                self.assertLess(early[0], 0.5, samples)
                self.assertGreater(max(middle), early[0] + 0.15, samples)
                self.assertLess(min(middle), 0.95, samples)
                self.assertEqual(late[-1], 1.0, samples)


RETRY = """
node: {name: edge-retry}
workers: 2
access_log: {path: off}
admin:
  listen: "{admin}"
listeners:
  - name: public
    listen: "{listen}"
    routes:
      - name: all
        backend: api
        retries: 2
        %(retry)s
backends:
  - name: api
    steering: {policy: failover}
    regions:
      - name: r1
        endpoints: [{address: "{a}"}, {address: "{b}"}, {address: "{c}"}]
"""


class RetryPolicyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.origins = {n: Origin(n).start() for n in ("a", "b", "c")}
        cls.subs = {n: o.address for n, o in cls.origins.items()}

    @classmethod
    def tearDownClass(cls):
        for o in cls.origins.values():
            o.stop()

    def setUp(self):
        for o in self.origins.values():
            o.set_answer(0)
            o.reset_stats()

    def statuses(self, m, n, method="GET"):
        out = []
        with m.conn() as c:
            for i in range(n):
                out.append(c.request(method, f"/r/{i}").status)
        return out

    def test_an_origin_answering_503_to_one_request_in_three(self):
        self.origins["a"].set_answer(503)  # one endpoint of three: 1 request in 3 meets it
        with Meridian(RETRY % {"retry": ""}, self.subs) as m:
            without = self.statuses(m, 60)
        self.assertGreater(without.count(503), 10, "the default policy does not retry a 503")
        self.origins["a"].reset_stats()
        with Meridian(RETRY % {"retry": "retry: {on: [connect, reset, 503]}"}, self.subs) as m:
            with_policy = self.statuses(m, 60)
            self.assertEqual(with_policy.count(503), 0, with_policy)
            answered_503 = self.origins["a"].requests()
            self.assertGreater(answered_503, 10)
            self.assertEqual(m.metric("meridian_upstream_retries_total", {"reason": "status"}),
                             answered_503)
            # A POST is not idempotent: its 503 goes to the client.
            posts = self.statuses(m, 30, method="POST")
            self.assertGreater(posts.count(503), 3)

    def test_every_origin_failing_keeps_retries_within_the_budget(self):
        for o in self.origins.values():
            o.set_answer(503)

        def hammer(m, clients=24, each=8):
            def client(k):
                return self.statuses(m, each)
            with concurrent.futures.ThreadPoolExecutor(clients) as pool:
                results = [s for r in pool.map(client, range(clients)) for s in r]
            at_origins = sum(o.requests() for o in self.origins.values())
            return results, at_origins

        retry = "retry: {on: [503], budget: %s, backoff: 20ms}"
        with Meridian(RETRY % {"retry": retry % "100%"}, self.subs) as m:
            results, unbounded = hammer(m)
        self.assertEqual(set(results), {503}, "clients get the 503")
        requests = len(results)
        # Without a budget every request makes its two retries.
        self.assertGreater(unbounded, 2.5 * requests)
        for o in self.origins.values():
            o.reset_stats()
        with Meridian(RETRY % {"retry": retry % "20%"}, self.subs) as m:
            results, bounded = hammer(m)
            self.assertEqual(set(results), {503}, "clients get the 503")
            self.assertLess(bounded, 1.6 * requests,
                            f"{bounded} requests at the origins for {requests} from clients")
            self.assertGreater(m.metric("meridian_upstream_retry_budget_exhausted_total"), 0)

    def test_per_try_timeout_moves_a_request_off_a_slow_origin(self):
        with Origin("slow", extra_args=["--delay-ms", "3000"]) as slow:
            subs = dict(self.subs, a=slow.address)
            retry = "retry: {per_try_timeout: 300ms, backoff: 0s}"
            with Meridian(RETRY % {"retry": retry}, subs) as m:
                for i in range(6):
                    r = m.get(f"/p/{i}")
                    self.assertEqual(r.status, 200)
                    # Without the per-try timeout, the slow origin answers its share (late).
                    self.assertNotEqual(r.header("x-origin-name"), "slow")
                self.assertGreater(m.metric("meridian_upstream_retries_total",
                                            {"reason": "per_try_timeout"}), 0)


if __name__ == "__main__":
    unittest.main()
