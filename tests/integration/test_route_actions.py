"""What a route does beyond "match host and path, send to one backend" (docs/configuration.md,
routes): header and query matching, redirects, weighted splits, header rules and W3C trace
context propagation -- each over HTTP/1.1 and HTTP/2 downstream, on real sockets against real
origins."""

import re
import unittest

from h2client import H2Client
import json

from harness import HttpConn, Meridian, Origin, wait_until

NODE = "edge-routes-1"

CONFIG = """
node: {name: %s}
workers: 2
admin:
  listen: "{admin}"
client_ip:
  trusted_proxies: ["127.0.0.1/32"]
listeners:
  - name: public
    listen: "{listen}"
    routes:
      - name: to-https
        match: {host: old.example.com}
        redirect: {scheme: https, code: 308}
      - name: moved
        match: {path_prefix: /moved/}
        redirect: {host: new.example.com:8443, path: /landing}
      - name: canary
        match: {path_prefix: /app/, headers: {x-canary: "1"}}
        backend: canary
      - name: debug
        match: {path_prefix: /app/, query: {debug: "on air"}}
        backend: canary
      - name: app
        match: {path_prefix: /app/}
        backend: stable
      - name: split
        match: {path_prefix: /split/}
        backends: [{name: stable, weight: 95}, {name: canary, weight: 5}]
      - name: rules
        match: {path_prefix: /rules/}
        backend: stable
        headers:
          request:
            set: {x-env: prod, x-forwarded-proto: edge}
            remove: [x-debug, via]
          response:
            set: {strict-transport-security: max-age=63072000, x-served-by: meridian}
            remove: [server, x-internal]
      - name: traced
        backend: stable
tracing:
  propagate: w3c
backends:
  - name: stable
    regions:
      - name: r1
        location: {lat: 50.0, lon: 8.0}
        endpoints: [{address: "{stable}"}]
  - name: canary
    regions:
      - name: r1
        location: {lat: 50.0, lon: 8.0}
        endpoints: [{address: "{canary}"}]
""" % NODE

TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def values(report, name):
    name = name.lower()
    return [v for n, v in report["headers"] if n.lower() == name]


class RouteActionsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stable = Origin("stable").start()
        cls.canary = Origin("canary").start()
        try:
            cls.meridian = Meridian(CONFIG, {"stable": cls.stable.address,
                                             "canary": cls.canary.address}).__enter__()
        except BaseException:
            cls.stable.stop()
            cls.canary.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.meridian.__exit__(None, None, None)
        finally:
            cls.stable.stop()
            cls.canary.stop()

    def h1(self, target, headers=None, host=None, method="GET", body=None):
        with HttpConn(self.meridian.listen_address) as c:
            return c.request(method, target, headers, body=body, host=host)

    def h2(self, target, headers=(), authority="h2.test", method="GET"):
        with H2Client(self.meridian.listen_address) as c:
            stream_id = c.request(method, target, headers=list(headers), authority=authority)
            c.run_until(lambda: c.streams[stream_id].done)
            return c.streams[stream_id]

    # ---- redirects -------------------------------------------------------------------------

    def test_308_from_http_to_https_keeps_path_and_query(self):
        r = self.h1("/a/b%20c?x=1&y=two", host="old.example.com:8080")
        self.assertEqual(r.status, 308, r)
        # The request's port belonged to http: a scheme change drops it.
        self.assertEqual(r.header("Location"), "https://old.example.com/a/b%20c?x=1&y=two")
        s = self.h2("/p/q?z=3", authority="old.example.com")
        self.assertEqual(s.status, 308)
        self.assertEqual(s.headers["location"], "https://old.example.com/p/q?z=3")

    def test_redirect_to_another_host_and_path_default_code_301(self):
        r = self.h1("/moved/page?keep=me", host="www.example.com")
        self.assertEqual(r.status, 301, r)
        self.assertEqual(r.header("Location"), "http://new.example.com:8443/landing?keep=me")
        # A redirect is never forwarded.
        self.assertFalse(any(e["path"].startswith("/moved/") for e in self.stable.log()))

    def test_redirect_with_a_body_answers_and_the_connection_stays_sane(self):
        with HttpConn(self.meridian.listen_address) as c:
            r = c.request("POST", "/a", host="old.example.com", body=b"x" * 100)
            self.assertEqual(r.status, 308, r)
            self.assertEqual(r.header("Location"), "https://old.example.com/a")

    def test_redirect_counted_in_metrics_under_its_route(self):
        labels = {"route": "to-https", "backend": "", "region": "", "code": "308"}
        before = self.meridian.metric("meridian_http_requests_total", labels) or 0
        self.h1("/m", host="old.example.com")
        wait_until(lambda: self.meridian.metric("meridian_http_requests_total", labels) == before + 1,
                   5, message="the redirect counted")

    # ---- header and query matching ---------------------------------------------------------

    def test_header_matched_canary(self):
        for canary_header, expected in ((("X-Canary", "1"),), "canary"), ((), "stable"), \
                ((("X-Canary", "2"),), "stable"):
            r = self.h1("/app/x", list(canary_header))
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["name"], expected, canary_header)
            s = self.h2("/app/x", [(n.lower(), v) for n, v in canary_header])
            self.assertEqual(s.status, 200)
            self.assertEqual(json.loads(bytes(s.body))["name"], expected, canary_header)

    def test_query_matched_route_decodes_the_value(self):
        for target, expected in (("/app/q?debug=on+air", "canary"),
                                 ("/app/q?x=1&debug=on%20air", "canary"),
                                 ("/app/q?debug=on", "stable"),
                                 ("/app/q", "stable")):
            r = self.h1(target)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["name"], expected, target)

    # ---- weighted split --------------------------------------------------------------------

    def test_95_5_split_over_2000_clients_is_within_2_points_and_stable(self):
        clients = [f"10.{i // 250}.{i % 250}.{7 + i % 3}" for i in range(2000)]
        seen = {}
        with HttpConn(self.meridian.listen_address) as c:
            for ip in clients:
                r = c.request("GET", "/split/x", [("X-Forwarded-For", ip)])
                self.assertEqual(r.status, 200, r)
                seen[ip] = r.json()["name"]
            share = sum(1 for v in seen.values() if v == "canary") / len(clients)
            self.assertAlmostEqual(share, 0.05, delta=0.02, msg=f"canary share {share:.3f}")
            # The same client always reaches the same backend.
            for ip in clients[:300]:
                r = c.request("GET", "/split/again", [("X-Forwarded-For", ip)])
                self.assertEqual(r.json()["name"], seen[ip], ip)
        # Over HTTP/2 as well, with the same placement.
        with H2Client(self.meridian.listen_address) as h:
            for ip in clients[:100]:
                s = h.get("/split/h2", headers=[("x-forwarded-for", ip)])
                self.assertEqual(s.status, 200)
                self.assertEqual(json.loads(bytes(s.body))["name"], seen[ip], ip)
        # Metrics name the backend each request went to.
        for backend in ("stable", "canary"):
            wait_until(lambda: (self.meridian.metric(
                "meridian_http_requests_total", {"route": "split", "backend": backend}) or 0) > 0,
                5, message=f"requests of route split counted under backend {backend}")

    # ---- header rules ----------------------------------------------------------------------

    def test_request_rules_set_and_remove_after_meridians_own(self):
        r = self.h1("/rules/x", [("X-Debug", "1"), ("X-Env", "dev"), ("X-Env", "qa"),
                                 ("Via", "1.0 client-proxy"), ("X-Kept", "yes")])
        self.assertEqual(r.status, 200, r)
        rep = r.json()
        self.assertEqual(values(rep, "x-env"), ["prod"])
        self.assertEqual(values(rep, "x-debug"), [])
        # meridian's own fields are subject to the rules too: Via removed, X-Forwarded-Proto set.
        self.assertEqual(values(rep, "via"), [])
        self.assertEqual(values(rep, "x-forwarded-proto"), ["edge"])
        self.assertEqual(values(rep, "x-kept"), ["yes"])
        s = self.h2("/rules/h2", [("x-debug", "1"), ("x-env", "dev")])
        self.assertEqual(s.status, 200)
        rep = json.loads(bytes(s.body))
        self.assertEqual(values(rep, "x-env"), ["prod"])
        self.assertEqual(values(rep, "x-debug"), [])

    def test_response_rules_set_and_remove(self):
        target = ("/rules/resp?header=Server:origin/1.0&header=X-Internal:secret"
                  "&header=Strict-Transport-Security:max-age%3D1&header=X-Other:kept")
        r = self.h1(target)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header_all("Server"), [])
        self.assertEqual(r.header_all("X-Internal"), [])
        self.assertEqual(r.header_all("Strict-Transport-Security"), ["max-age=63072000"])
        self.assertEqual(r.header_all("X-Served-By"), ["meridian"])
        self.assertEqual(r.header_all("X-Other"), ["kept"])
        self.assertEqual(r.header_all("Via"), [f"1.1 {NODE}"])
        s = self.h2(target)
        self.assertEqual(s.status, 200)
        self.assertNotIn("server", s.headers)
        self.assertNotIn("x-internal", s.headers)
        self.assertEqual(s.headers["strict-transport-security"], "max-age=63072000")
        self.assertEqual(s.headers["x-served-by"], "meridian")

    def test_rules_of_one_route_leave_other_routes_alone(self):
        r = self.h1("/app/x?header=Server:origin/1.0", [("X-Debug", "1")])
        self.assertEqual(r.header_all("Server"), ["origin/1.0"])
        self.assertEqual(values(r.json(), "x-debug"), ["1"])

    # ---- tracing ---------------------------------------------------------------------------

    def test_valid_traceparent_is_continued_with_a_new_span(self):
        incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        r = self.h1("/trace/kept", [("traceparent", incoming), ("tracestate", "congo=t61rcWkgMzE")])
        rep = r.json()
        [sent] = values(rep, "traceparent")
        m = TRACEPARENT.match(sent)
        self.assertIsNotNone(m, sent)
        self.assertEqual(m.group(1), "4bf92f3577b34da6a3ce929d0e0e4736")
        self.assertNotEqual(m.group(2), "00f067aa0ba902b7")
        self.assertEqual(m.group(3), "01")
        self.assertEqual(values(rep, "tracestate"), ["congo=t61rcWkgMzE"])
        entry = self.log_entry("/trace/kept")
        self.assertEqual(entry["trace_id"], m.group(1))
        self.assertEqual(entry["span_id"], m.group(2))

    def test_missing_or_invalid_traceparent_starts_a_trace(self):
        for path, headers in (("/trace/none", []),
                              ("/trace/upper", [("traceparent",
                                                 "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
                                                ("tracestate", "congo=t61rcWkgMzE")]),
                              ("/trace/zero", [("traceparent",
                                                "00-00000000000000000000000000000000-00f067aa0ba902b7-01")])):
            rep = self.h1(path, headers).json()
            [sent] = values(rep, "traceparent")
            m = TRACEPARENT.match(sent)
            self.assertIsNotNone(m, sent)
            self.assertNotEqual(m.group(1), "4bf92f3577b34da6a3ce929d0e0e4736")
            self.assertNotEqual(m.group(1), "0" * 32)
            self.assertEqual(m.group(3), "01", "a trace meridian starts is sampled")
            # The tracestate of a trace that was not continued is dropped.
            self.assertEqual(values(rep, "tracestate"), [], path)
            entry = self.log_entry(path)
            self.assertEqual(entry["trace_id"], m.group(1))

    def test_traceparent_over_http2(self):
        incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
        s = self.h2("/trace/h2", [("traceparent", incoming)])
        self.assertEqual(s.status, 200)
        [sent] = values(json.loads(bytes(s.body)), "traceparent")
        m = TRACEPARENT.match(sent)
        self.assertEqual(m.group(1), "0af7651916cd43dd8448eb211c80319c")
        self.assertEqual(m.group(3), "00")  # not sampled stays not sampled

    def log_entry(self, path):
        found = []

        def seen():
            found[:] = [e for e in self.meridian.access_log() if e.get("path") == path]
            return found
        wait_until(seen, 5, message=f"access log line for {path}")
        return found[-1]


if __name__ == "__main__":
    unittest.main()
