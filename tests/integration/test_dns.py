"""DNS re-resolution of endpoint names (docs/configuration.md, endpoints[].resolve), against a
real DNS server on 127.0.0.1 whose answers the test changes (tests/support/dns_server.py):
requests follow an answer that moves from address A to B within `resolve.every` with no
request failing and A finishing what it had; a short TTL brings the lookup forward; a failed
lookup keeps the last good addresses; every address of a name is an endpoint."""

import unittest

from dns_server import DnsServer
from harness import Meridian, Origin, SteadyLoad, free_port, wait_until

NAME = "origin.meridian.test"

CONFIG = """
node: {name: edge-dns}
workers: 2
debug_headers: true
access_log: {path: off}
dns: {servers: ["%(dns)s"]}
admin:
  listen: "{admin}"
listeners:
  - name: public
    listen: "{listen}"
    routes: [{name: all, backend: api, timeout: 10s}]
backends:
  - name: api
    regions:
      - name: r1
        location: {lat: 50, lon: 8}
        endpoints:
          - {address: "%(name)s:%(port)d", resolve: {every: %(every)s}}
"""


class DnsTest(unittest.TestCase):
    def setUp(self):
        # A and B listen on the same port of two loopback addresses: one name, one port.
        self.port = free_port("127.0.0.2")
        self.a = Origin("A", host="127.0.0.2", port=self.port).start()
        self.b = Origin("B", host="127.0.0.3", port=self.port).start()
        self.dns = DnsServer().__enter__()

    def tearDown(self):
        self.dns.__exit__(None, None, None)
        self.a.stop()
        self.b.stop()

    def config(self, every="1s"):
        return CONFIG % {"dns": self.dns.address, "name": NAME, "port": self.port,
                         "every": every}

    def endpoints(self, m):
        return m.status()["backends"][0]["regions"][0]["endpoints"]

    def addresses(self, m):
        return sorted(e["address"] for e in self.endpoints(m))

    def test_answer_moving_from_a_to_b_moves_requests_without_failures(self):
        self.dns.set(NAME, ["127.0.0.2"], ttl=300)
        with Meridian(self.config("1s"), {}) as m:
            a_text, b_text = f"127.0.0.2:{self.port}", f"127.0.0.3:{self.port}"
            wait_until(lambda: self.addresses(m) == [a_text], 5, message="A from the DNS server")
            endpoint = self.endpoints(m)[0]
            self.assertEqual(endpoint["resolved_from"], f"{NAME}:{self.port}")
            with SteadyLoad(m.listen_address, threads=3) as load, m.conn() as slow:
                wait_until(lambda: load.served_by("A") > 20, 10, message="load on A")
                # A request A is still serving when the answer changes.
                slow.send_request("GET", "/slow?delay_ms=2500")
                wait_until(lambda: self.a.requests("/slow") == 1, 5)
                self.dns.set(NAME, ["127.0.0.3"], ttl=300)
                # Within resolve.every (1 s) of the change, plus the time to notice.
                wait_until(lambda: load.served_by("B") > 0, 3, message="requests to move to B")
                a_then = load.served_by("A")
                wait_until(lambda: load.served_by("B") > 30, 10)
                self.assertLessEqual(load.served_by("A") - a_then, 3,
                                     "A kept taking new requests after the move")
                r = slow.read_response()
                self.assertEqual(r.status, 200, "A finishes its request in flight")
                self.assertEqual(r.header("x-origin-name"), "A")
            self.assertEqual(load.failed, [], f"{len(load.failed)} failed requests")
            self.assertEqual(self.addresses(m), [b_text])
            self.assertGreaterEqual(
                m.metric("meridian_dns_resolutions_total", {"result": "success"}), 2)
            dns = m.status()["dns"]
            self.assertEqual([(d["name"], d["addresses"]) for d in dns], [(NAME, ["127.0.0.3"])])

    def test_a_short_ttl_brings_the_next_lookup_forward(self):
        self.dns.set(NAME, ["127.0.0.2"], ttl=1)
        with Meridian(self.config("1h"), {}) as m:
            wait_until(lambda: m.get("/").header("x-origin-name") == "A", 5)
            self.dns.set(NAME, ["127.0.0.3"], ttl=1)
            # The period is an hour: only the TTL of 1 s can bring B in.
            wait_until(lambda: m.get("/").header("x-origin-name") == "B", 5,
                       message="the TTL to be honoured")
            self.assertEqual(m.status()["dns"][0]["ttl_s"], 1)

    def test_a_failed_lookup_keeps_the_last_good_addresses(self):
        self.dns.set(NAME, ["127.0.0.2"], ttl=300)
        with Meridian(self.config("1s"), {}) as m:
            wait_until(lambda: self.addresses(m) == [f"127.0.0.2:{self.port}"], 5)
            self.dns.mode = "servfail"
            wait_until(lambda: (m.metric("meridian_dns_resolutions_total",
                                         {"result": "failure"}) or 0) >= 2, 15,
                       message="two failed lookups")
            for i in range(10):
                r = m.get(f"/after/{i}")
                self.assertEqual(r.status, 200)
                self.assertEqual(r.header("x-origin-name"), "A")
            name = m.status()["dns"][0]
            self.assertEqual(name["last_result"], "failure")
            self.assertEqual(name["addresses"], ["127.0.0.2"])
            self.assertIn("lookup failed", m.stderr_text())

    def test_every_address_of_the_name_is_an_endpoint(self):
        self.dns.set(NAME, ["127.0.0.2", "127.0.0.3"], ttl=300)
        with Meridian(self.config("1s"), {}) as m:
            wait_until(lambda: len(self.addresses(m)) == 2, 5, message="both addresses")
            served = {m.get(f"/both/{i}").header("x-origin-name") for i in range(20)}
            self.assertEqual(served, {"A", "B"})
            # One address leaves: the other keeps its state (its in-flight count, health).
            self.dns.set(NAME, ["127.0.0.3"], ttl=300)
            wait_until(lambda: self.addresses(m) == [f"127.0.0.3:{self.port}"], 5)
            served = {m.get(f"/one/{i}").header("x-origin-name") for i in range(10)}
            self.assertEqual(served, {"B"})


if __name__ == "__main__":
    unittest.main()
