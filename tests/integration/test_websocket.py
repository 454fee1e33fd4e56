"""WebSocket through meridian (Upgrade is hop-by-hop, except for WebSocket): the handshake is
forwarded with its Upgrade and Connection: Upgrade, the origin's 101 comes back, and then bytes
are relayed both ways unchanged -- text, binary, large frames, ping, close -- until either side
closes or the tunnel is idle for idle_timeout. A declined handshake is an ordinary response; a
101 nobody asked for is a 502."""

import base64
import hashlib
import os
import socket
import struct
import time
import unittest

from harness import Meridian, one_backend_config, Origin, split_address, wait_until

CONFIG = one_backend_config(node="edge-ws", workers=2, limits="""
limits:
  idle_timeout: 1s
""", extra="access_log: {path: \"{dir}/access.log\", format: json}")

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class WsClient:
    """A minimal RFC 6455 client: masked frames out, unmasked frames in."""

    def __init__(self, address, path="/ws", extra=b""):
        host, port = split_address(address)
        self.sock = socket.create_connection((host, port), timeout=5)
        self.key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\n"
            f"Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: {self.key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode() + extra)
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError(f"closed during the handshake: {self.buf!r}")
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers.setdefault(name.strip().lower(), []).append(value.strip())

    def header(self, name):
        values = self.headers.get(name.lower())
        return values[0] if values else None

    def send(self, opcode, payload):
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = bytes([0x80 | opcode, 0x80 | n])
        elif n < 65536:
            head = bytes([0x80 | opcode, 0x80 | 126]) + struct.pack("!H", n)
        else:
            head = bytes([0x80 | opcode, 0x80 | 127]) + struct.pack("!Q", n)
        self.sock.sendall(head + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload)))

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk

    def recv(self):
        self._need(2)
        opcode, n = self.buf[0] & 0x0F, self.buf[1] & 0x7F
        at = 2
        if n == 126:
            self._need(4)
            n, at = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, at = struct.unpack("!Q", self.buf[2:10])[0], 10
        self._need(at + n)
        payload, self.buf = self.buf[at:at + n], self.buf[at + n:]
        return opcode, payload

    def closed_by_peer(self, timeout=5):
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
        except (ConnectionResetError, socket.timeout):
            return False

    def close(self):
        self.sock.close()


class WebSocketTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.origin = Origin("o1").start()
        cls.meridian = Meridian(CONFIG, {"o1": cls.origin.address}).start()
        cls.address = cls.meridian.listen_address

    @classmethod
    def tearDownClass(cls):
        cls.meridian.stop()
        cls.origin.stop()

    def test_echo_round_trips_both_ways(self):
        ws = WsClient(self.address)
        try:
            self.assertEqual(ws.status, 101)
            self.assertEqual(ws.header("upgrade").lower(), "websocket")
            self.assertIn("upgrade", ws.header("connection").lower())
            expected = base64.b64encode(hashlib.sha1((ws.key + GUID).encode()).digest()).decode()
            self.assertEqual(ws.header("sec-websocket-accept"), expected)
            self.assertEqual(ws.header("x-origin-forwarded-for"), "127.0.0.1")
            self.assertIsNone(ws.header("content-length"))
            self.assertIsNone(ws.header("transfer-encoding"))
            for i in range(20):
                ws.send(1, f"message {i}".encode())
                self.assertEqual(ws.recv(), (1, f"message {i}".encode()))
            big = os.urandom(300_000)  # larger than the tunnel's 16 KiB buffers
            ws.send(2, big)
            self.assertEqual(ws.recv(), (2, big))
            ws.send(9, b"ping!")
            self.assertEqual(ws.recv(), (10, b"ping!"))
            ws.send(8, struct.pack("!H", 1000))
            self.assertEqual(ws.recv(), (8, struct.pack("!H", 1000)))
            self.assertTrue(ws.closed_by_peer(), "the origin's close reaches the client")
        finally:
            ws.close()

    def test_origin_speaking_first_and_client_bytes_after_the_handshake(self):
        # The origin's first frame comes in the same packet as its 101; the client's first
        # frame in the same packet as its handshake. Neither may be lost.
        mask = b"\x01\x02\x03\x04"
        early = bytes([0x81, 0x80 | 5]) + mask + bytes(c ^ mask[i % 4]
                                                        for i, c in enumerate(b"early"))
        ws = WsClient(self.address, "/ws?hello=1", extra=early)
        try:
            self.assertEqual(ws.status, 101)
            self.assertEqual(ws.recv(), (1, b"hello"))
            self.assertEqual(ws.recv(), (1, b"early"))
        finally:
            ws.close()

    def test_many_tunnels_at_once(self):
        clients = [WsClient(self.address) for _ in range(30)]
        try:
            for i, ws in enumerate(clients):
                ws.send(1, f"c{i}".encode())
            for i, ws in enumerate(clients):
                self.assertEqual(ws.recv(), (1, f"c{i}".encode()))
        finally:
            for ws in clients:
                ws.close()

    def test_idle_tunnel_is_closed_after_idle_timeout(self):
        ws = WsClient(self.address)
        try:
            ws.send(1, b"x")
            self.assertEqual(ws.recv(), (1, b"x"))
            start = time.monotonic()
            self.assertTrue(ws.closed_by_peer(timeout=10), "idle tunnel closed")
            self.assertGreaterEqual(time.monotonic() - start, 0.9)  # idle_timeout: 1s
        finally:
            ws.close()

    def test_client_vanishing_ends_the_tunnel_and_frees_the_endpoint(self):
        ws = WsClient(self.address)
        ws.send(1, b"x")
        self.assertEqual(ws.recv(), (1, b"x"))
        ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        ws.close()  # RST

        def idle_endpoint():
            for b in self.meridian.status()["backends"]:
                for r in b["regions"]:
                    for e in r["endpoints"]:
                        if e["in_flight"] != 0:
                            return False
            return True
        wait_until(idle_endpoint, 5, message="the endpoint no longer in flight")

    def test_tunnel_is_logged_with_101(self):
        ws = WsClient(self.address, "/ws-logged")
        ws.send(1, b"abc")
        self.assertEqual(ws.recv(), (1, b"abc"))
        ws.send(8, struct.pack("!H", 1000))
        ws.recv()
        ws.closed_by_peer()
        ws.close()
        path = os.path.join(self.meridian.dir, "access.log")
        wait_until(lambda: '"/ws-logged"' in open(path).read() and '"status":101'
                   in open(path).read(), 5, message="the tunnel's log line with status 101")

    def test_declined_handshake_is_an_ordinary_response_then_close(self):
        host, port = split_address(self.address)
        with socket.create_connection((host, port), timeout=5) as s:
            # Not /ws: the origin answers 200 with its JSON report.
            s.sendall(b"GET /plain HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\nSec-WebSocket-Key: x\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:100])
        self.assertIn(b"Connection: close", data)

    def test_unsolicited_101_is_a_502(self):
        # A plain request to /ws without the handshake: the origin does not upgrade it (no
        # key), so ask for a 101 status explicitly.
        host, port = split_address(self.address)
        with socket.create_connection((host, port), timeout=5) as s:
            s.sendall(b"GET /x?status=101 HTTP/1.1\r\nHost: ws.test\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        self.assertTrue(data.startswith(b"HTTP/1.1 502"), data[:100])


if __name__ == "__main__":
    unittest.main()
