"""PROXY protocol (a listener's `proxy_protocol`): v1 and v2 headers set the client address that
X-Forwarded-For, GeoIP steering, rate limits and the access log use; a malformed or missing
header (where one is required) closes the connection without an answer and nothing reaches the
origin; `any` also takes connections without a header. HAProxy (Debian's package) with
`send-proxy` and `send-proxy-v2` in front of meridian is the real-world peer: a client bound to
127.0.2.1 (Frankfurt in the loopback GeoIP database) is steered to Europe through it although
meridian's peer is HAProxy at 127.0.0.1."""

import os
import shutil
import socket
import struct
import subprocess
import tempfile
import unittest

from harness import (FRANKFURT, LOOPBACK_DB, NEW_YORK, HttpConn, Meridian, Origin,
                     free_port, parse_responses, split_address, wait_until)


CONFIG = """
node: {name: edge-pp}
workers: 2
debug_headers: true
admin:
  listen: "{admin}"
geoip:
  database: "{geoip}"
access_log: {path: "{dir}/access.log", format: json}
listeners:
  - name: v1
    listen: "{v1}"
    proxy_protocol: v1
    routes: &routes
      - {name: limited, match: {path_prefix: /limited}, backend: world,
         rate_limit: {rate: 1/h, burst: 1}}
      - {name: all, backend: world}
  - name: v2
    listen: "{v2}"
    proxy_protocol: v2
    routes: *routes
  - name: any
    listen: "{any}"
    proxy_protocol: any
    routes: *routes
backends:
  - name: world
    steering: {policy: geo}
    regions:
      - {name: us-east, location: {lat: 38.90, lon: -77.04}, endpoints: [{address: "{us}"}]}
      - {name: eu-west, location: {lat: 53.35, lon: -6.26}, endpoints: [{address: "{eu}"}]}
"""

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def v1_header(source, port=40000):
    return f"PROXY TCP4 {source} 127.0.0.1 {port} 443\r\n".encode()


def v2_header(source, port=40000, command=0x21):
    addresses = socket.inet_aton(source) + socket.inet_aton("127.0.0.1") + struct.pack(
        "!HH", port, 443)
    tlv = b"\x04\x00\x02ok"  # PP2_TYPE_NOOP: skipped
    body = addresses + tlv
    return V2_SIGNATURE + bytes([command, 0x11]) + struct.pack("!H", len(body)) + body


def request(path="/"):
    return f"GET {path} HTTP/1.1\r\nHost: pp.test\r\nConnection: close\r\n\r\n".encode()


def exchange(address, data, timeout=5.0):
    """Sends `data`, returns everything until the server closes."""
    host, port = split_address(address)
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
    return out


def forwarded_for(response):
    return dict((n.lower(), v) for n, v in response.json()["headers"]).get("x-forwarded-for")


class ProxyProtocolTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.us = Origin("us").start()
        cls.eu = Origin("eu").start()
        cls.meridian = Meridian(CONFIG, {"us": cls.us.address, "eu": cls.eu.address,
                                         "geoip": LOOPBACK_DB, "v1": f"127.0.0.1:{free_port()}",
                                         "v2": f"127.0.0.1:{free_port()}",
                                         "any": f"127.0.0.1:{free_port()}"})
        cls.meridian.start()
        cls.addr = {name: cls.meridian.subs[name] for name in ("v1", "v2", "any")}

    @classmethod
    def tearDownClass(cls):
        cls.meridian.stop()
        cls.us.stop()
        cls.eu.stop()

    def one(self, listener, data):
        responses, rest = parse_responses(exchange(self.addr[listener], data))
        self.assertEqual((len(responses), rest), (1, b""), responses)
        return responses[0]

    def test_v1_source_is_the_client(self):
        r = self.one("v1", v1_header(FRANKFURT) + request("/v1"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(forwarded_for(r), FRANKFURT)
        self.assertEqual(r.header("x-meridian-region"), "eu-west")  # GeoIP of the source
        r = self.one("v1", v1_header(NEW_YORK) + request("/v1"))
        self.assertEqual(r.header("x-meridian-region"), "us-east")

    def test_v2_source_is_the_client(self):
        r = self.one("v2", v2_header(FRANKFURT) + request("/v2"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(forwarded_for(r), FRANKFURT)
        self.assertEqual(r.header("x-meridian-region"), "eu-west")

    def test_v2_local_command_keeps_the_peer(self):
        # A balancer's own health check: no client address, the peer stands.
        r = self.one("v2", v2_header(FRANKFURT, command=0x20) + request("/local"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(forwarded_for(r), "127.0.0.1")

    def test_header_split_across_reads(self):
        host, port = split_address(self.addr["v1"])
        with socket.create_connection((host, port), timeout=5) as s:
            header = v1_header(FRANKFURT)
            s.sendall(header[:9])
            # Nothing is answered to half a header; the rest completes it.
            s.settimeout(0.3)
            with self.assertRaises(socket.timeout):
                s.recv(1)
            s.settimeout(5)
            s.sendall(header[9:] + request("/split"))
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        responses, _ = parse_responses(data)
        self.assertEqual(forwarded_for(responses[0]), FRANKFURT)

    def test_rate_limit_keys_on_the_source(self):
        self.assertEqual(self.one("v1", v1_header("127.0.3.9") + request("/limited")).status, 200)
        self.assertEqual(self.one("v1", v1_header("127.0.3.9") + request("/limited")).status, 429)
        # Same peer (127.0.0.1), another source: its own bucket.
        self.assertEqual(self.one("v2", v2_header("127.0.3.10") + request("/limited")).status, 200)

    def test_source_is_in_the_access_log(self):
        self.one("v1", v1_header("127.0.4.4") + request("/logged"))
        path = os.path.join(self.meridian.dir, "access.log")
        wait_until(lambda: "127.0.4.4" in open(path).read(), 5,
                   message="the PROXY source in the access log")

    def test_bad_or_missing_headers_close_without_an_answer(self):
        before = self.us.requests() + self.eu.requests()
        cases = {
            "v1": [request("/missing"),                                   # no header
                   b"PROXY TCP4 127.0.2.1 127.0.0.1 1 2\n" + request(),   # LF only
                   b"PROXY TCP4 127.0.2.999 127.0.0.1 1 2\r\n" + request(),
                   b"PROXY TCP4 127.0.2.1 127.0.0.1 99999 2\r\n" + request(),
                   v2_header(FRANKFURT) + request()],                    # v2 on a v1 listener
            "v2": [request("/missing"),
                   v1_header(FRANKFURT) + request(),
                   V2_SIGNATURE + b"\x31\x11\x00\x0c" + bytes(12) + request(),  # version 3
                   V2_SIGNATURE + b"\x21\x12\x00\x0c" + bytes(12) + request()],  # datagram
            "any": [b"PROXY TCP4 nonsense\r\n" + request()],
        }
        for listener, payloads in cases.items():
            for data in payloads:
                with self.subTest(listener=listener, data=data[:40]):
                    self.assertEqual(exchange(self.addr[listener], data), b"")
        self.assertEqual(self.us.requests() + self.eu.requests(), before,
                         "nothing reached an origin")
        # The listeners still serve well-formed connections.
        self.assertEqual(self.one("v1", v1_header(NEW_YORK) + request()).status, 200)

    def test_any_accepts_connections_without_a_header(self):
        r = self.one("any", request("/plain"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(forwarded_for(r), "127.0.0.1")
        r = self.one("any", v2_header(FRANKFURT) + request("/with"))
        self.assertEqual(forwarded_for(r), FRANKFURT)
        r = self.one("any", v1_header(NEW_YORK) + request("/with"))
        self.assertEqual(forwarded_for(r), NEW_YORK)

    def test_keep_alive_after_the_header(self):
        host, port = split_address(self.addr["v2"])
        with socket.create_connection((host, port), timeout=5) as s:
            s.sendall(v2_header(FRANKFURT))
            for i in range(3):
                s.sendall(f"GET /ka{i} HTTP/1.1\r\nHost: pp.test\r\n\r\n".encode())
            s.sendall(b"GET /last HTTP/1.1\r\nHost: pp.test\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        responses, _ = parse_responses(data)
        self.assertEqual([r.status for r in responses], [200] * 4)
        self.assertTrue(all(forwarded_for(r) == FRANKFURT for r in responses))


HAPROXY_CONFIG = """
global
  maxconn 100
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend v1
  bind 127.0.0.1:{front_v1}
  default_backend to_v1
frontend v2
  bind 127.0.0.1:{front_v2}
  default_backend to_v2
backend to_v1
  server meridian {v1} send-proxy
backend to_v2
  server meridian {v2} send-proxy-v2
"""


@unittest.skipUnless(shutil.which("haproxy"), "haproxy is not installed")
class HAProxyInFrontTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        ProxyProtocolTest.setUpClass.__func__(cls)
        cls.front = {"v1": free_port(), "v2": free_port()}
        cls.tmp = tempfile.mkdtemp(prefix="meridian-haproxy-")
        path = os.path.join(cls.tmp, "haproxy.cfg")
        with open(path, "w") as f:
            f.write(HAPROXY_CONFIG.format(front_v1=cls.front["v1"], front_v2=cls.front["v2"],
                                          v1=cls.addr["v1"], v2=cls.addr["v2"]))
        cls.haproxy = subprocess.Popen(["haproxy", "-db", "-f", path],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def listening():
            for port in cls.front.values():
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        wait_until(listening, 10, message="haproxy listening")

    @classmethod
    def tearDownClass(cls):
        cls.haproxy.terminate()
        cls.haproxy.wait(10)
        shutil.rmtree(cls.tmp, ignore_errors=True)
        ProxyProtocolTest.tearDownClass.__func__(cls)

    def through_haproxy(self, version, source, path):
        with HttpConn("127.0.0.1", self.front[version], source_address=(source, 0)) as c:
            return c.request("GET", path, [("Connection", "close")])

    def test_send_proxy_v1_and_v2_set_the_client(self):
        for version in ("v1", "v2"):
            with self.subTest(version=version):
                r = self.through_haproxy(version, FRANKFURT, f"/haproxy-{version}")
                self.assertEqual(r.status, 200, r)
                self.assertEqual(forwarded_for(r), FRANKFURT)
                self.assertEqual(r.header("x-meridian-region"), "eu-west")
                r = self.through_haproxy(version, NEW_YORK, f"/haproxy-{version}")
                self.assertEqual(forwarded_for(r), NEW_YORK)
                self.assertEqual(r.header("x-meridian-region"), "us-east")

    def test_rate_limit_through_haproxy_is_per_client(self):
        # Each listener has its own buckets for its routes.
        for version in ("v1", "v2"):
            with self.subTest(version=version):
                self.assertEqual(self.through_haproxy(version, "127.0.5.5", "/limited").status, 200)
                self.assertEqual(self.through_haproxy(version, "127.0.5.5", "/limited").status, 429)
                self.assertEqual(self.through_haproxy(version, "127.0.5.6", "/limited").status, 200)


if __name__ == "__main__":
    unittest.main()
