"""A small authoritative DNS server over UDP for the tests, run in a thread of the test itself:
it answers A and AAAA questions from a table the test changes while meridian runs, and can be
told to fail (SERVFAIL) or to stay silent. Enough of RFC 1035 for a stub resolver (c-ares):
one question per query, answers with a compressed name pointer, no EDNS, no TCP.

    with DnsServer() as dns:
        dns.set("origin.meridian.test", ["127.0.0.2"], ttl=30)
        ... config: dns: {servers: ["%s" % dns.address]}
        dns.set("origin.meridian.test", ["127.0.0.3"])
        dns.mode = "servfail"   # or "silent", or "answer"
"""

import ipaddress
import socket
import struct
import threading

TYPE_A = 1
TYPE_AAAA = 28
CLASS_IN = 1


class DnsServer:
    def __init__(self, host="127.0.0.1"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.address = "%s:%d" % self.sock.getsockname()
        self.lock = threading.Lock()
        self.records = {}  # lower-case name -> (list of ip strings, ttl)
        self.mode = "answer"
        self.queries = 0  # questions received (any type)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.stopped = False

    def set(self, name, addresses, ttl=30):
        with self.lock:
            self.records[name.lower().rstrip(".")] = (list(addresses), int(ttl))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped = True
        self.sock.close()
        self.thread.join(2)

    def serve(self):
        while not self.stopped:
            try:
                query, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            try:
                reply = self.answer(query)
            except (ValueError, struct.error, IndexError):
                continue  # not a query we understand: no answer
            if reply is not None:
                try:
                    self.sock.sendto(reply, peer)
                except OSError:
                    return

    def answer(self, query):
        ident, flags, qdcount = struct.unpack("!HHH", query[:6])
        if qdcount != 1 or flags & 0x8000:
            raise ValueError("not a one-question query")
        labels, at = [], 12
        while True:
            n = query[at]
            at += 1
            if n == 0:
                break
            labels.append(query[at:at + n].decode("ascii").lower())
            at += n
        qtype, qclass = struct.unpack("!HH", query[at:at + 4])
        question = query[12:at + 4]
        name = ".".join(labels)
        with self.lock:
            self.queries += 1
            mode = self.mode
            found = self.records.get(name)
        if mode == "silent":
            return None
        rd = flags & 0x0100
        rcode = 0
        answers = []
        if mode == "servfail":
            rcode = 2
        elif found is None:
            rcode = 3  # NXDOMAIN
        elif qclass == CLASS_IN and qtype in (TYPE_A, TYPE_AAAA):
            addresses, ttl = found
            for text in addresses:
                ip = ipaddress.ip_address(text)
                if (ip.version == 4) != (qtype == TYPE_A):
                    continue
                rdata = ip.packed
                answers.append(struct.pack("!HHHIH", 0xC00C, qtype, CLASS_IN, ttl, len(rdata))
                               + rdata)
        # QR, AA, the client's RD, RA; the rcode.
        reply_flags = 0x8000 | 0x0400 | rd | 0x0080 | rcode
        header = struct.pack("!HHHHHH", ident, reply_flags, 1, len(answers), 0, 0)
        return header + question + b"".join(answers)
