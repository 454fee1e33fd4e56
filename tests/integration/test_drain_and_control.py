"""A node behind anycast (docs/admin-api.md, docs/operations.md): the two-phase drain
(drain_grace: /ready 503 while new connections are still accepted and served, then refused
while requests in flight finish; a second SIGTERM skips the grace), readiness that does not
follow the origins (/ready stays 200, /ready?backend= answers for one backend), maintenance
mode, and runtime overrides of regions and endpoints (POST /state: drain, disabled, active)
that steering and balancing obey, that survive reloads and show in /status and /metrics."""

import signal
import time
import unittest

from harness import (HttpConn, Meridian, Origin, ProtocolError, free_port, http_request,
                     wait_until)

CONFIG = """
node: {name: edge-control}
workers: 2
drain_timeout: 10s
drain_grace: {grace}
debug_headers: true
admin:
  listen: "{admin}"
listeners:
  - name: public
    listen: "{listen}"
    routes:
      - {name: down, match: {path_prefix: /down/}, backend: down}
      - {name: all, backend: web, retries: 2}
backends:
  - name: web
    steering: {policy: failover}
    regions:
      - name: primary
        endpoints: [{address: "{p1}"}, {address: "{p2}"}]
      - name: secondary
        endpoints: [{address: "{s1}"}]
  - name: down
    health_check: {path: /health, interval: 100ms, timeout: 200ms, unhealthy_threshold: 1}
    regions:
      - {name: gone, location: {lat: 50, lon: 8},
         endpoints: [{address: "127.0.0.1:{dead_port}"}]}
"""

BOUND = 5.0


def fresh_request(address, path, timeout=2.0):
    """A request on a new connection: the Response, or None when the connection is refused
    or cut before an answer."""
    try:
        return http_request(address, "GET", path, timeout=timeout)
    except (OSError, ProtocolError):
        return None


class ControlTest(unittest.TestCase):
    """One meridian with three origins: primary (p1, p2) and secondary (s1), failover order."""

    @classmethod
    def setUpClass(cls):
        cls.origins = {n: Origin(n).start() for n in ("p1", "p2", "s1")}
        cls.subs = {n: o.address for n, o in cls.origins.items()}
        cls.subs.update(grace="0s", dead_port=free_port())
        cls.meridian = Meridian(CONFIG, cls.subs).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.meridian.__exit__(None, None, None)
        for o in cls.origins.values():
            o.stop()

    def tearDown(self):
        m = self.meridian
        for region in ("primary", "secondary"):
            m.admin("POST", f"/state?backend=web&region={region}&state=active")
        for name in ("p1", "p2"):
            m.admin("POST", f"/state?backend=web&region=primary&endpoint={self.subs[name]}"
                            "&state=active")
        m.admin("POST", "/maintenance?state=off")

    def served_by(self, n=12, path="/x"):
        names = set()
        for _ in range(n):
            r = self.meridian.get(path)
            self.assertEqual(r.status, 200, r.text())
            names.add(r.header("X-Origin-Name"))
        return names

    def set_state(self, state, region, endpoint=None):
        target = f"/state?backend=web&region={region}&state={state}"
        if endpoint:
            target += f"&endpoint={endpoint}"
        return self.meridian.admin("POST", target)

    def test_ready_does_not_follow_the_origins(self):
        m = self.meridian
        wait_until(lambda: m.admin("GET", "/ready?backend=down").status == 503, BOUND,
                   message="the dead backend never reported down")
        r = m.admin("GET", "/ready")
        self.assertEqual((r.status, r.text()), (200, "ready\n"))
        self.assertEqual(m.admin("GET", "/ready?backend=web").status, 200)
        r = m.admin("GET", "/ready?backend=nope")
        self.assertEqual(r.status, 404)
        self.assertIn("nope", r.text())
        self.assertEqual(m.get("/down/x").status, 503)  # the dead backend's route
        self.assertEqual(m.get("/x").status, 200)  # and the others keep serving

    def test_maintenance_turns_ready_off_while_serving(self):
        m = self.meridian
        r = m.admin("POST", "/maintenance?state=on")
        self.assertEqual(r.status, 200, r.text())
        r = m.admin("GET", "/ready")
        self.assertEqual((r.status, r.text()), (503, "not ready: maintenance\n"))
        self.assertEqual(m.get("/x").status, 200)  # traffic is still served
        status = m.status()
        self.assertTrue(status["maintenance"])
        self.assertFalse(status["ready"])
        # Survives a reload.
        self.assertEqual(m.reload().status, 200)
        self.assertEqual(m.admin("GET", "/ready").status, 503)
        self.assertEqual(m.admin("POST", "/maintenance?state=off").status, 200)
        self.assertEqual(m.admin("GET", "/ready").status, 200)
        self.assertIn("maintenance on", m.stderr_text())
        # Refusals.
        self.assertEqual(m.admin("POST", "/maintenance?state=maybe").status, 400)
        self.assertEqual(m.admin("POST", "/maintenance").status, 400)
        self.assertEqual(m.admin("GET", "/maintenance").status, 405)

    def test_region_drain_finishes_in_flight_and_takes_nothing_new(self):
        m = self.meridian
        self.assertEqual(self.served_by(), {"p1", "p2"})
        slow = HttpConn(m.listen_address, timeout=10)
        try:
            slow.send_request("GET", "/slow?delay_ms=1500")
            wait_until(lambda: sum(self.origins[n].requests("/slow") for n in ("p1", "p2")) == 1,
                       BOUND, message="the slow request to reach the primary region")
            r = self.set_state("drain", "primary")
            self.assertEqual(r.status, 200, r.text())
            self.assertEqual(r.json(), {"backend": "web", "region": "primary", "state": "drain"})
            # New requests go to the other region while it is eligible...
            self.assertEqual(self.served_by(), {"s1"})
            # ...and the request in flight in the draining region finishes.
            r = slow.read_response()
            self.assertEqual(r.status, 200)
            self.assertIn(r.header("X-Origin-Name"), {"p1", "p2"})
        finally:
            slow.close()
        # With nothing else eligible, the draining region takes requests again.
        self.assertEqual(self.set_state("disabled", "secondary").status, 200)
        self.assertEqual(self.served_by(), {"p1", "p2"})
        status = m.status()
        regions = {r["name"]: r for r in status["backends"][0]["regions"]}
        self.assertEqual(regions["primary"]["state"], "drain")
        self.assertEqual(regions["secondary"]["state"], "disabled")
        self.assertEqual(regions["secondary"]["endpoints"][0]["state_in_force"], "disabled")
        self.assertIn("runtime state (POST /state): backend web region primary: active -> drain",
                      m.stderr_text())

    def test_disabled_is_never_chosen(self):
        m = self.meridian
        self.assertEqual(self.set_state("disabled", "secondary").status, 200)
        self.assertEqual(self.set_state("disabled", "primary").status, 200)
        before = {n: o.requests("/never") for n, o in self.origins.items()}
        r = m.get("/never")
        self.assertEqual(r.status, 503)
        self.assertEqual(r.header("Retry-After"), "1")
        self.assertEqual({n: o.requests("/never") for n, o in self.origins.items()}, before)
        self.assertEqual(m.admin("GET", "/ready?backend=web").status, 503)
        self.assertEqual(m.admin("GET", "/ready").status, 200)

    def test_endpoint_override_survives_a_reload(self):
        m = self.meridian
        p1 = self.subs["p1"]
        r = self.set_state("disabled", "primary", endpoint=p1)
        self.assertEqual(r.status, 200, r.text())
        self.assertEqual(self.served_by(), {"p2"})
        self.assertEqual(m.metric("meridian_endpoint_admin_state",
                                  {"endpoint": p1, "state": "disabled"}), 1)
        self.assertEqual(m.metric("meridian_endpoint_admin_state",
                                  {"endpoint": p1, "state": "active"}), 0)
        self.assertEqual(m.reload().status, 200)
        self.assertEqual(self.served_by(), {"p2"})
        endpoints = {e["address"]: e for e in m.status()["backends"][0]["regions"][0]["endpoints"]}
        self.assertEqual(endpoints[p1]["state"], "disabled")
        self.assertEqual(endpoints[self.subs["p2"]]["state"], "active")
        # Endpoint drain: the other endpoint of the region takes the new requests.
        self.assertEqual(self.set_state("active", "primary", endpoint=p1).status, 200)
        self.assertEqual(self.set_state("drain", "primary", endpoint=self.subs["p2"]).status,
                         200)
        self.assertEqual(self.served_by(), {"p1"})

    def test_refusals_name_what_is_wrong(self):
        m = self.meridian
        cases = [
            ("/state?backend=nope&region=primary&state=drain", 404, "nope"),
            ("/state?backend=web&region=nope&state=drain", 404, "nope"),
            ("/state?backend=web&region=primary&endpoint=10.9.9.9%3A1&state=drain", 404,
             "10.9.9.9:1"),
            ("/state?backend=web&region=primary&state=sleep", 400, "sleep"),
            ("/state?backend=web&state=drain", 400, "region"),
        ]
        for target, status, text in cases:
            r = m.admin("POST", target)
            self.assertEqual(r.status, status, target)
            self.assertIn(text, r.text(), target)
        self.assertEqual(m.admin("GET", "/state?backend=web&region=primary&state=drain").status,
                         405)
        self.assertEqual(self.served_by(), {"p1", "p2"})  # nothing changed


GRACE_CONFIG = """
node: {name: edge-grace}
workers: 2
drain_timeout: 10s
drain_grace: {grace}
admin:
  listen: "{admin}"
listeners:
  - name: public
    listen: "{listen}"
    routes: [{name: all, backend: b}]
backends:
  - name: b
    regions: [{name: r1, location: {lat: 50, lon: 8}, endpoints: [{address: "{o}"}]}]
"""


class DrainGraceTest(unittest.TestCase):
    def start(self, origin, grace):
        return Meridian(GRACE_CONFIG, {"o": origin.address, "grace": grace})

    def test_grace_serves_new_connections_then_refuses_them_and_finishes_in_flight(self):
        with Origin("o") as o, self.start(o, "2s") as m:
            m.send_signal(signal.SIGTERM)
            started = time.monotonic()
            wait_until(lambda: m.admin("GET", "/ready").status == 503, BOUND,
                       message="/ready to answer 503 at once")
            self.assertEqual(m.status()["drain_phase"], "grace")
            # During the grace a new connection is accepted and served normally.
            r = fresh_request(m.listen_address, "/during-grace")
            self.assertIsNotNone(r, "a new connection was refused during drain_grace")
            self.assertEqual(r.status, 200)
            self.assertIsNone(r.header("Connection"))
            # A slow request begun in the grace is still in flight when it ends.
            slow = HttpConn(m.listen_address, timeout=10)
            try:
                slow.send_request("GET", "/slow?delay_ms=3000")
                wait_until(lambda: o.requests("/slow") == 1, BOUND)
                self.assertLess(time.monotonic() - started, 2.0, "the machine is too slow")
                # After the grace new connections are refused...
                probes = iter(range(10000))
                wait_until(lambda: fresh_request(m.listen_address,
                                                 f"/after/{next(probes)}", 0.5) is None,
                           BOUND, message="new connections still served after drain_grace")
                self.assertGreaterEqual(time.monotonic() - started, 2.0)
                # ...and the request in flight finishes.
                r = slow.read_response()
                self.assertEqual(r.status, 200)
            finally:
                slow.close()
            self.assertEqual(m.wait(15), 0)
            self.assertIn("drain_grace passed: draining", m.stderr_text())

    def test_a_second_signal_skips_the_grace(self):
        with Origin("o") as o, self.start(o, "60s") as m:
            m.send_signal(signal.SIGTERM)
            wait_until(lambda: m.admin("GET", "/ready").status == 503, BOUND)
            self.assertEqual(m.get("/x").status, 200)
            started = time.monotonic()
            m.send_signal(signal.SIGTERM)
            self.assertEqual(m.wait(15), 0)
            self.assertLess(time.monotonic() - started, 15)
            self.assertIn("during drain_grace: draining now", m.stderr_text())


if __name__ == "__main__":
    unittest.main()
