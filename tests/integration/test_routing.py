"""Routes: first match wins; host (exact, wildcard, port ignored), path_prefix, exact path and
methods; no match answers 404 without touching any origin."""

import unittest

from harness import HttpConn, Meridian, Origin

CONFIG = """
node: {name: edge-routing}
workers: 1
admin:
  listen: "{admin}"
listeners:
  - name: public
    listen: "{listen}"
    routes:
      - name: api-exact-host
        match: {host: api.example.com}
        backend: api
      - name: wildcard-host
        match: {host: "*.example.com"}
        backend: wild
      - name: exact-path
        match: {path: /exact}
        backend: exact
      - name: static-prefix
        match: {path_prefix: /static/}
        backend: static
      - name: writes
        match: {path_prefix: /rpc/, methods: [POST, PUT]}
        backend: writes
      - name: reads
        match: {path_prefix: /rpc/, methods: [GET]}
        backend: reads
backends:
%s
"""

NAMES = ["api", "wild", "exact", "static", "writes", "reads"]

BACKEND = """  - name: %s
    regions:
      - name: r1
        location: {lat: 50.0, lon: 8.0}
        endpoints: [{address: "{%s}"}]
"""


class RoutingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.origins = {}
        try:
            for name in NAMES:
                cls.origins[name] = Origin(f"origin-{name}").start()
            backends = "".join(BACKEND % (n, n) for n in NAMES)
            cls.meridian = Meridian(CONFIG % backends,
                                    {n: o.address for n, o in cls.origins.items()}).__enter__()
        except BaseException:
            for o in cls.origins.values():
                o.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.meridian.__exit__(None, None, None)
        finally:
            for o in cls.origins.values():
                o.stop()

    def setUp(self):
        for o in self.origins.values():
            o.reset_stats()

    def request(self, method, target, host, body=None):
        with HttpConn(self.meridian.listen_address) as c:
            return c.request(method, target, body=body, host=host)

    def assert_routed(self, method, target, host, backend):
        r = self.request(method, target, host)
        self.assertEqual(r.status, 200, f"{method} {target} Host: {host} -> {r!r}")
        self.assertEqual(r.header("X-Origin-Name"), f"origin-{backend}",
                         f"{method} {target} Host: {host} went to the wrong backend")
        self.assertEqual(r.json()["target"], target)

    def assert_404(self, method, target, host):
        r = self.request(method, target, host)
        self.assertEqual(r.status, 404, f"{method} {target} Host: {host} -> {r!r}")
        self.assertIsNone(r.header("X-Origin-Name"), "404 must come from meridian itself")
        for name, o in self.origins.items():
            self.assertEqual(o.log(), [], f"origin-{name} got {method} {target} "
                                          f"Host: {host}")

    # ---- no route ----------------------------------------------------------------------------

    def test_404_when_no_route_matches(self):
        self.assert_404("GET", "/nothing/here", "other.test")
        self.assert_404("DELETE", "/", "other.test")

    def test_404_keeps_connection_usable(self):
        with HttpConn(self.meridian.listen_address) as c:
            r = c.request("GET", "/nope", host="other.test")
            self.assertEqual(r.status, 404)
            if not r.will_close:
                r2 = c.request("GET", "/exact", host="other.test")
                self.assertEqual(r2.header("X-Origin-Name"), "origin-exact")

    # ---- host ------------------------------------------------------------------------------

    def test_exact_host(self):
        self.assert_routed("GET", "/anything", "api.example.com", "api")
        # exact host wins over the wildcard and over later path routes (first match wins)
        self.assert_routed("GET", "/exact", "api.example.com", "api")

    def test_exact_host_port_ignored(self):
        self.assert_routed("GET", "/p", "api.example.com:8080", "api")

    def test_host_match_is_case_insensitive(self):
        self.assert_routed("GET", "/case", "API.Example.COM", "api")

    def test_wildcard_host_matches_subdomain(self):
        self.assert_routed("GET", "/w", "a.example.com", "wild")
        self.assert_routed("GET", "/w2", "www.example.com:443", "wild")

    def test_wildcard_host_does_not_match_apex(self):
        self.assert_404("GET", "/apex", "example.com")

    def test_wildcard_host_does_not_match_other_suffix(self):
        self.assert_404("GET", "/suffix", "a.example.com.evil.test")
        self.assert_404("GET", "/suffix2", "aexample.com")

    # ---- path ------------------------------------------------------------------------------

    def test_exact_path(self):
        self.assert_routed("GET", "/exact", "other.test", "exact")
        self.assert_routed("GET", "/exact?q=1", "other.test", "exact")

    def test_exact_path_does_not_match_longer_paths(self):
        self.assert_404("GET", "/exact/sub", "other.test")
        self.assert_404("GET", "/exactly", "other.test")

    def test_path_prefix(self):
        self.assert_routed("GET", "/static/app.js", "other.test", "static")
        self.assert_routed("GET", "/static/", "other.test", "static")

    def test_path_prefix_not_matching(self):
        self.assert_404("GET", "/stat", "other.test")
        self.assert_404("GET", "/other/static/x", "other.test")

    # ---- methods -----------------------------------------------------------------------------

    def test_methods(self):
        self.assert_routed("POST", "/rpc/call", "other.test", "writes")
        self.assert_routed("PUT", "/rpc/call", "other.test", "writes")
        self.assert_routed("GET", "/rpc/call", "other.test", "reads")

    def test_method_not_listed_is_404(self):
        self.assert_404("DELETE", "/rpc/call", "other.test")
        self.assert_404("PATCH", "/rpc/call", "other.test")


if __name__ == "__main__":
    unittest.main()
