"""Abusive clients (docs/hardening.md): slowloris connections sending a byte a second are closed
at header_timeout while ordinary clients are served meanwhile; slow readers of large responses
do not make meridian buffer them (RSS stays flat: per-connection buffers are capped and the
upstream is read only as fast as the client reads); max_connections is enforced and frees up as
connections close. (HTTP/2 floods and slow HTTP/2 readers: test_http2.py.)"""

# ctest-label: heavy

import os
import socket
import threading
import time
import unittest

from harness import Meridian, Origin, http_request, parse_responses, split_address, wait_until

CONFIG = """
node: {name: edge-abuse}
workers: 2
admin:
  listen: "{admin}"
access_log: {path: off}
limits: {header_timeout: 2s, idle_timeout: 10s, max_connections: 300}
listeners:
  - name: public
    listen: "{listen}"
    routes:
      - {name: all, backend: b, timeout: 60s}
backends:
  - name: b
    regions:
      - name: r1
        location: {lat: 50.0, lon: 8.0}
        endpoints: [{address: "{o1}"}]
"""


class AbusiveClientsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.origin = Origin("o1").start()
        cls.meridian = Meridian(CONFIG, {"o1": cls.origin.address}).__enter__()
        cls.host, cls.port = split_address(cls.meridian.listen_address)

    @classmethod
    def tearDownClass(cls):
        cls.meridian.__exit__(None, None, None)
        cls.origin.stop()

    def rss_kib(self):
        with open(f"/proc/{self.meridian.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def test_slowloris_is_closed_at_header_timeout_and_others_are_served(self):
        conns = 100
        ended = {}  # connection index -> seconds from its first byte to its close
        lock = threading.Lock()

        def slowloris(i):
            head = b"GET /slow HTTP/1.1\r\nHost: example.test\r\nX-Loris: " + b"z" * 100
            with socket.create_connection((self.host, self.port), timeout=10) as s:
                start = time.monotonic()
                s.settimeout(1.0)  # one byte a second
                for byte in head:
                    try:
                        s.sendall(bytes([byte]))
                        chunk = s.recv(4096)
                    except TimeoutError:
                        continue
                    except (BrokenPipeError, ConnectionResetError):
                        chunk = b""
                    if not chunk or chunk.startswith(b"HTTP/1.1 408"):
                        with lock:
                            ended[i] = time.monotonic() - start
                        return
        threads = [threading.Thread(target=slowloris, args=(i,)) for i in range(conns)]
        for t in threads:
            t.start()
        # Ordinary clients meanwhile: every one answered.
        statuses = []
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            statuses.append(http_request(self.meridian.listen_address, "GET", "/ordinary",
                                         [("Connection", "close")], timeout=5).status)
        for t in threads:
            t.join(20)
        self.assertEqual(set(statuses), {200})
        self.assertEqual(len(ended), conns, "every slowloris connection was ended")
        # header_timeout 2 s, swept every 100 ms; a second of pacing on the client's side.
        self.assertLess(max(ended.values()), 2 + 1.5, sorted(ended.values())[-5:])
        self.assertEqual(self.origin.requests("/slow"), 0)

    @unittest.skipIf(os.environ.get("MERIDIAN_SANITIZED"), "sanitizers change RSS")
    def test_slow_readers_of_large_responses_do_not_grow_memory(self):
        readers = 10
        size = 100 * 1024 * 1024
        before = self.rss_kib()
        socks = []
        try:
            for _ in range(readers):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.connect((self.host, self.port))
                s.sendall(f"GET /big?size={size} HTTP/1.1\r\nHost: example.test\r\n"
                          "Connection: close\r\n\r\n".encode())
                socks.append(s)
            # The responses start (a first read shows the head), then nobody reads on.
            for s in socks:
                s.settimeout(10)
                self.assertTrue(s.recv(1024).startswith(b"HTTP/1.1 200"))
            wait_until(lambda: self.origin.stats()["connections_active"] >= readers, timeout=10)
            samples = []
            for _ in range(15):
                samples.append(self.rss_kib())
                time.sleep(0.2)  # sampling while the readers stall, not synchronisation
            grown = max(samples) - before
            # Each connection holds at most its 64 KiB response buffer (plus socket buffers in
            # the kernel, not in RSS): 10 stalled 100 MB downloads cost well under 16 MiB.
            self.assertLess(grown, 16 * 1024, f"RSS grew {grown} KiB with {readers} stalled "
                                              f"readers of {size >> 20} MiB each")
            # And they still work: one reader drains a few MB at its own pace.
            got = 0
            socks[0].settimeout(10)
            while got < 4 * 1024 * 1024:
                chunk = socks[0].recv(65536)
                self.assertTrue(chunk)
                got += len(chunk)
        finally:
            for s in socks:
                s.close()

    def test_max_connections_is_enforced(self):
        # Its own meridian, whose header_timeout does not end the held connections meanwhile.
        config = CONFIG.replace("header_timeout: 2s", "header_timeout: 60s").replace(
            "max_connections: 300", "max_connections: 50")
        with Meridian(config, {"o1": self.origin.address}) as m:
            host, port = split_address(m.listen_address)

            def active():
                return m.metric("meridian_downstream_connections_active")
            held = []
            try:
                for _ in range(50):
                    held.append(socket.create_connection((host, port), timeout=5))
                wait_until(lambda: active() == 50, timeout=10, message="50 connections counted")
                with socket.create_connection((host, port), timeout=5) as extra:
                    extra.sendall(b"GET /over HTTP/1.1\r\nHost: example.test\r\n\r\n")
                    extra.settimeout(5)
                    try:
                        data = extra.recv(1024)
                    except ConnectionResetError:
                        data = b""
                    self.assertEqual(data, b"", "the connection over the limit is closed unanswered")
                self.assertEqual(active(), 50)
                for s in held[:10]:
                    s.close()
                del held[:10]
                wait_until(lambda: active() == 40, timeout=10, message="10 connections closed")
                r = http_request(m.listen_address, "GET", "/after", [("Connection", "close")],
                                 timeout=5)
                self.assertEqual(r.status, 200)
                self.assertEqual(self.origin.requests("/over"), 0)
            finally:
                for s in held:
                    s.close()

if __name__ == "__main__":
    unittest.main()
