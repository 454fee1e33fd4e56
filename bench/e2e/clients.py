#!/usr/bin/env python3
"""HTTP/1.1 load clients for bench/e2e/run.sh (standard library only).

  clients.py seq  --port P --requests N            N requests one after another on one
                                                   keep-alive connection (callgrind runs)
  clients.py conc --port P --requests N --conns C  exactly N requests in total over C keep-alive
                                                   connections, one outstanding on each (strace)
  clients.py idle --port P --conns N --ready-file F [--tls h1|h2]
                                                   N connections, one GET answered on each, then
                                                   all held open (idle memory test) until killed;
                                                   --tls: over TLS, HTTP/1.1 or HTTP/2 by ALPN

Every client retries its connects for --wait seconds, so it doubles as the readiness probe for
a proxy starting under valgrind or strace (a refused connect never reaches the proxy, so the
probing adds nothing to the counts being differenced). Any answer but a 200 with a
Content-Length, or a connection the proxy closes, is an error (exit status 1): the counts are
only meaningful if every request was proxied.
"""
import argparse
import resource
import selectors
import socket
import ssl
import struct
import sys
import time

REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: meridian-bench\r\n\r\n"


class ResponseReader:
    """Incremental HTTP/1.1 response parser: feed() bytes, get back how many whole responses
    they completed."""

    def __init__(self):
        self.buf = bytearray()
        self.need = None  # bytes of the current response (head + body) once its head is in

    def feed(self, data):
        self.buf += data
        done = 0
        while True:
            if self.need is None:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return done
                head = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
                if not head[0].startswith(("HTTP/1.1 200", "HTTP/1.0 200")):
                    raise SystemExit(f"clients.py: unexpected response: {head[0]!r}")
                length = None
                for h in head[1:]:
                    name, _, value = h.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                if length is None:
                    raise SystemExit(f"clients.py: response without Content-Length: {head}")
                self.need = end + 4 + length
            if len(self.buf) < self.need:
                return done
            del self.buf[:self.need]
            self.need = None
            done += 1


def connect(port, deadline):
    while True:
        try:
            s = socket.create_connection(("127.0.0.1", port))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return s
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise SystemExit(f"clients.py: nothing accepts on 127.0.0.1:{port}")
            time.sleep(0.05)


def read_one(sock, reader):
    while True:
        data = sock.recv(65536)
        if not data:
            raise SystemExit("clients.py: the proxy closed a keep-alive connection")
        if reader.feed(data):
            return


def seq(a):
    sock = connect(a.port, time.monotonic() + a.wait)
    reader = ResponseReader()
    start = time.monotonic()
    for _ in range(a.requests):
        sock.sendall(REQUEST)
        read_one(sock, reader)
    sock.close()
    print(f"seq: {a.requests} requests in {time.monotonic() - start:.1f}s", file=sys.stderr)


def conc(a):
    deadline = time.monotonic() + a.wait
    sel = selectors.DefaultSelector()
    issued = done = 0
    # Connect all first so the proxy sees the same C connections in every run.
    socks = [connect(a.port, deadline) for _ in range(a.conns)]
    start = time.monotonic()
    for s in socks:
        s.setblocking(False)
        reader = ResponseReader()
        sel.register(s, selectors.EVENT_READ, reader)
        if issued < a.requests:
            s.send(REQUEST)  # a 60-byte request always fits an empty socket buffer
            issued += 1
    while done < a.requests:
        for key, _ in sel.select(timeout=30):
            data = key.fileobj.recv(65536)
            if not data:
                raise SystemExit("clients.py: the proxy closed a keep-alive connection")
            n = key.data.feed(data)
            done += n
            if n and issued < a.requests:
                key.fileobj.send(REQUEST)
                issued += 1
        if time.monotonic() - start > 600:
            raise SystemExit(f"clients.py: only {done} of {a.requests} responses after 600 s")
    for s in socks:
        sel.unregister(s)
        s.close()
    print(f"conc: {done} requests over {a.conns} connections in "
          f"{time.monotonic() - start:.1f}s", file=sys.stderr)


def tls_context(alpn):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols([alpn])
    return context


H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def h2_frame(kind, flags, stream, payload=b""):
    return struct.pack("!I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(
        "!I", stream) + payload


def h2_get():
    """HEADERS for GET / on stream 1: HPACK static indexes and literals without indexing."""
    def literal(name, value):
        return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value
    block = b"\x82\x87\x84" + literal(b":authority", b"bench")  # GET, https, /
    return h2_frame(1, 0x5, 1, block)  # END_STREAM | END_HEADERS


def h2_exchange(sock):
    """Preface, SETTINGS, one GET; reads until stream 1 ends (answering the server's
    SETTINGS), and fails on anything but a 200."""
    sock.sendall(H2_PREFACE + h2_frame(4, 0, 0) + h2_get())
    buf, status = b"", None
    while True:
        while len(buf) >= 9:
            length = struct.unpack("!I", b"\x00" + buf[:3])[0]
            if len(buf) < 9 + length:
                break
            kind, flags = buf[3], buf[4]
            stream = struct.unpack("!I", buf[5:9])[0] & 0x7FFFFFFF
            payload, buf = buf[9:9 + length], buf[9 + length:]
            if kind == 4 and not flags & 1:
                sock.sendall(h2_frame(4, 1, 0))
            if kind == 1 and stream == 1:
                status = payload[:1]
            if stream == 1 and kind in (0, 1) and flags & 1:
                if status != b"\x88":
                    raise SystemExit(f"clients.py: HTTP/2 answer is not a 200 (first byte {status!r})")
                return
            if kind == 7:
                raise SystemExit("clients.py: GOAWAY from the server")
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("clients.py: connection closed before the HTTP/2 answer")
        buf += chunk


def idle(a):
    # One fd per connection: take the whole hard limit (run.sh raised it as far as it could).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    deadline = time.monotonic() + a.wait
    held = []
    start = time.monotonic()
    # In batches of 50 so the proxies see ~50 requests at a time (as in the wrk runs) and keep
    # few upstream connections, whose memory is not what this test measures.
    while len(held) < a.conns:
        batch = [connect(a.port, deadline) for _ in range(min(50, a.conns - len(held)))]
        if a.tls:
            context = tls_context("h2" if a.tls == "h2" else "http/1.1")
            batch = [context.wrap_socket(s) for s in batch]
        for s in batch:
            if a.tls == "h2":
                h2_exchange(s)
            else:
                s.sendall(REQUEST)
        if a.tls != "h2":
            for s in batch:
                read_one(s, ResponseReader())
        held += batch
    print(f"idle: {len(held)} connections open and answered in {time.monotonic() - start:.1f}s",
          file=sys.stderr)
    with open(a.ready_file, "w") as f:
        f.write(f"{len(held)}\n")
    time.sleep(a.hold)  # run.sh reads the proxy's RSS, then kills us; this is only a backstop


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("seq", "conc", "idle"):
        p = sub.add_parser(name)
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--wait", type=float, default=120, help="seconds to retry the connect")
        if name != "idle":
            p.add_argument("--requests", type=int, required=True)
        if name != "seq":
            p.add_argument("--conns", type=int, required=True)
        if name == "idle":
            p.add_argument("--ready-file", required=True)
            p.add_argument("--hold", type=float, default=600)
            p.add_argument("--tls", choices=("h1", "h2"), default=None)
    a = ap.parse_args()
    {"seq": seq, "conc": conc, "idle": idle}[a.cmd](a)


if __name__ == "__main__":
    main()
