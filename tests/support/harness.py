"""Helpers for meridian's Python integration tests (standard library only).

The integration tests (tests/integration/test_*.py) run under ctest with
PYTHONPATH=tests/support, MERIDIAN_BIN=<built binary> and MERIDIAN_SOURCE_DIR=<repo root>.
Everything here talks to real processes over real sockets on 127.0.0.1.

Overview
--------
Processes
  Origin(...)              test origin server (origin.py) in a subprocess; context manager
  Meridian(config, ...)    the proxy under test in a subprocess; context manager
  RedisServer()            redis-server on a free loopback port; kill / pause / restart
  run_meridian_check(cfg)  `meridian --check --config` -> (exit_code, stdout, stderr)
  meridian_bin()           path of the binary under test
  meridian_argv(args)      the command line that runs it: $MERIDIAN_EMULATOR (e.g.
                           qemu-aarch64-static for a cross-built binary), binary, args

Clients
  HttpConn(host, port)     one raw keep-alive connection; request() / read_response()
  http_request(addr, ...)  one request on a fresh connection
  raw_request(host, port, data) / raw_exchange(...)   bytes in, bytes out (until close/timeout)
  parse_responses(data)    split raw response bytes into Response objects

Bodies
  pattern_bytes(n), pattern_chunks(n), pattern_sha256(n)   the origin's body pattern
  PatternSink, HashSink    streaming checkers for large response bodies
  upload_pattern(conn, method, target, size, chunked=...)   stream a large upload

Utilities
  free_port(), free_ports(n), wait_until(predicate, timeout)

Ports: every Meridian and Origin picks its own free ports, so test files may run in parallel
(ctest -j). See free_port() for the small race that remains.
"""

import atexit
import functools
import hashlib
import io
import json
import os
import re
import selectors
import shutil
import signal
import unittest
import socket
import subprocess
import sys
import tempfile
import threading
import time

SUPPORT_DIR = os.path.dirname(os.path.abspath(__file__))
if SUPPORT_DIR not in sys.path:
    sys.path.insert(0, SUPPORT_DIR)

import origin as _origin  # noqa: E402  (the body pattern lives there, in one place)
from origin import PATTERN, pattern_bytes, pattern_chunks  # noqa: E402,F401  re-exported

ORIGIN_PY = os.path.join(SUPPORT_DIR, "origin.py")
SOURCE_DIR = os.environ.get("MERIDIAN_SOURCE_DIR",
                            os.path.dirname(os.path.dirname(SUPPORT_DIR)))
LOCALHOST = "127.0.0.1"
# The loopback GeoIP database (tests/data/geoip/README.md): 127.0.x.0/24 sources on different
# continents, and two of its client addresses.
LOOPBACK_DB = os.path.join(SOURCE_DIR, "tests/data/geoip/loopback-city.mmdb")
NEW_YORK = "127.0.1.7"
FRANKFURT = "127.0.2.1"

# ============================================================================================
# Small utilities


def free_port(host=LOCALHOST):
    """Return a TCP port that was free on `host` a moment ago.

    The kernel picks an unused port for a socket bound to port 0; we close that socket and
    hand the number out. Race: between this call and the moment the process under test binds
    the port, another process (or an outgoing connection taking it as its ephemeral source
    port) could grab it. That is rare on a test machine; a test that sees EADDRINUSE at start
    up may simply retry. Ports handed out recently by this process are never repeated.
    """
    for _ in range(100):
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        with _ports_lock:
            if port not in _ports_given:
                _ports_given.add(port)
                return port
    raise RuntimeError("free_port: no new free port found")


_ports_given = set()
_ports_lock = threading.Lock()


def free_ports(n, host=LOCALHOST):
    """n distinct free ports (see free_port for the race)."""
    return [free_port(host) for _ in range(n)]


def wait_until(predicate, timeout=5.0, interval=0.02, message=None, ignore=(OSError,)):
    """Poll predicate() until it returns a truthy value, and return that value.

    Raises AssertionError (a test failure, with `message`, the last value and the last
    exception) when `timeout` seconds pass first. Exceptions of the types in `ignore`
    (default: OSError, i.e. connection refused/reset while something starts) count as falsy.
    Tests must poll with a deadline like this rather than sleep a fixed time.
    """
    deadline = time.monotonic() + timeout
    last, last_exc = None, None
    while True:
        try:
            last = predicate()
            if last:
                return last
        except ignore as e:  # noqa: PERF203
            last_exc = e
        if time.monotonic() >= deadline:
            desc = message or getattr(predicate, "__name__", "condition")
            raise AssertionError(f"timed out after {timeout}s waiting for {desc}; "
                                 f"last value {last!r}, last error {last_exc!r}")
        time.sleep(interval)


def split_address(address):
    """'127.0.0.1:80' or '[::1]:80' -> (host, port)."""
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def _tail(text, lines=80):
    parts = text.splitlines()
    return "\n".join(parts[-lines:])


def _read_file(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


# Every child process started here, killed at interpreter exit if still alive (a test that
# crashes must not leave processes holding ports).
_children = set()
_children_lock = threading.Lock()


def _register(proc):
    with _children_lock:
        _children.add(proc)


def _unregister(proc):
    with _children_lock:
        _children.discard(proc)


_temp_files = set()  # removed at exit (origin stderr captures)
# Meridian run directories not removed by a `with` block (a class fixture's start()/stop()
# keeps its logs readable until the end): removed at exit unless MERIDIAN_KEEP_TMP is set.
_temp_dirs = set()


@atexit.register
def _kill_children():
    with _children_lock:
        procs = list(_children)
    for p in procs:
        if p.poll() is None:
            try:
                p.kill()
                p.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass
    for path in list(_temp_files):
        try:
            os.unlink(path)
        except OSError:
            pass
    if not os.environ.get("MERIDIAN_KEEP_TMP"):
        for directory in list(_temp_dirs):
            shutil.rmtree(directory, ignore_errors=True)


def _die_with_parent_argv(argv):
    """Prefix argv so that the child gets SIGKILL when this process dies (PR_SET_PDEATHSIG,
    set by a tiny Python trampoline that then execs the real program: same pid, no
    preexec_fn, which is unsafe in a threaded test). The signal fires when the *thread* that
    started the child exits, so this is used only from the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return list(argv)
    code = ("import ctypes,os,signal,sys;"
            "ctypes.CDLL(None,use_errno=True).prctl(1,signal.SIGKILL);"
            "os.getppid()==int(sys.argv[1]) or os._exit(1);"
            "os.execv(sys.argv[2],sys.argv[2:])")
    return [sys.executable, "-S", "-c", code, str(os.getpid())] + list(argv)


# ============================================================================================
# Bodies


@functools.lru_cache(maxsize=64)
def pattern_sha256(n, offset=0):
    """sha256 hex digest of the n pattern bytes starting at `offset` (cached)."""
    h = hashlib.sha256()
    for view in pattern_chunks(n, offset=offset):
        h.update(view)
    return h.hexdigest()


class HashSink:
    """Body sink that counts and hashes (sha256) what it is given."""

    def __init__(self):
        self.length = 0
        self._h = hashlib.sha256()

    def __call__(self, data):
        self._h.update(data)
        self.length += len(data)

    def hexdigest(self):
        return self._h.hexdigest()


class PatternSink:
    """Body sink that checks, as it streams, that the body is the origin's pattern.

    After the body: .length is the byte count, .mismatch_at the offset of the first wrong
    block (None if every byte matched), and .ok(expected_length) tells both at once.
    """

    def __init__(self, offset=0):
        self.length = 0
        self.offset = offset
        self.mismatch_at = None

    def __call__(self, data):
        data = memoryview(data)
        pos = 0
        while pos < len(data):
            n = min(len(data) - pos, _origin.BLOCK)
            if self.mismatch_at is None and not _equal(
                    data[pos:pos + n], _origin.pattern_view(self.offset + self.length, n)):
                self.mismatch_at = self.length
            self.length += n
            pos += n

    def ok(self, expected_length=None):
        return self.mismatch_at is None and (
            expected_length is None or self.length == expected_length)


def _equal(a, b):
    """Fast equality of two byte memoryviews (memoryview == memoryview is slow for format B,
    fast for Q)."""
    n8 = len(a) // 8 * 8
    if n8 and a[:n8].cast("Q") != b[:n8].cast("Q"):
        return False
    return a[n8:].tobytes() == b[n8:].tobytes()


# ============================================================================================
# HTTP/1.1 client side


class Response:
    """One parsed HTTP response.

    status (int), reason (str), version ("HTTP/1.1"), headers: list of (name, value) in
    received order with original case, body: bytes (None when a sink consumed it),
    body_length, trailers (chunked only), interim: list of 1xx Responses that preceded it,
    framing: "length" | "chunked" | "close" | "none".
    """

    def __init__(self):
        self.status = 0
        self.reason = ""
        self.version = ""
        self.headers = []
        self.body = b""
        self.body_length = 0
        self.trailers = []
        self.interim = []
        self.framing = "none"

    def header(self, name, default=None):
        """First value of header `name` (case-insensitive), or default."""
        name = name.lower()
        for n, v in self.headers:
            if n.lower() == name:
                return v
        return default

    def header_all(self, name):
        """Every value of header `name`, in order."""
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    def has_header(self, name):
        return bool(self.header_all(name))

    @property
    def connection_tokens(self):
        return {t.strip().lower() for v in self.header_all("connection") for t in v.split(",")}

    @property
    def will_close(self):
        """True when the server said it closes the connection after this response."""
        if self.framing == "close" or "close" in self.connection_tokens:
            return True
        return self.version == "HTTP/1.0" and "keep-alive" not in self.connection_tokens

    def text(self):
        return (self.body or b"").decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return (f"<Response {self.status} {self.reason!r} headers={self.headers!r} "
                f"body_length={self.body_length}>")


class ProtocolError(Exception):
    """The peer sent something that is not a valid HTTP/1.1 response."""


class _Reader:
    """Buffered reader over any recv_into(memoryview) -> int function (a socket, or bytes
    via io.BytesIO.readinto). Large bodies go through one preallocated buffer."""

    def __init__(self, recv_into, size=1 << 20):
        self.recv_into = recv_into
        self.buf = bytearray(size)
        self.mv = memoryview(self.buf)
        self.r = 0
        self.w = 0

    def buffered(self):
        return self.w - self.r

    def _fill(self):
        if self.r == self.w:
            self.r = self.w = 0
        elif self.w == len(self.buf):
            if self.r == 0:  # a line longer than the buffer: grow it
                self.buf.extend(bytearray(len(self.buf)))
                self.mv = memoryview(self.buf)
            else:
                n = self.w - self.r
                self.buf[0:n] = self.buf[self.r:self.w]
                self.r, self.w = 0, n
        n = self.recv_into(self.mv[self.w:])
        self.w += n
        return n

    def readline(self):
        """Next line including LF; b"" at EOF before any byte; the partial line at EOF."""
        scanned = 0
        while True:
            i = self.buf.find(b"\n", self.r + scanned, self.w)
            if i >= 0:
                line = bytes(self.buf[self.r:i + 1])
                self.r = i + 1
                return line
            scanned = self.w - self.r
            if self._fill() == 0:
                line = bytes(self.buf[self.r:self.w])
                self.r = self.w
                return line

    def read_exact(self, n, sink):
        """Pass exactly n bytes to sink(memoryview); raise ProtocolError on early EOF."""
        while n > 0:
            if self.r == self.w:
                self.r = self.w = 0
                k = self.recv_into(self.mv[:min(n, len(self.buf))])
                if k == 0:
                    raise ProtocolError(f"connection closed with {n} body bytes missing")
                sink(self.mv[:k])
                n -= k
                continue
            k = min(n, self.w - self.r)
            sink(self.mv[self.r:self.r + k])
            self.r += k
            n -= k

    def read_to_eof(self, sink):
        if self.r < self.w:
            sink(self.mv[self.r:self.w])
        self.r = self.w = 0
        while True:
            k = self.recv_into(self.mv)
            if k == 0:
                return
            sink(self.mv[:k])


def _parse_header_lines(reader):
    """Header (or trailer) lines up to the empty line -> list of (name, value)."""
    fields = []
    while True:
        line = reader.readline()
        if not line:
            raise ProtocolError("connection closed inside the response head")
        if line in (b"\r\n", b"\n"):
            return fields
        name, colon, value = line.rstrip(b"\r\n").partition(b":")
        if not colon:
            raise ProtocolError(f"malformed header line {line!r}")
        fields.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))


def _read_response(reader, method="GET", sink=None, keep_interim=False):
    """Read one response (skipping 1xx interim ones unless keep_interim) from reader."""
    interim = []
    while True:
        line = reader.readline()
        if not line:
            raise ConnectionError("connection closed before any response byte")
        if not line.endswith(b"\n"):
            raise ProtocolError(f"connection closed inside the status line {line!r}")
        m = re.fullmatch(rb"(HTTP/\d\.\d) (\d{3})(?: (.*))?", line.rstrip(b"\r\n"))
        if not m:
            raise ProtocolError(f"malformed status line {line!r}")
        resp = Response()
        resp.version = m.group(1).decode()
        resp.status = int(m.group(2))
        resp.reason = (m.group(3) or b"").decode("latin-1")
        resp.headers = _parse_header_lines(reader)
        if 100 <= resp.status < 200 and resp.status != 101:
            interim.append(resp)
            if keep_interim:
                resp.body = b""
                return resp
            continue
        break
    resp.interim = interim

    chunks = []
    if sink is None:
        def collect(data):
            chunks.append(bytes(data))
        body_sink = collect
    else:
        body_sink = sink

    counted = [0]

    def counting(data):
        counted[0] += len(data)
        body_sink(data)

    te = [c.strip().lower() for v in resp.header_all("transfer-encoding") for c in v.split(",")]
    cl = resp.header_all("content-length")
    if method == "HEAD" or resp.status < 200 or resp.status in (204, 304):
        resp.framing = "none"
    elif te:
        if te[-1] == "chunked":
            resp.framing = "chunked"
            while True:
                size_line = reader.readline()
                if not size_line.endswith(b"\n"):
                    raise ProtocolError("connection closed inside a chunk size line")
                size_hex = size_line.split(b";", 1)[0].strip()
                try:
                    size = int(size_hex, 16)
                except ValueError:
                    raise ProtocolError(f"invalid chunk size line {size_line!r}") from None
                if size == 0:
                    break
                reader.read_exact(size, counting)
                if reader.readline() not in (b"\r\n", b"\n"):
                    raise ProtocolError("chunk data not followed by CRLF")
            resp.trailers = _parse_header_lines(reader)
        else:
            resp.framing = "close"
            reader.read_to_eof(counting)
    elif cl:
        values = {v.strip() for v in cl}
        if len(values) != 1 or not values.copy().pop().isdigit():
            raise ProtocolError(f"invalid Content-Length {cl!r}")
        resp.framing = "length"
        reader.read_exact(int(cl[0]), counting)
    else:
        resp.framing = "close"
        reader.read_to_eof(counting)
    resp.body_length = counted[0]
    resp.body = b"".join(chunks) if sink is None else None
    return resp


def parse_responses(data, methods=None):
    """Parse every complete response in `data` (bytes, e.g. from raw_request).

    Returns (responses, rest): `rest` is the bytes left after the last complete response
    (empty when the data ended cleanly). `methods` lists the request methods in order (so a
    HEAD response is known to have no body); default GET for all.
    """
    bio = io.BytesIO(data)
    reader = _Reader(bio.readinto)
    responses = []
    i = 0
    while True:
        start = bio.tell() - reader.buffered()
        if start >= len(data):
            return responses, b""
        method = methods[i] if methods and i < len(methods) else "GET"
        try:
            responses.append(_read_response(reader, method))
        except (ProtocolError, ConnectionError):
            return responses, data[start:]
        i += 1


def _normalize_headers(headers):
    if headers is None:
        return []
    if isinstance(headers, dict):
        return list(headers.items())
    return list(headers)


class HttpConn:
    """A raw client connection that speaks HTTP/1.1 one request at a time.

        with HttpConn("127.0.0.1", port) as c:
            r1 = c.request("GET", "/a")
            r2 = c.request("POST", "/b", body=b"x" * 10)   # same connection (keep-alive)

    `host` may also be "ip:port" with port omitted. `source_address` binds the local side,
    e.g. "127.0.2.1" to appear as another client (any 127.0.0.0/8 address works on Linux).
    The whole request and response share `timeout` per socket operation.
    """

    def __init__(self, host, port=None, timeout=10.0, source_address=None):
        if port is None:
            host, port = split_address(host)
        self.host, self.port = host, port
        src = None
        if source_address:
            src = (source_address, 0) if isinstance(source_address, str) else source_address
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=src)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = _Reader(self.sock.recv_into)
        self.local_address = self.sock.getsockname()

    # ---- plumbing -------------------------------------------------------------------------

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def settimeout(self, timeout):
        self.sock.settimeout(timeout)

    def send(self, data):
        """Send raw bytes."""
        self.sock.sendall(data)

    def shutdown_write(self):
        """Half-close: send FIN, keep reading."""
        self.sock.shutdown(socket.SHUT_WR)

    def reset(self):
        """Abortive close (RST)."""
        import struct
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def wait_closed(self, timeout=5.0):
        """Wait until the peer closes the connection; return "eof", "reset" or None (still
        open after timeout). Data that arrives meanwhile is discarded."""
        old = self.sock.gettimeout()
        deadline = time.monotonic() + timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.sock.settimeout(left)
                try:
                    if self.reader.buffered():
                        self.reader.r = self.reader.w
                    if self.sock.recv(65536) == b"":
                        return "eof"
                except (TimeoutError, BlockingIOError):
                    return None
                except ConnectionResetError:
                    return "reset"
        finally:
            try:
                self.sock.settimeout(old)
            except OSError:
                pass

    # ---- requests -------------------------------------------------------------------------

    def send_request(self, method, target, headers=None, body=None, *, host=None,
                     chunked=None, version="HTTP/1.1", trailers=None):
        """Send one request without reading the answer.

        headers: list of (name, value) pairs (kept in order, duplicates allowed) or a dict.
        Host is added first unless given in headers or host=False; host=None means
        "<self.host>:<self.port>". body: None, bytes/str, or an iterable of bytes-like pieces
        (streamed). Framing: Content-Length is added for a bytes body unless headers already
        have Content-Length or Transfer-Encoding; an iterable body is sent chunked unless
        headers give a Content-Length; chunked=True forces chunked encoding (the
        Transfer-Encoding header is added unless present); trailers go after the last chunk.
        Nothing is validated: tests may send any header on purpose.
        """
        head, body, is_bytes, chunked = self._build_head(method, target, headers, body, host,
                                                         chunked, version)
        self._send_body(head, body, is_bytes, chunked, trailers)

    def _build_head(self, method, target, headers, body, host, chunked, version):
        headers = _normalize_headers(headers)
        names = {n.lower() for n, _ in headers}
        if isinstance(body, str):
            body = body.encode()
        is_bytes = isinstance(body, (bytes, bytearray, memoryview))
        if chunked is None:
            chunked = (body is not None and not is_bytes and "content-length" not in names) \
                or "transfer-encoding" in names
        if chunked and "transfer-encoding" not in names:
            headers.append(("Transfer-Encoding", "chunked"))
        if is_bytes and not chunked and "content-length" not in names:
            headers.append(("Content-Length", str(len(body))))
        if host is not False and "host" not in names:
            headers.insert(0, ("Host", host or f"{self.host}:{self.port}"))
        head = (f"{method} {target} {version}\r\n"
                + "".join(f"{n}: {v}\r\n" for n, v in headers) + "\r\n")
        return head.encode("latin-1"), body, is_bytes, chunked

    def _send_body(self, head, body, is_bytes, chunked, trailers=None):
        if body is None:
            self.sock.sendall(head)
        elif is_bytes:
            if chunked:
                data = (b"%x\r\n" % len(body) + bytes(body) + b"\r\n") if len(body) else b""
                self.sock.sendall(head + data + self._last_chunk(trailers))
            elif len(body) <= 65536:
                self.sock.sendall(head + bytes(body))
            else:
                self.sock.sendall(head)
                self.sock.sendall(body)
        else:
            self.sock.sendall(head)
            for piece in body:
                if not len(piece):
                    continue  # an empty chunk would end the body
                if chunked:
                    self.sock.sendall(b"%x\r\n" % len(piece))
                    self.sock.sendall(piece)
                    self.sock.sendall(b"\r\n")
                else:
                    self.sock.sendall(piece)
            if chunked:
                self.sock.sendall(self._last_chunk(trailers))
        if chunked and body is None:
            self.sock.sendall(self._last_chunk(trailers))

    @staticmethod
    def _last_chunk(trailers):
        return b"0\r\n" + b"".join(f"{n}: {v}\r\n".encode("latin-1")
                                   for n, v in _normalize_headers(trailers)) + b"\r\n"

    def read_response(self, method="GET", sink=None, keep_interim=False):
        """Read exactly one response. sink(memoryview) receives the body instead of
        Response.body (which is then None); the memoryview is only valid during the call.
        1xx interim responses are skipped (kept in .interim) unless keep_interim=True, in
        which case the first one is returned by itself. Raises ConnectionError when the
        connection closes before any byte, ProtocolError on garbage."""
        return _read_response(self.reader, method, sink, keep_interim)

    def request(self, method, target, headers=None, body=None, *, host=None, chunked=None,
                expect_continue=False, continue_timeout=5.0, sink=None, version="HTTP/1.1",
                trailers=None):
        """Send a request and read its response (see send_request / read_response).

        expect_continue=True sends `Expect: 100-continue`, waits up to continue_timeout for
        the 100 (a final answer instead is returned without sending the body; no answer in
        time sends the body anyway) and then sends the body. The 100 ends up in .interim."""
        if not expect_continue:
            self.send_request(method, target, headers, body, host=host, chunked=chunked,
                              version=version, trailers=trailers)
            return self.read_response(method, sink)
        headers = _normalize_headers(headers) + [("Expect", "100-continue")]
        head, body, is_bytes, chunked = self._build_head(method, target, headers, body, host,
                                                         chunked, version)
        self.sock.sendall(head)
        old = self.sock.gettimeout()
        self.sock.settimeout(continue_timeout)
        try:
            first = self.read_response(method, sink, keep_interim=True)
        except TimeoutError:
            if self.reader.buffered():
                raise
            first = None  # no 100 in time: send the body anyway (RFC 9110 10.1.1)
        finally:
            self.sock.settimeout(old)
        if first is not None and first.status != 100:
            return first  # a final answer: the body was never sent
        self._send_body(b"", body, is_bytes, chunked, trailers)
        resp = self.read_response(method, sink)
        if first is not None:
            resp.interim.insert(0, first)
        return resp


def http_request(address, method="GET", target="/", headers=None, body=None, *, timeout=10.0,
                 source_address=None, **kwargs):
    """One request on a fresh connection, closed afterwards. address: "ip:port"."""
    with HttpConn(address, timeout=timeout, source_address=source_address) as c:
        return c.request(method, target, headers, body, **kwargs)


def http_get(address, target="/", headers=None, **kwargs):
    return http_request(address, "GET", target, headers, **kwargs)


def upload_pattern(conn, method, target, size, *, chunked=False, headers=None, block=1 << 20,
                   sink=None, expect_continue=False):
    """Stream `size` pattern bytes as a request body (Content-Length unless chunked) and
    return the response. The origin reports body_sha256 == pattern_sha256(size)."""
    headers = _normalize_headers(headers)
    if not chunked:
        headers.append(("Content-Length", str(size)))
    return conn.request(method, target, headers, pattern_chunks(size, block), chunked=chunked,
                        sink=sink, expect_continue=expect_continue)


class RawResult:
    """What raw_exchange saw: data (bytes) and how it ended: "eof", "reset" or "timeout"."""

    def __init__(self, data, ended):
        self.data, self.ended = data, ended

    def __repr__(self):
        return f"<RawResult ended={self.ended} data={self.data[:200]!r}...>"


def raw_exchange(host, port, data, timeout=5.0, source_address=None, shutdown_write=False,
                 chunks=None, chunk_interval=0.0):
    """Send raw bytes, then read until the peer closes or `timeout` (total) passes.

    chunks: an optional list of byte strings sent one by one with chunk_interval seconds in
    between (after `data`), for slow or split requests. shutdown_write sends FIN after
    everything. Returns RawResult(data, ended) with ended "eof", "reset" or "timeout".
    """
    deadline = time.monotonic() + timeout
    src = (source_address, 0) if isinstance(source_address, str) else source_address
    out = bytearray()
    with socket.create_connection((host, port), timeout=timeout, source_address=src) as s:
        try:
            if data:
                s.sendall(data)
            for piece in chunks or ():
                if chunk_interval:
                    time.sleep(chunk_interval)
                s.sendall(piece)
            if shutdown_write:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before reading everything: read on
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return RawResult(bytes(out), "timeout")
            s.settimeout(left)
            try:
                chunk = s.recv(1 << 20)
            except TimeoutError:
                return RawResult(bytes(out), "timeout")
            except ConnectionResetError:
                return RawResult(bytes(out), "reset")
            if not chunk:
                return RawResult(bytes(out), "eof")
            out += chunk


def raw_request(host, port, data, timeout=5, source_address=None, **kwargs):
    """Send raw bytes and return everything received until close or timeout (bytes)."""
    return raw_exchange(host, port, data, timeout, source_address, **kwargs).data


# ============================================================================================
# Test origin


class Origin:
    """A test origin (origin.py) in a subprocess.

        with Origin("eu-1") as o:
            o.address            # "127.0.0.1:PORT", for a config's endpoints
            o.stats()["requests"], o.log(), o.set_health(503), o.reset_stats()

    Arguments mirror origin.py's flags: name, port (0 = pick one; after stop(), start()
    reuses the same port), host, health_status, health_path, health_delay_ms, idle_timeout,
    verbose, extra_args. The origin dies with this process (stdin EOF + PDEATHSIG).
    """

    def __init__(self, name=None, *, port=0, host=LOCALHOST, health_status=200,
                 health_path=None, health_delay_ms=None, idle_timeout=None, verbose=False,
                 extra_args=(), start_timeout=10.0):
        self.name = name
        self.host = host
        self.port = port
        self.health_status = health_status
        self.health_path = health_path
        self.health_delay_ms = health_delay_ms
        self.idle_timeout = idle_timeout
        self.verbose = verbose
        self.extra_args = list(extra_args)
        self.start_timeout = start_timeout
        self.proc = None
        self._stderr = None
        self._paused = False

    # ---- life cycle -----------------------------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and not issubclass(exc_type, unittest_skip_types()):
            text = self.stderr_text().strip()
            if text:
                sys.stderr.write(f"\n---- origin {self.name} stderr (tail) ----\n"
                                 f"{_tail(text)}\n")
        self.stop()
        if self._stderr is not None:
            try:
                os.unlink(self._stderr)
            except OSError:
                pass
            _temp_files.discard(self._stderr)
            self._stderr = None

    def start(self):
        """Start the process and wait for LISTENING (raises RuntimeError with its stderr)."""
        if self.running:
            return self
        if self._stderr is None:
            fd, self._stderr = tempfile.mkstemp(prefix="origin-", suffix=".stderr")
            os.close(fd)
            _temp_files.add(self._stderr)
        argv = [sys.executable, "-S", ORIGIN_PY, "--host", self.host, "--port", str(self.port),
                "--health-status", str(self.health_status), "--exit-on-stdin-eof"]
        if self.name:
            argv += ["--name", self.name]
        if self.health_path:
            argv += ["--health-path", self.health_path]
        if self.health_delay_ms is not None:
            argv += ["--health-delay-ms", str(self.health_delay_ms)]
        if self.idle_timeout:
            argv += ["--idle-timeout", str(self.idle_timeout)]
        if self.verbose:
            argv.append("--verbose")
        argv += self.extra_args
        with open(self._stderr, "ab") as err:
            self.proc = subprocess.Popen(_die_with_parent_argv(argv), stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=err)
        _register(self.proc)
        line = self._read_line(self.start_timeout)
        m = re.fullmatch(r"LISTENING (\d+)\s*", line or "")
        if not m:
            self.stop()
            raise RuntimeError(f"origin {self.name} did not start (got {line!r}); stderr:\n"
                               f"{_tail(self.stderr_text())}")
        self.port = int(m.group(1))
        if not self.name:
            self.name = f"origin-{self.port}"
        self._paused = False
        return self

    def _read_line(self, timeout):
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        buf = b""
        try:
            while b"\n" not in buf:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    return None
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    return buf.decode(errors="replace") or None
                buf += chunk
        finally:
            sel.close()
        return buf.decode(errors="replace").split("\n", 1)[0]

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=5.0):
        """SIGTERM (SIGKILL after timeout) and wait. The port stays reserved for start()."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            try:
                if self._paused:
                    proc.send_signal(signal.SIGCONT)
                proc.terminate()
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for f in (proc.stdin, proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        _unregister(proc)
        self._paused = False

    def kill(self):
        """SIGKILL: the origin dies mid-flight, as in a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        self.stop()

    def pause(self):
        """SIGSTOP: connections are still accepted by the kernel (backlog) but nothing is
        answered, like a black-holed host. resume() undoes it."""
        self.proc.send_signal(signal.SIGSTOP)
        self._paused = True

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)
        self._paused = False

    # ---- addressing -----------------------------------------------------------------------

    @property
    def address(self):
        """"127.0.0.1:PORT" (the form meridian's endpoints take)."""
        return f"{self.host}:{self.port}" if ":" not in self.host else f"[{self.host}]:{self.port}"

    def url(self, path="/"):
        return f"http://{self.address}{path}"

    def stderr_text(self):
        return _read_file(self._stderr) if self._stderr else ""

    # ---- control API ----------------------------------------------------------------------

    def _control(self, method, path):
        resp = http_request(self.address, method, path, [("Connection", "close")], timeout=10)
        if resp.status != 200:
            raise RuntimeError(f"origin {self.name}: {method} {path} -> {resp.status} "
                               f"{resp.text()}")
        return resp.json()

    def stats(self):
        """{"name", "connections_accepted", "connections_active", "requests",
        "requests_by_path", "bad_requests", "health_status", "health_delay_ms"}"""
        return self._control("GET", "/__stats")

    def requests(self, path=None):
        """Requests received so far, optionally only those for `path`."""
        s = self.stats()
        return s["requests"] if path is None else s["requests_by_path"].get(path, 0)

    def log(self, include_health=True, path=None):
        """Reports of the requests received (oldest first, last 10000), optionally without
        health probes or only for one path."""
        entries = self._control("GET", "/__log")
        health = self.health_path or "/health"
        if not include_health:
            entries = [e for e in entries if e["path"] != health]
        if path is not None:
            entries = [e for e in entries if e["path"] == path]
        return entries

    def bad_requests(self):
        """Malformed requests the origin refused (see origin.py /__bad)."""
        return self._control("GET", "/__bad")

    def reset_stats(self):
        """Zero the counters and clear the log and the bad-request list."""
        self._control("POST", "/__control/reset_stats")

    def set_health(self, status, delay_ms=None):
        """Change what the health path answers (and optionally how slowly)."""
        q = f"status={int(status)}"
        if delay_ms is not None:
            q += f"&delay_ms={int(delay_ms)}"
        return self._control("POST", f"/__control/health?{q}")

    def set_answer(self, status, every=1):
        """Answer `status` to every `every`-th request other than health probes (0: normal)."""
        return self._control("POST", f"/__control/answer?status={int(status)}&every={int(every)}")

    def close_idle(self):
        """FIN-close every idle keep-alive connection to the origin; returns how many."""
        return self._control("POST", "/__control/close_idle")["closed"]


# ============================================================================================
# Redis


class RedisServer:
    """A real redis-server (Debian's package) on a free 127.0.0.1 port, without persistence.

        with RedisServer() as redis:
            redis.command("SET", "k", "v")
            redis.kill(); redis.start()     # same port: clients can reconnect

    pause() / resume() stop and continue the process (SIGSTOP / SIGCONT): connections stay
    open but nothing is answered, like a hung server."""

    def __init__(self, port=None, start_timeout=10.0):
        self.port = port or free_port()
        self.start_timeout = start_timeout
        self.proc = None
        self.dir = None
        self._paused = False

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def address(self):
        return f"{LOCALHOST}:{self.port}"

    def start(self):
        if self.running:
            return self
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (tests/install-deps.sh installs "
                               "it)")
        self.dir = self.dir or tempfile.mkdtemp(prefix="redis-test-")
        argv = [binary, "--port", str(self.port), "--bind", LOCALHOST, "--save", "",
                "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning",
                "--dir", self.dir, "--logfile", os.path.join(self.dir, "redis.log")]
        self.proc = subprocess.Popen(_die_with_parent_argv(argv), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _register(self.proc)
        self._paused = False

        def pong():
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
            return self.command("PING") == "PONG"
        wait_until(pong, self.start_timeout, message=f"redis-server on {self.address}")
        return self

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            if self._paused:
                proc.send_signal(signal.SIGCONT)
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        _unregister(proc)
        self._paused = False

    def kill(self):
        """SIGKILL: Redis dies at once, as in a crash; its clients see their connections
        reset."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        self.stop()

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)
        self._paused = True

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)
        self._paused = False

    def command(self, *args, timeout=5.0):
        """Send one command on a fresh connection; return the decoded reply (str, int, list
        or None). An error reply raises RuntimeError."""
        payload = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            payload += b"$%d\r\n%s\r\n" % (len(a), a)
        with socket.create_connection((LOCALHOST, self.port), timeout=timeout) as sock:
            sock.sendall(payload)
            reader = _Reader(sock.recv_into)
            return self._read_reply(reader)

    def _read_reply(self, reader):
        line = reader.readline().rstrip(b"\r\n")
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(f"redis error: {rest.decode()}")
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = bytearray()
            reader.read_exact(n + 2, data.extend)
            return bytes(data[:-2]).decode(errors="replace")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read_reply(reader) for _ in range(n)]
        raise ProtocolError(f"unexpected redis reply {line!r}")

    def keys(self, pattern="*"):
        return sorted(self.command("KEYS", pattern))


def unittest_skip_types():
    import unittest
    return (unittest.SkipTest,)


# ============================================================================================
# meridian


def meridian_bin():
    """The binary under test: $MERIDIAN_BIN, else <source>/build/meridian."""
    path = os.environ.get("MERIDIAN_BIN")
    if path:
        return os.path.abspath(path)
    for candidate in ("build/meridian", "build/src/meridian"):
        path = os.path.join(SOURCE_DIR, candidate)
        if os.access(path, os.X_OK):
            return path
    raise RuntimeError("MERIDIAN_BIN is not set and no build/meridian exists")


def meridian_argv(args=()):
    """The command line that runs the binary under test with `args`. A cross-built binary
    (tests/run-tests.sh --arm64) runs under the user-mode emulator named in
    $MERIDIAN_EMULATOR (space-separated words), so no binfmt_misc registration is needed."""
    return _emulator_argv() + [meridian_bin()] + list(args)


def bench_tool_argv(name, args=()):
    """The command line of a tool built beside the binary under test in <build>/bench (e.g.
    meridian_handshake_load), or None when that build has no benchmarks (-DMERIDIAN_BENCH=OFF:
    the TSan and cross builds)."""
    path = os.path.join(os.path.dirname(meridian_bin()), "bench", name)
    if not os.access(path, os.X_OK):
        return None
    return _emulator_argv() + [path] + list(args)


def _emulator_argv():
    words = os.environ.get("MERIDIAN_EMULATOR", "").split()
    if words:
        found = shutil.which(words[0])
        if not found:
            raise RuntimeError(f"MERIDIAN_EMULATOR: {words[0]} not found")
        words[0] = found
    return words


_PLACEHOLDER_AUTO = re.compile(r"\{(admin|listen[A-Za-z0-9_]*)\}")


def substitute(text, subs):
    """Replace each {key} of subs in text by str(value). Only the given keys are touched, so
    YAML flow mappings such as {lat: 1, lon: 2} are safe."""
    for key, value in (subs or {}).items():
        text = text.replace("{" + key + "}", str(value))
    return text


def _write_files(directory, files):
    for name, content in (files or {}).items():
        path = os.path.join(directory, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content.encode() if isinstance(content, str) else content)


def run_meridian_check(config_text, subs=None, *, filename="meridian.yaml", files=None,
                       timeout=30):
    """Run `meridian --check --config FILENAME` in a temp dir holding the config (and
    `files`: {relative name: str|bytes}); return (exit_code, stdout, stderr).

    The config path given to meridian is the bare `filename` (cwd is the temp dir), so error
    lines read e.g. "meridian.yaml:14:7: ...". {dir} in the text is the temp dir.
    """
    directory = tempfile.mkdtemp(prefix="meridian-check-")
    try:
        subs = dict(subs or {})
        subs.setdefault("dir", directory)
        _write_files(directory, files)
        with open(os.path.join(directory, filename), "w") as f:
            f.write(substitute(config_text, subs))
        proc = subprocess.run(meridian_argv(["--check", "--config", filename]), cwd=directory,
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        return (proc.returncode, proc.stdout.decode("utf-8", "replace"),
                proc.stderr.decode("utf-8", "replace"))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


class MeridianError(AssertionError):
    """meridian failed to start, crashed, or did not exit cleanly."""


class Meridian:
    """meridian in a subprocess, from a YAML config text.

        cfg = '''
        admin: {listen: "{admin}"}
        listeners:
          - name: public
            listen: "{listen}"
            routes: [{name: all, backend: b}]
        backends:
          - name: b
            regions: [{name: r1, location: {lat: 0, lon: 0},
                       endpoints: [{address: "{o1}"}]}]
        '''
        with Origin() as o, Meridian(cfg, {"o1": o.address}) as m:
            r = http_get(m.listen_address, "/x")

    Placeholders: `subs` values replace {key}; {admin}, {listen} and any {listenXYZ} not in
    subs get a fresh 127.0.0.1:<free port> (see .addresses, .admin_address,
    .listen_address); {dir} is the temp dir holding the config and `files` ({relative name:
    str|bytes}, written before start). meridian runs with cwd = that dir.

    Readiness (`wait`): "ready" polls admin GET /ready until 200, "health" admin GET
    /health, "listen" a TCP connect to the listen address, None nothing; "auto" (default)
    is "ready" when the admin address is known (from {admin}, admin=, or the config's
    admin.listen) else "listen" when a listen address is known. The deadline is
    ready_timeout (10 s); if meridian exits first or the deadline passes, MeridianError
    carries its stderr.

    On exit: SIGTERM, SIGKILL after stop_timeout (10 s). If the block raised, the tail of
    meridian's stderr is printed. With expect_clean_exit (default) a non-zero exit, a crash,
    a SIGKILL or a sanitizer report raises MeridianError, unless the test already called
    wait() itself.
    """

    def __init__(self, config, subs=None, *, admin=None, listen=None, wait="auto",
                 ready_timeout=10.0, stop_timeout=10.0, args=(), env=None, files=None,
                 expect_clean_exit=True, binary=None):
        self.binary = binary or meridian_bin()
        self.dir = tempfile.mkdtemp(prefix="meridian-test-")
        _temp_dirs.add(self.dir)
        self.subs = dict(subs or {})
        self.subs.setdefault("dir", self.dir)
        for key in sorted(set(_PLACEHOLDER_AUTO.findall(config))):
            if key not in self.subs:
                self.subs[key] = f"{LOCALHOST}:{free_port()}"
        self.addresses = {k: v for k, v in self.subs.items()
                          if _PLACEHOLDER_AUTO.fullmatch("{" + k + "}")}
        self.config_text = substitute(config, self.subs)
        self.admin_address = admin or self.subs.get("admin") or self._find_admin(
            self.config_text)
        self.listen_address = listen or self.subs.get("listen")
        self.config_path = os.path.join(self.dir, "meridian.yaml")
        self.wait_mode = wait
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.args = list(args)
        self.env = env
        self.files = files
        self.expect_clean_exit = expect_clean_exit
        self.proc = None
        self.returncode = None
        self._waited_by_test = False
        self._sent_sigkill = False
        self._stdout_path = os.path.join(self.dir, "stdout.log")
        self._stderr_path = os.path.join(self.dir, "stderr.log")

    @staticmethod
    def _find_admin(text):
        m = re.search(r"^admin:\s*\n\s+listen:\s*[\"']?([^\s\"'#]+)", text, re.M) or \
            re.search(r"^admin:\s*\{\s*listen:\s*[\"']?([^\s\"',}]+)", text, re.M)
        return m.group(1) if m else None

    # ---- life cycle -----------------------------------------------------------------------

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            if self.proc is not None:
                self.stop(timeout=2.0)
            self._cleanup_dir()
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        failed = exc_type is not None and not issubclass(exc_type, unittest_skip_types())
        try:
            self.stop()
        finally:
            problem = None if self._waited_by_test else self._exit_problem()
            if failed or (problem and self.expect_clean_exit):
                self.print_tail(problem or "test failed")
            self._cleanup_dir()
        if problem and self.expect_clean_exit and not failed:
            raise MeridianError(f"meridian: {problem}\n---- stderr (tail) ----\n"
                                f"{_tail(self.stderr_text(), 40)}")

    def start(self):
        _write_files(self.dir, self.files)
        self.write_config(self.config_text, substituted=True)
        env = dict(os.environ)
        env.update(self.env or {})
        with open(self._stdout_path, "wb") as out, open(self._stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                _die_with_parent_argv(_emulator_argv() + [self.binary, "--config",
                                                          self.config_path] + self.args),
                cwd=self.dir, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env)
        _register(self.proc)
        mode = self.wait_mode
        if mode == "auto":
            mode = "ready" if self.admin_address else ("listen" if self.listen_address
                                                        else None)
        if mode:
            self.wait_ready(mode, self.ready_timeout)
        return self

    def wait_ready(self, mode="ready", timeout=10.0):
        """Wait for readiness (see the class doc); raise MeridianError on failure."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            code = self.proc.poll()
            if code is not None:
                self.returncode = code
                raise MeridianError(f"meridian exited with {code} during start-up; stderr:\n"
                                    f"{_tail(self.stderr_text())}")
            try:
                if mode in ("ready", "health"):
                    resp = http_request(self.admin_address, "GET", f"/{mode}",
                                        [("Connection", "close")], timeout=1.0)
                    last = f"{resp.status} {resp.text()[:200]!r}"
                    if resp.status == 200:
                        break
                elif mode == "listen":
                    host, port = split_address(self.listen_address)
                    socket.create_connection((host, port), timeout=1.0).close()
                    break
                else:
                    raise ValueError(f"unknown wait mode {mode!r}")
            except (OSError, ProtocolError) as e:
                last = repr(e)
            if time.monotonic() >= deadline:
                raise MeridianError(f"meridian not {mode} after {timeout}s (last: {last}); "
                                    f"stderr:\n{_tail(self.stderr_text())}")
            time.sleep(0.02)
        if mode == "health" and self.listen_address:
            # Liveness may come a moment before the listeners are bound.
            host, port = split_address(self.listen_address)
            wait_until(lambda: socket.create_connection((host, port), timeout=1.0).close()
                       or True, max(0.5, deadline - time.monotonic()),
                       message=f"listener {self.listen_address} to accept")

    def stop(self, timeout=None):
        """SIGTERM, then SIGKILL after `timeout` (default stop_timeout); return exit code."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(self.stop_timeout if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                self._sent_sigkill = True
                self.proc.kill()
                self.proc.wait()
        self.returncode = self.proc.returncode
        _unregister(self.proc)
        return self.returncode

    def _exit_problem(self):
        """Why the exit was not clean, or None."""
        err = self.stderr_text()
        if self._sent_sigkill:
            return f"did not exit within {self.stop_timeout}s of SIGTERM (SIGKILLed)"
        if self.returncode is not None and self.returncode < 0:
            return f"killed by signal {-self.returncode}"
        if self.returncode:
            return f"exited with {self.returncode}"
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                       "WARNING: ThreadSanitizer"):
            if marker in err:
                return f"sanitizer report ({marker})"
        return None

    def _cleanup_dir(self):
        if os.environ.get("MERIDIAN_KEEP_TMP"):
            sys.stderr.write(f"meridian test dir kept: {self.dir}\n")
            return
        shutil.rmtree(self.dir, ignore_errors=True)
        _temp_dirs.discard(self.dir)

    def print_tail(self, why="", lines=80):
        """Print the tail of meridian's stderr and stdout to sys.stderr."""
        sys.stderr.write(f"\n---- meridian ({why}) exit={self.returncode} "
                         f"stderr (tail) ----\n{_tail(self.stderr_text(), lines)}\n"
                         f"---- meridian stdout (tail) ----\n"
                         f"{_tail(self.stdout_text(), 20)}\n")

    # ---- process --------------------------------------------------------------------------

    @property
    def pid(self):
        return self.proc.pid

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=None):
        """Wait for meridian to exit and return its exit code (negative: killed by that
        signal). Raises subprocess.TimeoutExpired. The test then owns the exit check."""
        code = self.proc.wait(timeout)
        self.returncode = code
        self._waited_by_test = True
        return code

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def _proc_status(self, field):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return None

    def rss_peak_kib(self):
        """Peak resident set size (VmHWM) in KiB."""
        return self._proc_status("VmHWM")

    def rss_kib(self):
        """Current resident set size (VmRSS) in KiB."""
        return self._proc_status("VmRSS")

    def threads(self):
        return self._proc_status("Threads")

    def open_fds(self):
        """Number of open file descriptors (for leak checks)."""
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    # ---- output ---------------------------------------------------------------------------

    def stdout_text(self):
        return _read_file(self._stdout_path)

    def stderr_text(self):
        return _read_file(self._stderr_path)

    def log_text(self):
        """stderr (meridian's own log) followed by stdout (the access log by default)."""
        return self.stderr_text() + self.stdout_text()

    def access_log(self, path=None):
        """The JSON objects among the access log's lines: stdout (where it goes by default),
        or the file `path` (relative to this instance's directory, "{dir}" in the config)."""
        if path is None:
            text = self.stdout_text()
        else:
            full = os.path.join(self.dir, path)
            text = _read_file(full) if os.path.exists(full) else ""
        entries = []
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    entries.append(json.loads(line))
                except ValueError:
                    pass
        return entries

    # ---- config ---------------------------------------------------------------------------

    def write_config(self, text, subs=None, substituted=False):
        """Replace the config file (atomically, by rename) with `text`, substituted with the
        placeholders of this instance (same ports) plus `subs`. Does not signal meridian."""
        if not substituted:
            text = substitute(substitute(text, subs), self.subs)
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.config_path)
        self.config_text = text

    # ---- addresses and the admin API -------------------------------------------------------

    @property
    def port(self):
        return split_address(self.listen_address)[1]

    def url(self, path="/"):
        return f"http://{self.listen_address}{path}"

    def conn(self, **kwargs):
        """A new HttpConn to the main listener."""
        return HttpConn(self.listen_address, **kwargs)

    def get(self, target="/", headers=None, **kwargs):
        """GET on a fresh connection to the main listener."""
        return http_request(self.listen_address, "GET", target, headers, **kwargs)

    def admin(self, method, path, body=None, timeout=10.0):
        """A request to the admin API -> Response."""
        return http_request(self.admin_address, method, path, [("Connection", "close")], body,
                            timeout=timeout)

    def metrics(self):
        """GET /metrics text (raises on non-200)."""
        resp = self.admin("GET", "/metrics")
        if resp.status != 200:
            raise AssertionError(f"/metrics answered {resp.status}")
        return resp.text()

    def metric(self, name, labels=None):
        """Sum of the samples of metric `name` whose labels include `labels` (a dict);
        None if there is none."""
        return metric_value(self.metrics(), name, labels)

    def status(self):
        """GET /status as JSON."""
        return self.admin("GET", "/status").json()

    def reload(self):
        """POST /reload -> Response (200 with the new generation, or 400 with errors)."""
        return self.admin("POST", "/reload")


class SteadyLoad:
    """Requests on fresh connections from a few threads until stopped (at most `limit` per
    thread); counts the good ones (`ok`, and per X-Origin-Name in `by_origin`) and describes
    the failed ones (`failed`). A context manager: the threads run inside the block."""

    def __init__(self, address, threads=4, target="/load", limit=20000):
        self.address = address
        self.target = target
        self.limit = limit
        self.stopped = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.by_origin = {}
        self.failed = []
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]

    def run(self):
        n = 0
        while not self.stopped.is_set() and n < self.limit:
            n += 1
            try:
                r = http_request(self.address, "GET", self.target, timeout=5.0)
                good = r.status == 200
                detail = r.header("x-origin-name") if good else f"status {r.status}"
            except (OSError, ProtocolError) as e:
                good, detail = False, repr(e)
            with self.lock:
                if good:
                    self.ok += 1
                    self.by_origin[detail] = self.by_origin.get(detail, 0) + 1
                else:
                    self.failed.append(detail)

    def served_by(self, origin):
        with self.lock:
            return self.by_origin.get(origin, 0)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        for t in self.threads:
            t.join(10)


# Every metric of docs/metrics.md but the extensions, name -> (type, labels). The tests of
# /metrics and of the Prometheus/Grafana files check against this one table.
CONTRACT_METRICS = {
    "meridian_http_requests_total": ("counter", {"listener", "route", "backend", "region",
                                                 "code"}),
    "meridian_http_request_duration_seconds": ("histogram", {"listener", "route", "backend",
                                                             "region"}),
    "meridian_downstream_connections_active": ("gauge", {"listener"}),
    "meridian_upstream_requests_active": ("gauge", {"backend", "region", "endpoint"}),
    "meridian_endpoint_healthy": ("gauge", {"backend", "region", "endpoint"}),
    "meridian_region_latency_seconds": ("gauge", {"backend", "region"}),
    "meridian_health_checks_total": ("counter", {"backend", "region", "endpoint", "result"}),
    "meridian_region_selected_total": ("counter", {"backend", "region", "reason"}),
    "meridian_upstream_retries_total": ("counter", {"backend", "region", "reason"}),
    "meridian_rate_limited_total": ("counter", {"listener", "route"}),
    "meridian_config_reloads_total": ("counter", {"result"}),
    "meridian_config_generation": ("gauge", set()),
    "meridian_build_info": ("gauge", {"version"}),
}
# Metrics meridian adds beyond the contract.
EXTENSION_METRICS = {
    "meridian_access_log_dropped_total": ("counter", set()),
    "meridian_endpoint_admin_state": ("gauge", {"backend", "region", "endpoint", "state"}),
    "meridian_upstream_retry_budget_exhausted_total": ("counter", {"backend"}),
    "meridian_dns_resolutions_total": ("counter", {"result"}),
    "meridian_mirror_requests_total": ("counter", {"result"}),
    "meridian_tls_handshakes_total": ("counter", {"listener", "result"}),
}


_SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)")
_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Prometheus text exposition -> list of (name, {label: value}, float)."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE_RE.match(line)
        if not m:
            continue
        labels = {k: bytes(v, "utf-8").decode("unicode_escape")
                  for k, v in _LABEL_RE.findall(m.group(3) or "")}
        try:
            value = float(m.group(4))
        except ValueError:
            continue
        samples.append((m.group(1), labels, value))
    return samples


def metric_value(text, name, labels=None):
    """Sum of the samples named `name` whose labels include every item of `labels`."""
    total, found = 0.0, False
    for n, lab, value in parse_metrics(text):
        if n == name and all(lab.get(k) == str(v) for k, v in (labels or {}).items()):
            total += value
            found = True
    return total if found else None


# ---------------------------------------------------------------------------------------
# Shared fixtures for integration tests

def one_backend_config(node="edge", workers=2, route="{name: all, backend: b}", limits="",
                       extra=""):
    """The config most tests start from: one listener, one route, backend "b" with one
    region and the endpoint "{o1}". `route` is the flow-style route line, `limits` and
    `extra` are YAML blocks inserted at top level (indented by the caller)."""
    return f"""
node: {{name: {node}}}
workers: {workers}
admin:
  listen: "{{admin}}"
{limits}
{extra}
listeners:
  - name: public
    listen: "{{listen}}"
    routes:
      - {route}
backends:
  - name: b
    regions:
      - name: r1
        location: {{lat: 50.0, lon: 8.0}}
        endpoints: [{{address: "{{o1}}"}}]
"""


class OneOriginTestCase(unittest.TestCase):
    """One origin "o1" and one meridian started from the class's CONFIG, shared by the
    class's tests; origin stats are reset before each test. Subclasses set CONFIG and may
    extend SUBS (substitutions beyond {o1})."""

    CONFIG = None
    SUBS = {}

    @classmethod
    def setUpClass(cls):
        cls.origin = Origin("o1").start()
        try:
            subs = {"o1": cls.origin.address, **cls.SUBS}
            cls.meridian = Meridian(cls.CONFIG, subs).__enter__()
        except BaseException:
            cls.origin.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.meridian.__exit__(None, None, None)
        finally:
            cls.origin.stop()

    def setUp(self):
        self.origin.reset_stats()
