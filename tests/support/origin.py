#!/usr/bin/env python3
"""Test origin server for meridian's integration tests (Python 3 standard library only).

Run it as a subprocess:

    python3 origin.py --port 0 [--host 127.0.0.1] [--name NAME] [--health-status 200]
                      [--health-path /health] [--health-delay-ms 0] [--idle-timeout 0]
                      [--delay-ms 0] [--exit-on-stdin-eof] [--verbose]
                      [--tls-cert PEM --tls-key PEM]

``--tls-cert`` serves a connection over TLS when its first byte starts a TLS handshake, and
plainly otherwise (the harness's /__ control requests stay plain).

``--delay-ms N`` is the default ``delay_ms`` (below) of every request but the health checks
and the ``/__`` paths; a ``delay_ms`` query parameter or header still overrides it.

Once it listens it prints one line ``LISTENING <port>`` to stdout and flushes.

It is a strict HTTP/1.1 server written on raw sockets (one thread per connection) with full
keep-alive and pipelining, Content-Length and chunked request bodies, ``Expect:
100-continue``, and bodies of any size streamed through one preallocated 1 MiB buffer (1 GiB
each way takes seconds). Everything it receives is hashed, counted and logged, so a test can
check exactly what meridian forwarded.

Per-request behaviour is controlled by query parameters on any path, or by request headers
``x-origin-<param>`` with the same names (headers are applied after the query, so a header
wins over the query for single-valued parameters):

  status=N          response status (default 200)
  size=N            body of N pattern bytes (see PATTERN) instead of the JSON report
  chunked=1         send the body with Transfer-Encoding: chunked instead of Content-Length
  chunk_size=N      size of the chunks for chunked=1 (default 65536)
  trailer=Name:Val  (repeatable) trailer fields sent after the last chunk (chunked=1 only)
  delay_ms=N        sleep before sending the response head (default: --delay-ms, 0)
  body_delay_ms=N   sleep after sending the head, before the body
  reset_after=N     send N bytes of the response (head + body, counted from the start of the
                    final response), wait until they left the send queue, then RST
                    (SO_LINGER 0 + close). A response shorter than N is sent whole, then RST.
  close_after=N     the same with a clean FIN close
  reset_before=1    RST right after reading the request head, answering nothing
  header=Name:Val   (repeatable) extra response header, sent verbatim
  keepalive=0       answer with Connection: close and close the connection
  garbage=1         answer with bytes that are not HTTP, then close
  continue=0        do not send 100 Continue even when the request expects it

Without ``size`` the body is a JSON report of the request (Content-Type application/json):

  {"name", "method", "target", "path", "query", "version", "headers": [[name, value], ...]
   (received order, original case), "body_length", "body_sha256", "trailers",
   "connection_id" (1, 2, ... per accepted connection), "request_index_on_connection"
   (0 for the first request on a connection), "peer" ("ip:port"), "tls" (served over TLS),
   "time" (unix seconds)}

Every response carries ``X-Origin-Name``, ``X-Origin-Connection-Id`` and
``X-Origin-Request-Index`` so a test can tell which origin and connection served it even when
the body is a pattern.

Special paths (the ``/__`` ones are never counted in stats nor logged, and a connection
whose first request is a ``/__`` path is not counted as a connection):

  <health path>                 answers the health status (default 200), body "ok"/"unhealthy";
                                query parameters still apply (e.g. /health?delay_ms=50)
  GET  /__stats                 {"name", "connections_accepted", "connections_active",
                                 "requests", "requests_by_path", "bad_requests",
                                 "health_status", "health_delay_ms", "tls_connections",
                                 "in_flight", "max_in_flight" (requests being served at
                                 once, and the most since the last reset)}
  GET  /__log                   JSON list of the reports of received requests (no bodies),
                                oldest first, bounded to the last 10000
  GET  /__bad                   JSON list of malformed requests that got a 400/431/505:
                                {"reason", "status", "head" (raw, latin-1), "peer", "time"}
  POST /__control/reset_stats   zero every counter and clear /__log and /__bad
  POST /__control/health?status=N[&delay_ms=M]   change the health answer at run time
  POST /__control/close_idle    FIN-close every idle (between requests) test connection;
                                answers {"closed": N}
  POST /__control/answer?status=N[&every=K]   requests other than health probes answer N
                                (every K-th of them, counting from this call); status=0 back
                                to normal. A request's own ?status= still wins.
  GET  /ws...                   with a WebSocket handshake (Upgrade: websocket): 101, then an
                                echo server (see Connection.websocket); counted and
                                logged like any request

Malformed requests (RFC 9112 strict: bare LF, obs-fold, whitespace before a colon, control
characters, invalid method/target/version, missing or repeated Host in HTTP/1.1, both
Content-Length and Transfer-Encoding, differing Content-Lengths, a Transfer-Encoding other
than exactly ``chunked``, bad chunk framing) are answered 400 (505 for an unsupported version,
431 for a head over 1 MiB) and the connection is closed; they are counted in ``bad_requests``,
listed at ``/__bad``, and never appear in ``/__log``.

SIGTERM and SIGINT exit at once.
"""

import argparse
import base64
import collections
import fcntl
import hashlib
import json
import os
import re
import signal
import socket
import struct
import sys
import termios
import threading
import time
import traceback
from http import HTTPStatus
from urllib.parse import parse_qsl

# --------------------------------------------------------------------------------------------
# Body pattern, shared with harness.py (which imports this module).
#
# Byte i of every pattern body is PATTERN[i % len(PATTERN)]. The period is 61, a prime, so a
# dropped, repeated or reordered block of any power-of-two size changes the bytes and a content
# check catches it, not only a length check.

PATTERN = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXY"
assert len(PATTERN) == 61

BLOCK = 1 << 20  # socket I/O block: recv_into / sendall granularity for bodies

# One preallocated buffer holding the pattern from every phase: pattern_view() slices it
# without copying.
_PATTERN_BUF = PATTERN * (BLOCK // len(PATTERN) + 2)


def pattern_view(offset, length):
    """Zero-copy view of the pattern bytes [offset, offset + length); length <= BLOCK."""
    if length > BLOCK:
        raise ValueError("pattern_view length above BLOCK")
    start = offset % len(PATTERN)
    return memoryview(_PATTERN_BUF)[start:start + length]


def pattern_bytes(n, offset=0):
    """The n pattern bytes that start at stream offset `offset`, as one bytes object."""
    out = bytearray()
    pos = offset
    end = offset + n
    while pos < end:
        k = min(BLOCK, end - pos)
        out += pattern_view(pos, k)
        pos += k
    return bytes(out)


def pattern_chunks(n, block=BLOCK, offset=0):
    """Yield the pattern bytes [offset, offset + n) as memoryviews of at most `block` bytes."""
    block = max(1, min(block, BLOCK))
    pos = offset
    end = offset + n
    while pos < end:
        k = min(block, end - pos)
        yield pattern_view(pos, k)
        pos += k


# --------------------------------------------------------------------------------------------
# HTTP syntax (RFC 9110 / 9112)

MAX_LINE = 64 * 1024        # one chunk-size or trailer line
MAX_HEAD = 1024 * 1024      # request line + header fields (the reader buffer holds it)

_TCHAR = (b"!#$%&'*+-.^_`|~0123456789"
          b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
# field-value bytes: HTAB, SP, VCHAR, obs-text
_VALUE_CHARS = bytes([0x09]) + bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100))
# request-target bytes: visible ASCII only
_TARGET_CHARS = bytes(range(0x21, 0x7F))
_VERSION_RE = re.compile(rb"HTTP/([0-9])\.([0-9])")
_HEX_RE = re.compile(rb"[0-9A-Fa-f]{1,16}")
_CHUNK_SIZE_RE = re.compile(rb"([0-9A-Fa-f]{1,16})\r\n")
_DIGITS_RE = re.compile(r"[0-9]{1,19}")
_HOST_RE = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(:[0-9]*)?")
_CHUNK_EXT_CHARS = _VALUE_CHARS  # loose: anything printable, no CTL but HTAB

GARBAGE = b"\x00\x01\x02 this is not HTTP \xff\xfe\xfd\r\n\r\nSSH-2.0-garbage\r\n"


def _only(data, allowed):
    """True when every byte of `data` is in `allowed`."""
    return not data.translate(None, allowed)


class BadRequest(Exception):
    """The request is malformed: answer `status` and close."""

    def __init__(self, reason, status=400):
        super().__init__(reason)
        self.reason = reason
        self.status = status


class PeerClosed(Exception):
    """The peer closed the connection in the middle of a request."""


class Abort(Exception):
    """reset_after / close_after reached its byte budget."""


class Reader:
    """Buffered reader over a socket, built around one preallocated buffer.

    Lines (request head, chunk sizes, trailers) are parsed from the buffer; body bytes are
    hashed straight out of it, and once it is empty received directly into it in BLOCK-sized
    recv_into calls, so a large body costs no allocation and no copy.
    """

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray(max(BLOCK, MAX_HEAD))
        self.mv = memoryview(self.buf)
        self.r = 0  # first unread byte
        self.w = 0  # end of received bytes

    def buffered(self):
        return self.w - self.r

    def _fill(self):
        """Receive more bytes after the buffered ones; return how many (0 at EOF)."""
        if self.r == self.w:
            self.r = self.w = 0
        elif self.w == len(self.buf):
            n = self.w - self.r
            self.buf[0:n] = self.buf[self.r:self.w]  # the right side is a copy: safe
            self.r, self.w = 0, n
        n = self.sock.recv_into(self.mv[self.w:])
        self.w += n
        return n

    def readline(self, limit):
        """Return the next line with its LF; b"" at EOF before any byte.

        Raises PeerClosed at EOF in the middle of a line, BadRequest(431) beyond `limit`.
        """
        scanned = 0
        while True:
            i = self.buf.find(b"\n", self.r + scanned, self.w)
            if i >= 0:
                line = bytes(self.buf[self.r:i + 1])
                self.r = i + 1
                if len(line) > limit:
                    raise BadRequest("line too long", 431)
                return line
            scanned = self.w - self.r
            if scanned > limit or scanned >= len(self.buf):
                raise BadRequest("line too long", 431)
            if self._fill() == 0:
                if scanned == 0:
                    return b""
                raise PeerClosed()

    def consume(self, n, hasher):
        """Read exactly n body bytes into hasher.update; raise PeerClosed at EOF."""
        while n > 0:
            if self.r == self.w:
                # Nothing buffered: receive straight into the buffer and hash it in place.
                self.r = self.w = 0
                k = self.sock.recv_into(self.mv, min(n, BLOCK))
                if k == 0:
                    raise PeerClosed()
                hasher.update(self.mv[:k])
                n -= k
                continue
            k = min(n, self.w - self.r)
            hasher.update(self.mv[self.r:self.r + k])
            self.r += k
            n -= k


class BodyHash:
    """sha256 plus a byte count."""

    def __init__(self):
        self.h = hashlib.sha256()
        self.length = 0

    def update(self, data):
        self.h.update(data)
        self.length += len(data)


class Request:
    __slots__ = ("method", "target", "path", "query", "version", "minor", "headers",
                 "raw_head", "content_length", "chunked", "keep_alive", "expect_continue")


def parse_head(lines):
    """Parse and validate a request head (list of CRLF-terminated lines, without the final
    empty line). Raise BadRequest on anything RFC 9112 forbids."""
    for line in lines:
        if not line.endswith(b"\r\n"):
            raise BadRequest("bare LF in head")
    req = Request()
    req.raw_head = b"".join(lines)

    # Request line: method SP request-target SP HTTP-version
    parts = lines[0][:-2].split(b" ")
    if len(parts) != 3:
        raise BadRequest("malformed request line (HTTP/0.9 or stray spaces)")
    method, target, version = parts
    if not method or not _only(method, _TCHAR):
        raise BadRequest("invalid method token")
    if not target or not _only(target, _TARGET_CHARS):
        raise BadRequest("invalid request-target")
    m = _VERSION_RE.fullmatch(version)
    if not m:
        raise BadRequest("invalid HTTP version")
    if m.group(1) != b"1" or m.group(2) not in (b"0", b"1"):
        raise BadRequest("unsupported HTTP version", 505)
    req.method = method.decode("ascii")
    req.target = target.decode("ascii")
    req.version = version.decode("ascii")
    req.minor = int(m.group(2))

    # Header fields: field-name ":" OWS field-value OWS
    headers = []
    for line in lines[1:]:
        body = line[:-2]
        if body[:1] in (b" ", b"\t"):
            raise BadRequest("obs-fold in head")
        colon = body.find(b":")
        if colon <= 0:
            raise BadRequest("header line without a field name and colon")
        name = body[:colon]
        if not _only(name, _TCHAR):
            raise BadRequest("invalid field name (whitespace before colon?)")
        value = body[colon + 1:].strip(b" \t")
        if not _only(value, _VALUE_CHARS):
            raise BadRequest("control character in field value")
        headers.append((name.decode("latin-1"), value.decode("latin-1")))
    req.headers = headers

    # Target -> path and query
    if req.target.startswith("/"):
        path, _, query = req.target.partition("?")
    elif req.target == "*":
        path, query = "*", ""
    elif "://" in req.target:  # absolute-form
        rest = req.target.split("://", 1)[1]
        slash = rest.find("/")
        path_q = rest[slash:] if slash >= 0 else "/"
        path, _, query = path_q.partition("?")
    else:
        raise BadRequest("invalid request-target form")
    req.path, req.query = path, query

    # Framing
    def values(name):
        return [v for n, v in headers if n.lower() == name]

    cls = values("content-length")
    tes = values("transfer-encoding")
    req.content_length = 0
    req.chunked = False
    if cls and tes:
        raise BadRequest("both Content-Length and Transfer-Encoding")
    if cls:
        items = [item.strip() for v in cls for item in v.split(",")]
        if not all(_DIGITS_RE.fullmatch(item) for item in items):
            raise BadRequest("invalid Content-Length")
        if len(set(int(item) for item in items)) != 1:
            raise BadRequest("differing Content-Length values")
        req.content_length = int(items[0])
    if tes:
        if req.minor == 0:
            raise BadRequest("Transfer-Encoding in HTTP/1.0")
        codings = [c.strip().lower() for v in tes for c in v.split(",")]
        if codings != ["chunked"]:
            raise BadRequest("Transfer-Encoding other than a single chunked")
        req.chunked = True

    # Host
    hosts = values("host")
    if req.minor == 1 and len(hosts) != 1:
        raise BadRequest("HTTP/1.1 request without exactly one Host")
    if len(hosts) > 1:
        raise BadRequest("several Host fields")
    if hosts and not _HOST_RE.fullmatch(hosts[0]):
        raise BadRequest("invalid Host")

    # Connection management
    tokens = {t.strip().lower() for v in values("connection") for t in v.split(",")}
    req.keep_alive = ("close" not in tokens) if req.minor == 1 else ("keep-alive" in tokens)
    req.expect_continue = any(v.strip().lower() == "100-continue" for v in values("expect"))
    return req


def read_head(reader, max_head=MAX_HEAD):
    """Read one request head; return its lines (without the empty line) or None at a clean EOF."""
    line = reader.readline(max_head)
    skipped = 0
    while line in (b"\r\n", b"\n") and skipped < 16:  # RFC 9112 2.2: ignore leading CRLFs
        if line == b"\n":
            raise BadRequest("bare LF in head")
        skipped += 1
        line = reader.readline(max_head)
    if not line:
        return None
    lines = [line]
    total = len(line)
    while True:
        line = reader.readline(max_head)
        if not line:
            raise PeerClosed()
        total += len(line)
        if total > max_head:
            raise BadRequest("request head too large", 431)
        if line == b"\r\n":
            return lines
        if line == b"\n":
            raise BadRequest("bare LF in head")
        lines.append(line)


def read_chunked(reader, hasher):
    """Decode a chunked body into hasher; return the trailer fields (validated loosely)."""
    buf = reader.buf
    while True:
        # Fast path: a plain "HEX\r\n" size line already in the buffer (no copy).
        m = _CHUNK_SIZE_RE.match(buf, reader.r, reader.w)
        if m:
            reader.r = m.end()
            size = int(m.group(1), 16)
        else:
            line = reader.readline(MAX_LINE)
            if not line:
                raise PeerClosed()
            if not line.endswith(b"\r\n"):
                raise BadRequest("bare LF in chunk size line")
            size_part, _, ext = line[:-2].partition(b";")
            if not _HEX_RE.fullmatch(size_part):
                raise BadRequest("invalid chunk size")
            if ext and not _only(ext, _CHUNK_EXT_CHARS):
                raise BadRequest("invalid chunk extension")
            size = int(size_part, 16)
        if size == 0:
            break
        reader.consume(size, hasher)
        if reader.w - reader.r >= 2 and buf[reader.r] == 13 and buf[reader.r + 1] == 10:
            reader.r += 2  # fast path: the CRLF after the data is buffered
            continue
        crlf = reader.readline(4)
        if crlf != b"\r\n":
            if not crlf:
                raise PeerClosed()
            raise BadRequest("chunk data not followed by CRLF")
    trailers = []
    total = 0
    while True:
        line = reader.readline(MAX_LINE)
        if not line:
            raise PeerClosed()
        total += len(line)
        if total > MAX_HEAD:
            raise BadRequest("trailer section too large", 431)
        if line == b"\r\n":
            return trailers
        if not line.endswith(b"\r\n"):
            raise BadRequest("bare LF in trailer section")
        name, colon, value = line[:-2].partition(b":")
        if not colon or not name or not _only(name, _TCHAR):
            raise BadRequest("malformed trailer field")
        value = value.strip(b" \t")
        if not _only(value, _VALUE_CHARS):
            raise BadRequest("control character in trailer field")
        trailers.append((name.decode("latin-1"), value.decode("latin-1")))


# --------------------------------------------------------------------------------------------
# Server state


class State:
    """Counters, logs and run-time settings shared by every connection thread."""

    def __init__(self, args):
        self.lock = threading.Lock()
        self.name = args.name
        self.health_path = args.health_path
        self.health_status = args.health_status
        self.health_delay_ms = args.health_delay_ms
        self.delay_ms = args.delay_ms
        self.idle_timeout = args.idle_timeout
        self.verbose = args.verbose
        self.next_connection_id = 0
        self.connections = {}  # id -> Connection, open test connections (for close_idle)
        self.tls_context = None  # --tls-cert
        self.tls_connections = 0  # connections served over TLS (never reset)
        self.answer_status = None  # /__control/answer
        self.answer_every = 1
        self.answer_seen = 0
        self.in_flight = 0  # requests being served now (never reset)
        self.reset_locked()

    def reset_locked(self):
        self.connections_accepted = 0
        self.requests = 0
        self.requests_by_path = collections.Counter()
        self.bad_requests = 0
        self.log = collections.deque(maxlen=10000)
        self.bad = collections.deque(maxlen=1000)
        self.max_in_flight = self.in_flight

    def stats(self):
        with self.lock:
            return {
                "name": self.name,
                "connections_accepted": self.connections_accepted,
                "connections_active": sum(1 for c in self.connections.values() if c.counted),
                "requests": self.requests,
                "requests_by_path": dict(self.requests_by_path),
                "bad_requests": self.bad_requests,
                "health_status": self.health_status,
                "health_delay_ms": self.health_delay_ms,
                "tls_connections": self.tls_connections,
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
            }


class Params:
    """Per-request behaviour, from the query string and x-origin-* headers."""

    INTS = ("status", "size", "chunk_size", "delay_ms", "body_delay_ms", "reset_after",
            "close_after", "reset_before", "keepalive", "garbage", "chunked", "continue")
    LISTS = ("header", "trailer")

    def __init__(self, req):
        self.values = {}
        self.lists = {name: [] for name in self.LISTS}
        pairs = parse_qsl(req.query, keep_blank_values=True)
        pairs += [(n[len("x-origin-"):].lower(), v) for n, v in req.headers
                  if n.lower().startswith("x-origin-")]
        for name, value in pairs:
            name = name.replace("-", "_")
            if name in self.LISTS:
                self.lists[name].append(value)
            elif name in self.INTS:
                try:
                    self.values[name] = int(value)
                except ValueError:
                    raise BadParam(f"origin: parameter {name}={value!r} is not an integer")
            # Unknown names are ignored: tests may put any query on a path.

    def get(self, name, default=None):
        return self.values.get(name, default)


class BadParam(Exception):
    """A test passed an unusable parameter: answered 400 but not counted as malformed."""


def _header_pairs(items, what):
    out = []
    for item in items:
        name, colon, value = item.partition(":")
        if not colon:
            raise BadParam(f"origin: {what}={item!r} is not Name:Value")
        out.append((name.strip(), value.strip()))
    return out


def _reason(status):
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Status"


# --------------------------------------------------------------------------------------------
# Connections


class Out:
    """Response writer that enforces the reset_after / close_after byte budget."""

    def __init__(self, sock, limit):
        self.sock = sock
        self.limit = limit
        self.sent = 0

    def send(self, data):
        if self.limit is None:
            self.sock.sendall(data)
            self.sent += len(data)
            return
        remaining = self.limit - self.sent
        if len(data) < remaining:
            self.sock.sendall(data)
            self.sent += len(data)
            return
        self.sock.sendall(memoryview(data)[:remaining])
        self.sent = self.limit
        raise Abort()


class Connection:
    def __init__(self, state, sock, peer):
        self.state = state
        self.sock = sock
        self.peer = f"{peer[0]}:{peer[1]}"
        self.reader = Reader(sock)
        self.counted = True  # counted as a test connection (not a /__ control one)
        self.idle = False
        self.index = 0
        self.in_request = False  # counted in state.in_flight
        with state.lock:
            state.next_connection_id += 1
            self.id = state.next_connection_id
            state.connections_accepted += 1
            state.connections[self.id] = self

    # ---- closing --------------------------------------------------------------------------

    def _wait_sent(self, timeout=5.0):
        """Wait until the kernel send queue is empty (all bytes sent and acked)."""
        deadline = time.monotonic() + timeout
        buf = bytearray(4)
        while time.monotonic() < deadline:
            try:
                fcntl.ioctl(self.sock.fileno(), termios.TIOCOUTQ, buf)
            except OSError:
                return
            if struct.unpack("i", buf)[0] == 0:
                return
            time.sleep(0.002)

    def reset(self):
        """Abortive close: RST now."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.sock.close()

    def close_gracefully(self, drain_seconds=2.0):
        """FIN, then read and discard what the peer still sends (so that close() does not turn
        into an RST that could destroy our last response in the peer's buffers)."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
            self.sock.settimeout(drain_seconds)
            deadline = time.monotonic() + drain_seconds
            drained = 0
            while time.monotonic() < deadline and drained < (64 << 20):
                n = self.sock.recv_into(self.reader.mv, BLOCK)
                if n == 0:
                    break
                drained += n
        except OSError:
            pass
        self.sock.close()

    # ---- main loop --------------------------------------------------------------------------

    def start_tls_if_asked(self):
        """With --tls-cert, a connection whose first byte starts a TLS handshake is served
        over TLS; others stay plain (so the harness's /__ control requests still work)."""
        context = self.state.tls_context
        if context is None:
            return
        first = self.sock.recv(1, socket.MSG_PEEK)
        if first == b"\x16":
            self.sock = context.wrap_socket(self.sock, server_side=True)
            self.reader = Reader(self.sock)
            with self.state.lock:
                self.state.tls_connections += 1

    def serve(self):
        try:
            self.start_tls_if_asked()
            while True:
                try:
                    keep = self.serve_one()
                finally:
                    self.end_request()
                if not keep:
                    break
                self.index += 1
        except (PeerClosed, ConnectionError, TimeoutError, OSError):  # ssl.SSLError is one
            pass
        except Exception:  # a bug in this file: say so loudly, the test will fail anyway
            traceback.print_exc(file=sys.stderr)
        finally:
            with self.state.lock:
                self.state.connections.pop(self.id, None)
            try:
                self.sock.close()
            except OSError:
                pass

    def end_request(self):
        if self.in_request:
            self.in_request = False
            with self.state.lock:
                self.state.in_flight -= 1

    def serve_one(self):
        """Serve one request; return True to keep the connection for the next one."""
        state = self.state
        self.idle = self.reader.buffered() == 0
        if state.idle_timeout and self.idle:
            self.sock.settimeout(state.idle_timeout)
        lines = None
        try:
            lines = read_head(self.reader)
            if lines is None:
                return False  # clean close between requests
            self.idle = False
            if state.idle_timeout:
                self.sock.settimeout(None)
            req = parse_head(lines)
        except BadRequest as e:
            self.idle = False
            # The head as received; when it could not even be split into lines, whatever the
            # buffer holds.
            raw = b"".join(lines) if lines else bytes(self.reader.buf[:self.reader.w])
            self.bad_request(e, raw)
            return False

        if req.path.startswith("/__"):
            return self.control(req)
        if req.path.startswith("/ws") and self.websocket_key(req) is not None:
            with state.lock:
                state.requests += 1
                state.requests_by_path[req.path] += 1
            self.append_log(self.report(req, None, None))
            return self.websocket(req)

        with state.lock:
            state.requests += 1
            state.requests_by_path[req.path] += 1
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
        self.in_request = True
        if state.verbose:
            print(f"origin {state.name}: {self.peer} #{self.id}.{self.index} "
                  f"{req.method} {req.target}", file=sys.stderr, flush=True)

        try:
            params = Params(req)
            extra_headers = _header_pairs(params.lists["header"], "header")
            trailers_out = _header_pairs(params.lists["trailer"], "trailer")
        except BadParam as e:
            try:
                self.read_body(req)
            except BadRequest as bad:
                self.bad_request(bad, req.raw_head)
                return False
            return self.send_simple(req, 400, str(e).encode() + b"\n", "text/plain")

        if params.get("reset_before"):
            self.append_log(self.report(req, None, None))
            self.reset()
            return False

        hasher = BodyHash()
        try:
            if req.expect_continue and req.minor == 1 and params.get("continue", 1) and (
                    req.chunked or req.content_length > 0):
                self.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            trailers_in = self.read_body(req, hasher)
        except BadRequest as e:
            self.bad_request(e, req.raw_head)
            return False
        report = self.report(req, hasher, trailers_in)
        self.append_log(report)

        # ---- the response -----------------------------------------------------------------
        is_health = req.path == state.health_path
        if is_health:
            with state.lock:
                default_status, default_delay = state.health_status, state.health_delay_ms
        else:
            default_status, default_delay = 200, state.delay_ms
            with state.lock:
                if state.answer_status is not None:
                    state.answer_seen += 1
                    if state.answer_seen % state.answer_every == 0:
                        default_status = state.answer_status
        status = params.get("status", default_status)
        delay_ms = params.get("delay_ms", default_delay)
        if delay_ms > 0:
            time.sleep(delay_ms / 1000.0)

        if params.get("reset_after") is not None:
            out, on_limit = Out(self.sock, params.get("reset_after")), "reset"
        elif params.get("close_after") is not None:
            out, on_limit = Out(self.sock, params.get("close_after")), "close"
        else:
            out, on_limit = Out(self.sock, None), None

        if params.get("garbage"):
            try:
                out.send(GARBAGE)
            except Abort:
                pass
            self.finish_abort(on_limit or "close")
            return False

        keep_alive = req.keep_alive and params.get("keepalive", 1) != 0
        size = params.get("size")
        chunked = bool(params.get("chunked"))
        if size is not None:
            body, body_len, ctype = None, max(0, size), "application/octet-stream"
        elif is_health:
            body = b"ok\n" if 200 <= status < 400 else b"unhealthy\n"
            body_len, ctype = len(body), "text/plain"
        else:
            body = json.dumps(report).encode()
            body_len, ctype = len(body), "application/json"
        no_body_status = status < 200 or status in (204, 304)
        send_body = not no_body_status and req.method != "HEAD"

        head = [f"HTTP/1.1 {status} {_reason(status)}\r\n",
                f"X-Origin-Name: {state.name}\r\n",
                f"X-Origin-Connection-Id: {self.id}\r\n",
                f"X-Origin-Request-Index: {self.index}\r\n"]
        if not no_body_status:
            head.append(f"Content-Type: {ctype}\r\n")
            if chunked:
                head.append("Transfer-Encoding: chunked\r\n")
            else:
                head.append(f"Content-Length: {body_len}\r\n")
        if not keep_alive:
            head.append("Connection: close\r\n")
        elif req.minor == 0:
            head.append("Connection: keep-alive\r\n")
        for name, value in extra_headers:
            head.append(f"{name}: {value}\r\n")
        head.append("\r\n")
        head = "".join(head).encode("latin-1")

        body_delay = params.get("body_delay_ms", 0)
        try:
            if not send_body:
                out.send(head)
            elif body is not None and not chunked and body_delay <= 0:
                out.send(head + body)  # one write: no Nagle / delayed-ACK stalls
            else:
                out.send(head)
                if body_delay > 0:
                    time.sleep(body_delay / 1000.0)
                self.send_body(out, body, body_len, chunked,
                               params.get("chunk_size", 65536), trailers_out)
        except Abort:
            self.finish_abort(on_limit)
            return False
        if on_limit:  # the budget was larger than the response: abort after it anyway
            self.finish_abort(on_limit)
            return False
        if not keep_alive:
            self.close_gracefully()
            return False
        return True

    # ---- pieces -----------------------------------------------------------------------------

    # ---- WebSocket (RFC 6455): an echo server --------------------------------------------

    @staticmethod
    def websocket_key(req):
        headers = {n.lower(): v for n, v in req.headers}
        if "websocket" not in headers.get("upgrade", "").lower():
            return None
        if "upgrade" not in [t.strip().lower() for t in headers.get("connection", "").split(",")]:
            return None
        return headers.get("sec-websocket-key")

    def read_exact(self, n):
        out = bytearray()
        while len(out) < n:
            if self.reader.r == self.reader.w and self.reader._fill() == 0:
                raise PeerClosed()
            k = min(n - len(out), self.reader.w - self.reader.r)
            out += self.reader.buf[self.reader.r:self.reader.r + k]
            self.reader.r += k
        return bytes(out)

    @staticmethod
    def ws_frame(opcode, payload):
        head = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            head += bytes([n])
        elif n < 65536:
            head += bytes([126]) + struct.pack("!H", n)
        else:
            head += bytes([127]) + struct.pack("!Q", n)
        return head + payload

    def websocket(self, req):
        """Answers the handshake with 101, then echoes every data frame (text, binary) back
        unmasked, answers ping with pong and close with close. ``hello=1`` sends a text frame
        "hello" in the same write as the 101 head; the response carries the request's
        X-Forwarded-For as X-Origin-Forwarded-For."""
        key = self.websocket_key(req)
        accept = base64.b64encode(
            hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        forwarded = next((v for n, v in req.headers if n.lower() == "x-forwarded-for"), "")
        head = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n"
                b"X-Origin-Name: " + self.state.name.encode() + b"\r\n"
                b"X-Origin-Forwarded-For: " + forwarded.encode() + b"\r\n\r\n")
        if "hello=1" in req.query:
            head += self.ws_frame(1, b"hello")
        self.sock.sendall(head)
        try:
            while True:
                b0, b1 = self.read_exact(2)
                opcode, masked, n = b0 & 0x0F, b1 & 0x80, b1 & 0x7F
                if n == 126:
                    n = struct.unpack("!H", self.read_exact(2))[0]
                elif n == 127:
                    n = struct.unpack("!Q", self.read_exact(8))[0]
                mask = self.read_exact(4) if masked else b"\0\0\0\0"
                data = bytes(c ^ mask[i % 4] for i, c in enumerate(self.read_exact(n)))
                if opcode == 8:  # close: answer it, then close the TCP connection
                    self.sock.sendall(self.ws_frame(8, data[:2]))
                    return False
                if opcode == 9:
                    self.sock.sendall(self.ws_frame(10, data))
                elif opcode in (1, 2):
                    self.sock.sendall(self.ws_frame(opcode, data))
        except (PeerClosed, OSError):
            return False

    def read_body(self, req, hasher=None):
        """Read the whole request body into hasher; return the trailers (chunked only)."""
        hasher = hasher or BodyHash()
        if req.chunked:
            return read_chunked(self.reader, hasher)
        self.reader.consume(req.content_length, hasher)
        return []

    def send_body(self, out, body, body_len, chunked, chunk_size, trailers):
        if body is not None:
            if chunked:
                if body:
                    out.send(b"%x\r\n" % len(body) + body + b"\r\n")
            else:
                out.send(body)
        else:
            step = BLOCK if not chunked else max(1, chunk_size)
            pos = 0
            while pos < body_len:
                n = min(step, body_len - pos)
                if chunked:
                    if n <= 256 * 1024:  # small chunk: one write
                        out.send(b"%x\r\n" % n + pattern_view(pos, n) + b"\r\n")
                    else:
                        out.send(b"%x\r\n" % n)
                        for view in pattern_chunks(n, BLOCK, pos):
                            out.send(view)
                        out.send(b"\r\n")
                else:
                    out.send(pattern_view(pos, n))
                pos += n
        if chunked:
            tail = b"0\r\n" + b"".join(f"{n}: {v}\r\n".encode("latin-1") for n, v in trailers)
            out.send(tail + b"\r\n")

    def finish_abort(self, how):
        if how == "reset":
            self._wait_sent()
            self.reset()
        else:
            self.close_gracefully()

    def send_simple(self, req, status, body, ctype, keep_alive=None):
        keep = req.keep_alive if keep_alive is None else keep_alive
        head = (f"HTTP/1.1 {status} {_reason(status)}\r\n"
                f"X-Origin-Name: {self.state.name}\r\n"
                f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                + ("" if keep else "Connection: close\r\n") + "\r\n").encode("latin-1")
        self.sock.sendall(head + (b"" if req.method == "HEAD" else body))
        if not keep:
            self.close_gracefully()
        return keep

    def bad_request(self, err, raw_head):
        state = self.state
        with state.lock:
            state.bad_requests += 1
            state.bad.append({"reason": err.reason, "status": err.status,
                              "head": bytes(raw_head[:8192]).decode("latin-1"),
                              "peer": self.peer, "time": time.time()})
        if state.verbose:
            print(f"origin {state.name}: bad request from {self.peer}: {err.reason}",
                  file=sys.stderr, flush=True)
        body = f"origin {state.name}: {err.reason}\n".encode()
        try:
            self.sock.sendall((f"HTTP/1.1 {err.status} {_reason(err.status)}\r\n"
                               f"X-Origin-Name: {state.name}\r\n"
                               f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
                               "Connection: close\r\n\r\n").encode("latin-1") + body)
        except OSError:
            pass
        self.close_gracefully()

    def report(self, req, hasher, trailers):
        return {
            "name": self.state.name,
            "method": req.method,
            "target": req.target,
            "path": req.path,
            "query": req.query,
            "version": req.version,
            "headers": [[n, v] for n, v in req.headers],
            "body_length": hasher.length if hasher else None,
            "body_sha256": hasher.h.hexdigest() if hasher else None,
            "trailers": [[n, v] for n, v in (trailers or [])],
            "connection_id": self.id,
            "request_index_on_connection": self.index,
            "peer": self.peer,
            "tls": hasattr(self.sock, "cipher"),  # served over --tls-cert's TLS
            "time": time.time(),
        }

    def append_log(self, report):
        with self.state.lock:
            self.state.log.append(report)

    def control(self, req):
        """The /__ paths: stats, logs and run-time controls. Never counted nor logged."""
        state = self.state
        if self.index == 0:
            with state.lock:  # a connection opened for control is not a test connection
                if self.counted:
                    self.counted = False
                    state.connections_accepted -= 1
        try:
            self.read_body(req)
        except BadRequest as e:
            self.bad_request(e, req.raw_head)
            return False
        q = dict(parse_qsl(req.query, keep_blank_values=True))
        path = req.path
        try:
            if path == "/__stats":
                result = state.stats()
            elif path == "/__log":
                with state.lock:
                    result = list(state.log)
            elif path == "/__bad":
                with state.lock:
                    result = list(state.bad)
            elif path in ("/__control/reset_stats", "/__control/reset"):
                with state.lock:
                    state.reset_locked()  # open connections stay open (connections_active)
                result = {"ok": True}
            elif path == "/__control/health":
                with state.lock:
                    if "status" in q:
                        state.health_status = int(q["status"])
                    if "delay_ms" in q:
                        state.health_delay_ms = int(q["delay_ms"])
                    result = {"health_status": state.health_status,
                              "health_delay_ms": state.health_delay_ms}
            elif path == "/__control/answer":
                with state.lock:
                    status = int(q.get("status", "0"))
                    state.answer_status = status if status else None
                    state.answer_every = max(1, int(q.get("every", "1")))
                    state.answer_seen = 0
                    result = {"status": status, "every": state.answer_every}
            elif path == "/__control/close_idle":
                with state.lock:
                    idle = [c for c in state.connections.values()
                            if c.counted and c.idle and c is not self]
                for c in idle:
                    try:
                        c.sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                result = {"closed": len(idle)}
            else:
                return self.send_simple(req, 404, b"unknown control path\n", "text/plain")
        except ValueError as e:
            return self.send_simple(req, 400, f"{e}\n".encode(), "text/plain")
        return self.send_simple(req, 200, json.dumps(result).encode(), "application/json")


# --------------------------------------------------------------------------------------------
# Main


def main(argv=None):
    p = argparse.ArgumentParser(description="meridian test origin")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--name", default=None, help="default: origin-<port>")
    p.add_argument("--health-path", default="/health")
    p.add_argument("--health-status", type=int, default=200)
    p.add_argument("--health-delay-ms", type=int, default=0)
    p.add_argument("--delay-ms", type=int, default=0,
                   help="default delay_ms of every request but health checks (a WAN stand-in)")
    p.add_argument("--idle-timeout", type=float, default=0,
                   help="close keep-alive connections idle this many seconds (0 = never)")
    p.add_argument("--exit-on-stdin-eof", action="store_true",
                   help="exit when stdin closes (the harness uses it so that an origin never "
                        "outlives the test process)")
    p.add_argument("--verbose", action="store_true", help="log every request to stderr")
    p.add_argument("--tls-cert", help="PEM certificate: connections starting a TLS handshake "
                                      "are served over TLS (others stay plain)")
    p.add_argument("--tls-key", help="PEM key of --tls-cert")
    args = p.parse_args(argv)

    def die(*_):
        os._exit(0)

    signal.signal(signal.SIGTERM, die)
    signal.signal(signal.SIGINT, die)

    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    lsock = socket.socket(family, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((args.host, args.port))
    lsock.listen(4096)
    port = lsock.getsockname()[1]
    if args.name is None:
        args.name = f"origin-{port}"
    state = State(args)
    if args.tls_cert:
        import ssl
        state.tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        state.tls_context.load_cert_chain(args.tls_cert, args.tls_key)

    if args.exit_on_stdin_eof:
        def watch_stdin():
            try:
                while sys.stdin.buffer.read(4096):
                    pass
            except OSError:
                pass
            os._exit(0)
        threading.Thread(target=watch_stdin, daemon=True).start()

    sys.stdout.write(f"LISTENING {port}\n")
    sys.stdout.flush()

    while True:
        try:
            sock, peer = lsock.accept()
        except OSError as e:  # EMFILE and friends: back off, keep serving
            print(f"origin {args.name}: accept: {e}", file=sys.stderr, flush=True)
            time.sleep(0.05)
            continue
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        conn = Connection(state, sock, peer)
        threading.Thread(target=conn.serve, name=f"conn-{conn.id}", daemon=True).start()


if __name__ == "__main__":
    main()
