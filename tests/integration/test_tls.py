"""TLS termination (a listener's `tls`), with real clients: curl and `openssl s_client`
(Debian's), and Python's ssl module. Certificates are made per run with the openssl command
line. SNI picks the certificate (exact names, then wildcards; the first certificate for unknown
names and for clients without SNI), `min_version` refuses older clients, sessions resume
(TLS 1.2 session IDs whichever side closes first, TLS 1.2 and 1.3 tickets), ALPN answers http/1.1 to HTTP/1.1 clients, requests carry `X-Forwarded-Proto: https`,
the PROXY protocol header comes before the handshake, a reload reads the certificate files
again, and a broken certificate stops a start."""

import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import unittest

from harness import (Meridian, Origin, bench_tool_argv, free_port, meridian_bin, parse_responses,
                     split_address, wait_until)

CONFIG = """
node: {name: edge-tls}
workers: 2
admin:
  listen: "{admin}"
listeners:
  - name: tls
    listen: "{tls}"
    tls:
      certificates:
        - {cert: "{certs}/default.pem", key: "{certs}/default.key"}
        - {cert: "{certs}/a.pem", key: "{certs}/a.key"}
        - {cert: "{certs}/b.pem", key: "{certs}/b.key"}
    routes: &routes
      - {name: all, backend: b}
  - name: tls13
    listen: "{tls13}"
    proxy_protocol: v1
    tls:
      certificates: [{cert: "{certs}/a.pem", key: "{certs}/a.key"}]
      min_version: "1.3"
      alpn: [h2, http/1.1]
    routes: *routes
backends:
  - name: b
    regions:
      - name: r1
        location: {lat: 50.0, lon: 8.0}
        endpoints: [{address: "{o1}"}]
"""


def make_certificate(directory, name, common_name, dns_names):
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", f"/CN={common_name}",
         "-addext", "subjectAltName=" + ",".join(f"DNS:{d}" for d in dns_names),
         "-keyout", os.path.join(directory, f"{name}.key"),
         "-out", os.path.join(directory, f"{name}.pem")],
        check=True, capture_output=True)


def s_client(port, *args, data=b""):
    """openssl s_client against 127.0.0.1:port; returns its output (stdout + stderr)."""
    proc = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *args],
                          input=data, capture_output=True, timeout=20)
    return proc.returncode, (proc.stdout + proc.stderr).decode("utf-8", "replace")


def read_to_close(s):
    """Everything a TLS socket receives until the server closes (close_notify or FIN)."""
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ssl.SSLZeroReturnError:
            return data
        if not chunk:
            return data
        data += chunk


def subject_cn(output):
    for line in output.splitlines():
        if line.startswith("subject="):
            return line.split("CN", 1)[1].lstrip(" =").strip()
    return None


@unittest.skipUnless(shutil.which("openssl") and shutil.which("curl"), "openssl and curl needed")
class TlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = tempfile.mkdtemp(prefix="meridian-tls-")
        make_certificate(cls.certs, "default", "default.test", ["default.test"])
        make_certificate(cls.certs, "a", "a.test", ["a.test"])
        make_certificate(cls.certs, "b", "wild.b.test", ["*.b.test"])
        cls.origin = Origin("o1").start()
        cls.port = free_port()
        cls.port13 = free_port()
        cls.meridian = Meridian(CONFIG, {"o1": cls.origin.address, "certs": cls.certs,
                                         "tls": f"127.0.0.1:{cls.port}",
                                         "tls13": f"127.0.0.1:{cls.port13}"}).start()

    @classmethod
    def tearDownClass(cls):
        cls.meridian.stop()
        cls.origin.stop()
        shutil.rmtree(cls.certs, ignore_errors=True)

    def curl(self, host, path="/", *extra):
        proc = subprocess.run(
            ["curl", "-sS", "--http1.1", "--resolve", f"{host}:{self.port}:127.0.0.1",
             "--cacert", os.path.join(self.certs, "a.pem"),
             "-w", "\n%{http_code} %{http_version}", *extra, f"https://{host}:{self.port}{path}"],
            capture_output=True, timeout=20)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        body, _, tail = proc.stdout.decode().rpartition("\n")
        return tail, body

    def test_curl_gets_an_answer_with_forwarded_proto_https(self):
        status, body = self.curl("a.test", "/over-tls")
        self.assertEqual(status, "200 1.1")
        headers = {n.lower(): v for n, v in json.loads(body)["headers"]}
        self.assertEqual(headers["x-forwarded-proto"], "https")
        self.assertEqual(headers["x-forwarded-for"], "127.0.0.1")

    def test_sni_picks_the_certificate(self):
        for server_name, expected in (("a.test", "a.test"), ("A.TEST", "a.test"),
                                      ("x.b.test", "wild.b.test"),
                                      ("deeper.x.b.test", "default.test"),
                                      ("unknown.test", "default.test")):
            with self.subTest(server_name=server_name):
                _, out = s_client(self.port, "-servername", server_name)
                self.assertEqual(subject_cn(out), expected, out)
        _, out = s_client(self.port, "-noservername")
        self.assertEqual(subject_cn(out), "default.test")

    def handshake(self, port, version, proxy_header=b""):
        """The protocol version agreed with a client that speaks only `version`, or the
        SSLError meridian's refusal caused."""
        context = self.client_context()
        context.minimum_version = context.maximum_version = version
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(proxy_header)
            try:
                with context.wrap_socket(raw, server_hostname="a.test") as s:
                    return s.version()
            except (ssl.SSLError, ConnectionResetError) as e:
                return e

    def test_min_version(self):
        header = b"PROXY TCP4 127.0.2.1 127.0.0.1 1 2\r\n"  # the 1.3 listener wants one
        self.assertEqual(self.handshake(self.port, ssl.TLSVersion.TLSv1_2), "TLSv1.2")
        self.assertEqual(self.handshake(self.port, ssl.TLSVersion.TLSv1_3), "TLSv1.3")
        self.assertEqual(self.handshake(self.port13, ssl.TLSVersion.TLSv1_3, header), "TLSv1.3")
        refused = self.handshake(self.port13, ssl.TLSVersion.TLSv1_2, header)
        self.assertIsInstance(refused, Exception, "min_version 1.3 refuses a TLS 1.2 client")
        _, out = s_client(self.port, "-tls1_1", "-servername", "a.test")
        self.assertIn("Cipher is (NONE)", out, "TLS 1.1 is never accepted")

    def test_tls12_session_resumption(self):
        # s_client offers a ticket by default: this is TLS 1.2 ticket resumption (RFC 5077).
        session = os.path.join(self.certs, "session.pem")
        _, out = s_client(self.port, "-tls1_2", "-servername", "a.test", "-sess_out", session)
        self.assertIn("New, TLSv1.2", out)
        self.assertIn("TLS session ticket lifetime hint", out)
        _, out = s_client(self.port, "-tls1_2", "-servername", "a.test", "-sess_in", session)
        self.assertIn("Reused, TLSv1.2", out)

    def test_tls12_session_id_resumption_when_the_client_closes_first(self):
        # -no_ticket: the server's session cache (session IDs). s_client with nothing to send
        # sends close_notify and closes first; the session must stay in the cache then, and
        # whichever of the two workers takes the next connection must find it.
        for attempt in range(6):
            session = os.path.join(self.certs, f"session-id-{attempt}.pem")
            _, out = s_client(self.port, "-tls1_2", "-no_ticket", "-servername", "a.test",
                              "-sess_out", session)
            self.assertIn("New, TLSv1.2", out)
            for _ in range(2):
                _, out = s_client(self.port, "-tls1_2", "-no_ticket", "-servername", "a.test",
                                  "-sess_in", session)
                self.assertIn("Reused, TLSv1.2", out, f"attempt {attempt}")

    def test_tls12_session_id_resumption_when_the_server_closes_first(self):
        # The request asks meridian to close: it ends the connection after its answer.
        session = os.path.join(self.certs, "session-server-closes.pem")
        request = b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"
        _, out = s_client(self.port, "-tls1_2", "-no_ticket", "-servername", "a.test",
                          "-ign_eof", "-sess_out", session, data=request)
        self.assertIn("New, TLSv1.2", out)
        self.assertIn("HTTP/1.1 200", out)
        _, out = s_client(self.port, "-tls1_2", "-no_ticket", "-servername", "a.test",
                          "-ign_eof", "-sess_in", session, data=request)
        self.assertIn("Reused, TLSv1.2", out)

    def test_tls13_ticket_resumption(self):
        # TLS 1.3 tickets come after the handshake: the first client stays for an answer
        # (-ign_eof) so that it has them when it saves the session.
        session = os.path.join(self.certs, "session13.pem")
        request = b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"
        _, out = s_client(self.port, "-tls1_3", "-servername", "a.test", "-ign_eof",
                          "-sess_out", session, data=request)
        self.assertIn("New, TLSv1.3", out)
        for _ in range(3):
            _, out = s_client(self.port, "-tls1_3", "-servername", "a.test", "-ign_eof",
                              "-sess_in", session, data=request)
            self.assertIn("Reused, TLSv1.3", out)
            self.assertIn("HTTP/1.1 200", out)

    def test_tls13_resumed_connection_brings_a_fresh_ticket(self):
        # A TLS 1.3 client uses each ticket once: every connection resumes with the session
        # the one before it saved, itself a resumed one (wrk and browsers do this).
        request = b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"
        previous = os.path.join(self.certs, "chain-0.pem")
        _, out = s_client(self.port, "-tls1_3", "-servername", "a.test", "-ign_eof",
                          "-sess_out", previous, data=request)
        self.assertIn("New, TLSv1.3", out)
        for i in range(1, 5):
            session = os.path.join(self.certs, f"chain-{i}.pem")
            _, out = s_client(self.port, "-tls1_3", "-servername", "a.test", "-ign_eof",
                              "-sess_in", previous, "-sess_out", session, data=request)
            self.assertIn("Reused, TLSv1.3", out, f"resumption {i} in the chain")
            self.assertIn("HTTP/1.1 200", out)
            previous = session

    def test_concurrent_clients_resume_every_handshake(self):
        # bench/e2e/handshake_load.cpp, the client of the handshake benchmarks: 8 connections
        # at a time from one thread, each new one resuming the session its slot's last one
        # got (TLS 1.2 session IDs through the server cache, TLS 1.3 tickets, each used once),
        # a request answered on every one. Everything but each slot's first handshake must
        # resume; in mode full, nothing may.
        expected = {"id": 400 - 8, "ticket": 400 - 8, "full": 0}
        for mode, resumed in expected.items():
            argv = bench_tool_argv("meridian_handshake_load", [
                "--port", str(self.port), "--mode", mode, "--conns", "8", "--requests", "400"])
            if argv is None:
                self.skipTest("no bench/meridian_handshake_load in this build (MERIDIAN_BENCH=OFF)")
            proc = subprocess.run(argv, capture_output=True, timeout=300)
            out = proc.stdout.decode()
            self.assertEqual(proc.returncode, 0, proc.stderr.decode())
            self.assertIn(f": {resumed} of 400 handshakes resumed", out, mode)
            self.assertIn("400 done, 400 succeeded, 0 failed", out, mode)
            self.assertIn("status codes: 400 2xx", out, mode)

    def test_tickets_resume_after_a_reload(self):
        # Ticket keys belong to the process, not to the contexts a reload builds again: a
        # client's ticket from before the reload still resumes (TLS 1.2 and 1.3), and its
        # lifetime is the documented hour.
        request = b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"
        sessions = {}
        for version in ("-tls1_2", "-tls1_3"):
            sessions[version] = os.path.join(self.certs, f"session-reload{version}.pem")
            _, out = s_client(self.port, version, "-servername", "a.test", "-ign_eof",
                              "-sess_out", sessions[version], data=request)
            self.assertIn("New, TLSv1", out)
            self.assertIn("TLS session ticket lifetime hint: 3600 (seconds)", out)
        self.assertEqual(self.meridian.admin("POST", "/reload").status, 200)
        for version, session in sessions.items():
            _, out = s_client(self.port, version, "-servername", "a.test", "-ign_eof",
                              "-sess_in", session, data=request)
            self.assertIn("Reused, TLSv1", out, version)
            self.assertIn("HTTP/1.1 200", out)

    def client_context(self):
        context = ssl.create_default_context(cafile=os.path.join(self.certs, "a.pem"))
        return context

    def test_alpn_keep_alive_and_pipelining(self):
        context = self.client_context()
        # A client offering both gets h2 (test_http2.py); one offering http/1.1 gets it.
        context.set_alpn_protocols(["http/1.1"])
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname="a.test") as s:
                self.assertEqual(s.selected_alpn_protocol(), "http/1.1")
                requests = b"".join(f"GET /ka{i} HTTP/1.1\r\nHost: a.test\r\n\r\n".encode()
                                    for i in range(3))
                s.sendall(requests + b"GET /last HTTP/1.1\r\nHost: a.test\r\n"
                                     b"Connection: close\r\n\r\n")
                data = read_to_close(s)
        responses, _ = parse_responses(data)
        self.assertEqual([r.status for r in responses], [200] * 4)
        self.assertEqual([r.json()["path"] for r in responses], ["/ka0", "/ka1", "/ka2", "/last"])

    def test_close_sends_close_notify(self):
        # A response delimited by the connection's end (an HTTP/1.0 client, a chunked origin
        # body) is only trustworthy over TLS when close_notify precedes the close.
        context = self.client_context()
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname="a.test",
                                     suppress_ragged_eofs=False) as s:
                s.sendall(b"GET /ten?chunked=1&size=1000 HTTP/1.0\r\nHost: a.test\r\n\r\n")
                data = b""
                try:
                    while chunk := s.recv(65536):
                        data += chunk
                except ssl.SSLZeroReturnError:
                    pass  # close_notify: the end is genuine
        self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:60])
        self.assertNotIn(b"Content-Length", data.split(b"\r\n\r\n")[0])

    def test_proxy_protocol_before_the_handshake(self):
        context = self.client_context()
        with socket.create_connection(("127.0.0.1", self.port13), timeout=10) as raw:
            raw.sendall(b"PROXY TCP4 127.0.2.1 127.0.0.1 40000 443\r\n")
            with context.wrap_socket(raw, server_hostname="a.test") as s:
                self.assertEqual(s.version(), "TLSv1.3")
                s.sendall(b"GET /pp HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
                data = read_to_close(s)
        responses, _ = parse_responses(data)
        headers = {n.lower(): v for n, v in responses[0].json()["headers"]}
        self.assertEqual(headers["x-forwarded-for"], "127.0.2.1")
        self.assertEqual(headers["x-forwarded-proto"], "https")

    def test_plain_http_on_a_tls_port_gets_no_http_answer(self):
        before = self.origin.requests()
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
            data = b""
            try:
                while chunk := s.recv(65536):
                    data += chunk
            except ConnectionResetError:
                pass
        self.assertFalse(data.startswith(b"HTTP/"), data[:80])
        self.assertEqual(self.origin.requests(), before)
        # The listener still serves TLS clients.
        self.assertEqual(self.curl("a.test")[0], "200 1.1")

    def test_reload_reads_the_certificates_again(self):
        _, before = s_client(self.port, "-servername", "a.test")
        fingerprint = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-in",
                                      os.path.join(self.certs, "a.pem")],
                                     capture_output=True, check=True).stdout
        make_certificate(self.certs, "a", "a.test", ["a.test", "renewed.a.test"])
        self.assertEqual(self.meridian.admin("POST", "/reload").status, 200)
        _, out = s_client(self.port, "-servername", "renewed.a.test", "-showcerts")
        self.assertEqual(subject_cn(out), "a.test", "the renewed certificate serves its new name")
        new_fingerprint = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-in",
                                          os.path.join(self.certs, "a.pem")],
                                         capture_output=True, check=True).stdout
        self.assertNotEqual(fingerprint, new_fingerprint)
        self.assertEqual(self.curl("a.test")[0], "200 1.1")


PLAIN_THEN_TLS = """
node: {name: edge-tls-reload}
workers: 1
admin:
  listen: "{admin}"
listeners:
  - name: public
    listen: "{listen}"
%(tls)s
    routes: [{name: all, backend: b}]
backends:
  - name: b
    regions: [{name: r1, location: {lat: 0, lon: 0}, endpoints: [{address: "{o1}"}]}]
"""


@unittest.skipUnless(shutil.which("openssl"), "openssl needed")
class TlsAddedByReloadTest(unittest.TestCase):
    def test_open_plain_connections_keep_working(self):
        # No request fails because of a reload. A kept listener that gains tls keeps its socket;
        # connections already open stay plain, new ones speak TLS.
        certs = tempfile.mkdtemp(prefix="meridian-tls-")
        try:
            make_certificate(certs, "a", "a.test", ["a.test"])
            tls = ('    tls: {certificates: [{cert: "%s/a.pem", key: "%s/a.key"}]}' %
                   (certs, certs))
            with Origin("o1") as o, Meridian(PLAIN_THEN_TLS % {"tls": ""},
                                             {"o1": o.address}) as m:
                with m.conn() as c:
                    self.assertEqual(c.request("GET", "/before").status, 200)
                    m.write_config(PLAIN_THEN_TLS % {"tls": tls})
                    self.assertEqual(m.reload().status, 200)
                    for i in range(3):
                        self.assertEqual(c.request("GET", f"/after/{i}").status, 200)
                host, port = split_address(m.listen_address)
                context = ssl.create_default_context(cafile=os.path.join(certs, "a.pem"))
                with socket.create_connection((host, port), timeout=10) as raw:
                    with context.wrap_socket(raw, server_hostname="a.test") as s:
                        s.sendall(b"GET /new HTTP/1.1\r\nHost: a.test\r\n"
                                  b"Connection: close\r\n\r\n")
                        responses, _ = parse_responses(read_to_close(s))
                self.assertEqual(responses[0].status, 200)
        finally:
            shutil.rmtree(certs, ignore_errors=True)


@unittest.skipUnless(shutil.which("openssl"), "openssl needed")
class TlsConfigErrorTest(unittest.TestCase):
    def test_a_key_that_does_not_match_stops_the_start(self):
        certs = tempfile.mkdtemp(prefix="meridian-tls-")
        try:
            make_certificate(certs, "a", "a.test", ["a.test"])
            make_certificate(certs, "b", "b.test", ["b.test"])
            config = os.path.join(certs, "meridian.yaml")
            with open(config, "w") as f:
                f.write(f"""
admin: {{listen: ""}}
listeners:
  - name: tls
    listen: 127.0.0.1:{free_port()}
    tls:
      certificates: [{{cert: "{certs}/a.pem", key: "{certs}/b.key"}}]
    routes: [{{name: all, backend: b}}]
backends:
  - name: b
    regions: [{{name: r1, location: {{lat: 0, lon: 0}}, endpoints: [{{address: "127.0.0.1:9"}}]}}]
""")
            proc = subprocess.run([meridian_bin(), "--config", config], capture_output=True,
                                  timeout=20)
            self.assertNotEqual(proc.returncode, 0)
            err = proc.stderr.decode()
            self.assertIn(f"{config}: listener tls: tls.certificates: key {certs}/b.key "
                          f"does not match certificate {certs}/a.pem", err)
        finally:
            shutil.rmtree(certs, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
