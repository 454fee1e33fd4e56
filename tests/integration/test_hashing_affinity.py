"""Keeping a client, or a key, on one endpoint (docs/configuration.md, consistent hashing and
affinity): maglev and ring_hash over ten real origins, with one of them disabled at run time
and removed by a reload; and an affinity cookie held across 100 requests, moved within the
region when its endpoint is disabled, and across regions only when its region cannot serve.
HTTP/1.1 and HTTP/2 downstream."""

import json
import unittest

from h2client import H2Client
from harness import HttpConn, Meridian, Origin

N = 10
# 3,000 keys: an endpoint's share is then measured within 0.55 points (binomial), so the
# 3-point bound below is about the hashing, not the sample (1,000 keys put it at 1 point:
# a 3-sigma miss every few hundred runs).
KEYS = 3000


def endpoints(names):
    return ", ".join('{address: "{%s}"}' % n for n in names)


def config(hashed_names):
    return """
node: {name: edge-hash-1}
workers: 2
admin:
  listen: "{admin}"
client_ip:
  trusted_proxies: ["127.0.0.1/32"]
listeners:
  - name: public
    listen: "{listen}"
    routes:
      - {name: maglev, match: {path_prefix: /m/}, backend: maglev}
      - {name: ring, match: {path_prefix: /r/}, backend: ring}
      - {name: sticky, match: {path_prefix: /s/}, backend: sticky}
      - name: versions
        match: {path_prefix: /v/}
        backends: [{name: v1, weight: 50}, {name: v2, weight: 50}]
backends:
  - name: maglev
    balance: maglev
    hash_key: header:x-user
    regions:
      - name: r1
        location: {lat: 50.0, lon: 8.0}
        endpoints: [%(hashed)s]
  - name: ring
    balance: ring_hash
    hash_key: client_ip
    regions:
      - name: r1
        location: {lat: 50.0, lon: 8.0}
        endpoints: [%(hashed)s]
  - name: sticky
    affinity: {cookie: mrd, ttl: 10m}
    steering: {policy: failover}
    regions:
      - name: near
        endpoints: [%(near)s]
      - name: far
        endpoints: [%(far)s]
  - name: v1
    affinity: {cookie: ver}
    regions: [{name: r1, location: {lat: 50.0, lon: 8.0}, endpoints: [{address: "{o5}"}]}]
  - name: v2
    affinity: {cookie: ver}
    regions: [{name: r1, location: {lat: 50.0, lon: 8.0}, endpoints: [{address: "{o6}"}]}]
""" % {"hashed": endpoints(hashed_names), "near": endpoints(["o0", "o1", "o2"]),
       "far": endpoints(["o9"])}


ALL = [f"o{i}" for i in range(N)]


class HashingAffinityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.origins = {name: Origin(name).start() for name in ALL}
        cls.subs = {name: o.address for name, o in cls.origins.items()}
        try:
            cls.meridian = Meridian(config(ALL), cls.subs).__enter__()
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

    def set_state(self, backend, region, name, state):
        r = self.meridian.admin(
            "POST", f"/state?backend={backend}&region={region}&endpoint={self.subs[name]}"
                    f"&state={state}")
        self.assertEqual(r.status, 200, r.text)

    def owners(self, prefix, header_of):
        """Which origin answers each of KEYS keys (one keep-alive connection)."""
        out = []
        with HttpConn(self.meridian.listen_address) as c:
            for k in range(KEYS):
                r = c.request("GET", f"{prefix}{k}", [header_of(k)])
                self.assertEqual(r.status, 200, r)
                out.append(r.json()["name"])
        return out

    @staticmethod
    def moved(a, b):
        return sum(1 for x, y in zip(a, b) if x != y) / len(a)

    def check_one_of_ten_leaving(self, backend, prefix, header_of, bound=0.03):
        before = self.owners(prefix, header_of)
        self.assertEqual(len(set(before)), N, "every endpoint owns keys")
        # The same keys again: nothing moves.
        self.assertEqual(self.owners(prefix, header_of), before)
        # One endpoint of ten disabled at run time: about a tenth of the keys move, all of
        # them its own.
        gone = "o4"
        self.set_state(backend, "r1", gone, "disabled")
        try:
            during = self.owners(prefix, header_of)
        finally:
            self.set_state(backend, "r1", gone, "active")
        self.assertNotIn(gone, during)
        others = [(k, b, d) for k, (b, d) in enumerate(zip(before, during)) if b != gone and b != d]
        self.assertEqual(others, [], "keys of other endpoints moved (key, before, during)")
        share = before.count(gone) / len(before)
        self.assertAlmostEqual(self.moved(before, during), share, delta=1e-9)
        self.assertAlmostEqual(share, 0.10, delta=bound, msg=f"{gone} owned {share:.3f} of the keys")
        # Back: every key returns.
        self.assertEqual(self.owners(prefix, header_of), before)
        return before

    def test_maglev_one_of_ten_disabled_moves_a_tenth(self):
        self.check_one_of_ten_leaving("maglev", "/m/", lambda k: ("X-User", f"user-{k}"))

    def test_ring_hash_by_client_address_one_of_ten_disabled_moves_a_tenth(self):
        # A ring of 160 points per endpoint places each endpoint's share within about 0.8
        # points of 10% (1/sqrt(160) of it), on top of the sample's 0.55: 4 points is over 4
        # standard deviations, where 3 would fail about once in 500 runs.
        self.check_one_of_ten_leaving(
            "ring", "/r/", lambda k: ("X-Forwarded-For", f"10.1.{k // 200}.{k % 200 + 1}"),
            bound=0.04)

    def test_reload_without_one_endpoint_moves_a_tenth(self):
        header_of = lambda k: ("X-User", f"user-{k}")  # noqa: E731
        before = self.owners("/m/", header_of)
        try:
            self.meridian.write_config(config(ALL[:7] + ALL[8:]), self.subs)
            self.assertEqual(self.meridian.reload().status, 200)
            after = self.owners("/m/", header_of)
        finally:
            self.meridian.write_config(config(ALL), self.subs)
            self.assertEqual(self.meridian.reload().status, 200)
        self.assertNotIn("o7", after)
        self.assertAlmostEqual(self.moved(before, after), 0.10, delta=0.03)
        self.assertEqual(self.owners("/m/", header_of), before)

    def test_maglev_over_http2_agrees_with_http1(self):
        h1 = self.owners("/m/", lambda k: ("X-User", f"user-{k}"))[:100]
        with H2Client(self.meridian.listen_address) as c:
            for k in range(100):
                s = c.get(f"/m/{k}", headers=[("x-user", f"user-{k}")])
                self.assertEqual(s.status, 200)
                self.assertEqual(json.loads(bytes(s.body))["name"], h1[k])

    # ---- affinity --------------------------------------------------------------------------

    def sticky_get(self, cookie=None, conn=None):
        headers = [("Cookie", f"mrd={cookie}; other=1")] if cookie else []
        r = conn.request("GET", "/s/x", headers)
        self.assertEqual(r.status, 200, r)
        return r

    @staticmethod
    def cookie_of(r):
        values = [v for v in r.header_all("Set-Cookie") if v.startswith("mrd=")]
        if not values:
            return None
        value = values[0]
        attributes = [a.strip() for a in value.split(";")]
        assert "Path=/" in attributes and "Max-Age=600" in attributes and "HttpOnly" in attributes, value
        return attributes[0][len("mrd="):]

    def test_affinity_holds_over_100_requests_and_moves_when_disabled(self):
        with HttpConn(self.meridian.listen_address) as c:
            first = self.sticky_get(conn=c)
            cookie = self.cookie_of(first)
            self.assertRegex(cookie or "", r"^[0-9a-f]{16}$")
            self.assertNotIn(self.subs[first.json()["name"]].split(":")[1], cookie,
                             "the cookie must not carry the address")
            home = first.json()["name"]
            for _ in range(100):
                r = self.sticky_get(cookie, conn=c)
                self.assertEqual(r.json()["name"], home)
                # Sent again, the same: its Max-Age slides with the client's activity.
                self.assertEqual(self.cookie_of(r), cookie)
            # Without the cookie least_conn spreads the requests over the region.
            spread = {self.sticky_get(conn=c).json()["name"] for _ in range(30)}
            self.assertGreater(len(spread), 1)
            # Its endpoint disabled: another endpoint of the same region, and a new cookie.
            self.set_state("sticky", "near", home, "disabled")
            try:
                r = self.sticky_get(cookie, conn=c)
                moved_to = r.json()["name"]
                self.assertIn(moved_to, {"o0", "o1", "o2"} - {home})
                new_cookie = self.cookie_of(r)
                self.assertIsNotNone(new_cookie)
                self.assertNotEqual(new_cookie, cookie)
                for _ in range(20):
                    self.assertEqual(self.sticky_get(new_cookie, conn=c).json()["name"], moved_to)
            finally:
                self.set_state("sticky", "near", home, "active")
            # The old cookie's endpoint is back: the old cookie holds again.
            self.assertEqual(self.sticky_get(cookie, conn=c).json()["name"], home)

    def test_affinity_moves_to_another_region_only_when_its_own_cannot_serve(self):
        with HttpConn(self.meridian.listen_address) as c:
            far_cookie = None
            # A cookie for the far region's endpoint: get one while the near region is off.
            r = self.meridian.admin("POST", "/state?backend=sticky&region=near&state=disabled")
            self.assertEqual(r.status, 200, r.text)
            try:
                r = self.sticky_get(conn=c)
                self.assertEqual(r.json()["name"], "o9")
                far_cookie = self.cookie_of(r)
            finally:
                self.meridian.admin("POST", "/state?backend=sticky&region=near&state=active")
            # The near region is back and first by failover order, but the cookie names the
            # far region's endpoint, which can serve: the client stays there.
            for _ in range(10):
                self.assertEqual(self.sticky_get(far_cookie, conn=c).json()["name"], "o9")
            # A garbage or unknown cookie is no cookie: steering decides and a cookie is set.
            for bad in ("zz", "0123456789abcdef"):
                r = self.sticky_get(bad, conn=c)
                self.assertIn(r.json()["name"], {"o0", "o1", "o2"})
                self.assertIsNotNone(self.cookie_of(r))

    def test_a_split_keeps_the_client_its_affinity_cookie_names(self):
        # A weighted split is by client address, unless the request carries the affinity
        # cookie of one of the split's backends: then that backend keeps the client (a
        # client whose address changed stays on the version it was on).
        with HttpConn(self.meridian.listen_address) as c:
            placed = {}
            for i in range(1, 200):
                ip = f"10.9.0.{i}"
                r = c.request("GET", "/v/x", [("X-Forwarded-For", ip)])
                placed.setdefault(r.json()["name"], (ip, r))
                if len(placed) == 2:
                    break
            self.assertEqual(set(placed), {"o5", "o6"})
            _, on_v2 = placed["o6"]
            cookie = [v for v in on_v2.header_all("Set-Cookie") if v.startswith("ver=")][0]
            cookie = cookie.split(";")[0]
            v1_ip, _ = placed["o5"]
            for _ in range(10):
                r = c.request("GET", "/v/x", [("X-Forwarded-For", v1_ip), ("Cookie", cookie)])
                self.assertEqual(r.json()["name"], "o6")
            # Without the cookie that address is v1's again.
            r = c.request("GET", "/v/x", [("X-Forwarded-For", v1_ip)])
            self.assertEqual(r.json()["name"], "o5")

    def test_affinity_over_http2(self):
        with H2Client(self.meridian.listen_address) as c:
            s = c.get("/s/h2")
            self.assertEqual(s.status, 200)
            cookie = s.headers["set-cookie"].split(";")[0].split("=", 1)[1]
            home = json.loads(bytes(s.body))["name"]
            for _ in range(20):
                s = c.get("/s/h2", headers=[("cookie", f"mrd={cookie}")])
                self.assertEqual(json.loads(bytes(s.body))["name"], home)
                self.assertEqual(s.headers["set-cookie"].split(";")[0], f"mrd={cookie}")


if __name__ == "__main__":
    unittest.main()
