"""Session ticket keys shared by a fleet (`listeners[].tls.ticket_keys`): two meridian
processes stand for two nodes behind one anycast address. With the same key file a session
from one resumes on the other (TLS 1.2 and 1.3 tickets, `openssl s_client -sess_out/-sess_in`);
with the process's own keys it does not. Rotation: a node with a new key first still accepts
tickets under the old one and renews them under the new one; a node with only the new key
refuses them. A reload reads the files again, and a bad file fails the reload and keeps the
keys that were running. meridian_tls_handshakes_total counts what each node saw."""

import os
import shutil
import socket
import tempfile
import unittest

from harness import Meridian, Origin, wait_until
from test_tls import make_certificate, s_client

CONFIG = """
node: {name: edge-%(node)s}
workers: 2
admin:
  listen: "{admin}"
listeners:
  - name: tls
    listen: "{listen}"
    tls:
      certificates: [{cert: "{certs}/a.pem", key: "{certs}/a.key"}]
%(ticket_keys)s
    routes: [{name: all, backend: b}]
backends:
  - name: b
    regions:
      - name: r1
        location: {lat: 50.0, lon: 8.0}
        endpoints: [{address: "{o1}"}]
"""


def handshakes(node):
    """meridian_tls_handshakes_total of the node's listener, by result."""
    return {result: node.metric("meridian_tls_handshakes_total",
                                {"listener": "tls", "result": result})
            for result in ("full", "resumed", "failed")}


def ticket_key_name(s_client_output):
    """The first 16 bytes of the session ticket s_client prints, in hex."""
    lines = s_client_output.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == "TLS session ticket:":
            first = lines[i + 1].split(" - ", 1)[1][:48]  # "9b 31 ... c5-ca 4b ... 7f"
            return "".join(first.replace("-", " ").split())
    return None


REQUEST = b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"
VERSIONS = ("-tls1_2", "-tls1_3")


@unittest.skipUnless(shutil.which("openssl"), "openssl needed")
class TicketKeysTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="meridian-ticket-keys-")
        make_certificate(cls.dir, "a", "a.test", ["a.test"])
        for name in ("old", "new"):
            with open(os.path.join(cls.dir, f"{name}.key"), "wb") as f:
                f.write(os.urandom(80))
        with open(os.path.join(cls.dir, "short.key"), "wb") as f:
            f.write(os.urandom(48))
        cls.origin = Origin("o1").start()

    @classmethod
    def tearDownClass(cls):
        cls.origin.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def config(self, node, keys):
        lines = ""
        if keys is not None:
            paths = ", ".join(f'"{self.dir}/{k}.key"' for k in keys)
            lines = f"      ticket_keys: [{paths}]"
        return CONFIG % {"node": node, "ticket_keys": lines}

    def node(self, name, keys):
        return Meridian(self.config(name, keys), {"o1": self.origin.address, "certs": self.dir})

    def new_session(self, node, version, tag):
        """A full handshake with `node`; returns the file s_client saved the session in."""
        session = os.path.join(self.dir, f"session-{tag}{version}.pem")
        _, out = s_client(node.port, version, "-servername", "a.test", "-ign_eof",
                          "-sess_out", session, data=REQUEST)
        self.assertIn("New, TLSv1", out)
        self.assertIn("HTTP/1.1 200", out)
        return session

    def resume(self, node, version, session, save=None):
        """Offers `session` to `node`; returns s_client's output (it says Reused or New)."""
        extra = ["-sess_out", save] if save else []
        _, out = s_client(node.port, version, "-servername", "a.test", "-ign_eof",
                          "-sess_in", session, *extra, data=REQUEST)
        self.assertIn("HTTP/1.1 200", out)
        return out

    def key_name(self, key):
        with open(os.path.join(self.dir, f"{key}.key"), "rb") as f:
            return f.read(16).hex()

    def test_a_session_from_one_node_resumes_on_another_with_the_same_key(self):
        with self.node("a", ["old"]) as a, self.node("b", ["old"]) as b:
            for version in VERSIONS:
                session = self.new_session(a, version, "shared")
                self.assertIn("Reused, TLSv1", self.resume(b, version, session), version)
            # TLS 1.3 hands out a fresh ticket on each resumption: b's resumes on a.
            session = self.new_session(a, "-tls1_3", "shared-chain")
            renewed = os.path.join(self.dir, "renewed-shared.pem")
            self.assertIn("Reused, TLSv1.3", self.resume(b, "-tls1_3", session, save=renewed))
            self.assertIn("Reused, TLSv1.3", self.resume(a, "-tls1_3", renewed))
            # meridian_tls_handshakes_total tells the operator the same.
            self.assertEqual(handshakes(a), {"full": 3, "resumed": 1, "failed": 0})
            self.assertEqual(handshakes(b), {"full": 0, "resumed": 3, "failed": 0})

    def test_without_shared_keys_each_node_makes_a_full_handshake(self):
        with self.node("a", None) as a, self.node("b", None) as b:
            for version in VERSIONS:
                session = self.new_session(a, version, "own")
                self.assertIn("Reused, TLSv1", self.resume(a, version, session), version)
                self.assertIn("New, TLSv1", self.resume(b, version, session), version)
            self.assertEqual(handshakes(a), {"full": 2, "resumed": 2, "failed": 0})
            self.assertEqual(handshakes(b), {"full": 2, "resumed": 0, "failed": 0})
            # Plain HTTP on the TLS port is a handshake that fails.
            with socket.create_connection(("127.0.0.1", b.port), timeout=10) as plain:
                plain.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
                while plain.recv(4096):
                    pass
            wait_until(lambda: handshakes(b)["failed"] == 1, 10,
                       message="the failed handshake to be counted")

    def test_rotation_accepts_the_old_key_and_renews_under_the_new(self):
        with self.node("a", ["old"]) as before, self.node("b", ["new", "old"]) as rotating, \
                self.node("c", ["new"]) as after:
            for version in VERSIONS:
                session = self.new_session(before, version, "rotation")
                self.assertIn("New, TLSv1", self.resume(after, version, session), version)
                renewed = os.path.join(self.dir, f"renewed-rotation{version}.pem")
                out = self.resume(rotating, version, session, save=renewed)
                self.assertIn("Reused, TLSv1", out, version)
                if version == "-tls1_2":
                    # A resumed TLS 1.2 client keeps the renewed ticket in its session but
                    # s_client saves only new sessions: the ticket it prints starts with the
                    # name of the key it is under (RFC 5077's key_name).
                    self.assertEqual(ticket_key_name(out), self.key_name("new"))
                    continue
                # The TLS 1.3 ticket it handed back is under the new key: the node with only
                # the new key takes it, the node with only the old key does not.
                self.assertIn("Reused, TLSv1.3", self.resume(after, version, renewed))
                self.assertIn("New, TLSv1.3", self.resume(before, version, renewed))

    def test_a_reload_reads_the_key_files_again_and_a_bad_one_keeps_the_running_keys(self):
        with self.node("a", ["old"]) as a:
            sessions = {v: self.new_session(a, v, "reload-old") for v in VERSIONS}
            a.write_config(self.config("a", ["new"]), {"o1": self.origin.address,
                                                       "certs": self.dir})
            self.assertEqual(a.reload().status, 200)
            for version, session in sessions.items():
                self.assertIn("New, TLSv1", self.resume(a, version, session), version)
            sessions = {v: self.new_session(a, v, "reload-new") for v in VERSIONS}

            a.write_config(self.config("a", ["short"]), {"o1": self.origin.address,
                                                         "certs": self.dir})
            resp = a.reload()
            self.assertEqual(resp.status, 400)
            self.assertIn("short.key", resp.text())
            self.assertIn("holds 48 bytes; a key is 80 random bytes", resp.text())
            for version, session in sessions.items():
                self.assertIn("Reused, TLSv1", self.resume(a, version, session), version)


if __name__ == "__main__":
    unittest.main()
