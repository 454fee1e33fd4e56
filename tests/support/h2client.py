"""A small HTTP/2 client for the tests, on the python3-h2 package (Debian's): many streams
on one connection, request bodies sent as the server's flow-control windows allow, and
everything the server did recorded per stream (headers, body, reset code) and per
connection (GOAWAY). Plus raw frame helpers for the abuse tests, which need byte-exact
frames no well-behaved client library would send."""

import select
import socket
import ssl
import struct
import time

try:
    import h2.config
except ImportError:
    # Debian's python3-h2 lives in the system's dist-packages, which a python3 of another
    # installation (a pyenv one, say) does not search; the package is pure Python.
    import sys
    sys.path.append("/usr/lib/python3/dist-packages")
    import h2.config
import h2.connection
import h2.events
import h2.exceptions

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types and flags (RFC 9113 6).
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = (
    0, 1, 2, 3, 4, 6, 7, 8, 9)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
NO_ERROR, PROTOCOL_ERROR, REFUSED_STREAM, CANCEL, ENHANCE_YOUR_CALM = 0, 1, 7, 8, 0xb


def frame(kind, flags, stream_id, payload=b""):
    return struct.pack("!I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(
        "!I", stream_id) + payload


def literal(name, value):
    """An HPACK literal field without indexing and without Huffman coding (RFC 7541 6.2.2)."""
    name, value = name.encode(), value.encode()
    assert len(name) < 127 and len(value) < 127
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def get_block(path="/", authority="h2.test"):
    """The header block of a GET request, hand-encoded (no dynamic table state)."""
    return (b"\x82"  # :method GET
            + b"\x86"  # :scheme http
            + literal(":path", path) + literal(":authority", authority))


class Stream:
    def __init__(self):
        self.headers = None      # the final response's fields, as a dict (last value wins)
        self.informational = []  # 1xx statuses
        self.body = bytearray()
        self.ended = False
        self.reset = None        # the RST_STREAM error code, when reset
        self.trailers = {}       # trailer fields, as a dict

    @property
    def status(self):
        return int(self.headers[":status"]) if self.headers else None

    @property
    def done(self):
        return self.ended or self.reset is not None


class H2Client:
    """One HTTP/2 connection: cleartext (prior knowledge) or TLS with ALPN h2."""

    def __init__(self, address, tls_context=None, server_hostname="h2.test", source=None,
                 timeout=10.0):
        host, port = address.rsplit(":", 1)
        raw = socket.create_connection((host, int(port)), timeout=timeout,
                                       source_address=(source, 0) if source else None)
        if tls_context is not None:
            tls_context.set_alpn_protocols(["h2"])
            raw = tls_context.wrap_socket(raw, server_hostname=server_hostname)
            assert raw.selected_alpn_protocol() == "h2", raw.selected_alpn_protocol()
        self.sock = raw
        self.timeout = timeout
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.streams = {}
        self.goaway = None  # (error_code, last_stream_id)
        self.closed = False
        self._pending_bodies = {}  # stream id -> remaining bytes to send
        self._trailers = {}  # stream id -> trailer fields to send after the body
        self._flush()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def request(self, method, path, headers=(), body=None, authority="h2.test",
                end_stream=True, trailers=None):
        stream_id = self.conn.get_next_available_stream_id()
        fields = [(":method", method), (":scheme", "http"), (":path", path),
                  (":authority", authority)] + list(headers)
        has_body = body is not None
        if trailers:
            self._trailers[stream_id] = list(trailers)
            has_body = True
            body = body or b""
        self.conn.send_headers(stream_id, fields, end_stream=end_stream and not has_body)
        self.streams[stream_id] = Stream()
        if has_body:
            self._pending_bodies[stream_id] = bytes(body)
            self._send_bodies()
        self._flush()
        return stream_id

    def get(self, path, **kwargs):
        stream_id = self.request("GET", path, **kwargs)
        self.run_until(lambda: self.streams[stream_id].done)
        return self.streams[stream_id]

    def _send_bodies(self):
        for stream_id, rest in list(self._pending_bodies.items()):
            while rest:
                window = min(self.conn.local_flow_control_window(stream_id),
                             self.conn.max_outbound_frame_size)
                if window <= 0:
                    break
                piece, rest = rest[:window], rest[window:]
                self.conn.send_data(stream_id, piece)
            if rest:
                self._pending_bodies[stream_id] = rest
            else:
                del self._pending_bodies[stream_id]
                trailers = self._trailers.pop(stream_id, None)
                if trailers:
                    self.conn.send_headers(stream_id, trailers, end_stream=True)
                else:
                    self.conn.end_stream(stream_id)

    def _flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def pump(self, wait=0.2):
        """Reads what is there (waiting up to `wait` seconds) and handles it. False once the
        connection is closed."""
        if self.closed:
            return False
        readable, _, _ = select.select([self.sock], [], [], wait)
        if not readable and not (isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()):
            return True
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, ssl.SSLError, OSError):
            data = b""
        if not data:
            self.closed = True
            return False
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.closed = True
            return False
        for event in events:
            self._handle(event)
        self._send_bodies()
        self._flush()
        return True

    def _handle(self, event):
        if isinstance(event, h2.events.ResponseReceived):
            headers = dict(event.headers)
            stream = self.streams[event.stream_id]
            if headers[":status"].startswith("1"):
                stream.informational.append(int(headers[":status"]))
            else:
                stream.headers = headers
        elif isinstance(event, h2.events.InformationalResponseReceived):
            self.streams[event.stream_id].informational.append(
                int(dict(event.headers)[":status"]))
        elif isinstance(event, h2.events.DataReceived):
            self.streams[event.stream_id].body += event.data
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.TrailersReceived):
            self.streams[event.stream_id].trailers = dict(event.headers)
        elif isinstance(event, h2.events.StreamEnded):
            self.streams[event.stream_id].ended = True
        elif isinstance(event, h2.events.StreamReset):
            if event.stream_id in self.streams:
                self.streams[event.stream_id].reset = event.error_code
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = (event.error_code, event.last_stream_id)

    def run_until(self, predicate, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError("HTTP/2 client: condition not met in time")
            if not self.pump() and not predicate():
                raise ConnectionError("HTTP/2 connection closed before the condition was met")


def read_frames(sock, timeout=5.0):
    """Reads raw frames until the server closes or `timeout`; returns [(type, flags, stream,
    payload)] and whether the server closed the connection."""
    data = b""
    deadline = time.monotonic() + timeout
    closed = False
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            closed = True
            break
        if not chunk:
            closed = True
            break
        data += chunk
    frames = []
    while len(data) >= 9:
        length = struct.unpack("!I", b"\x00" + data[:3])[0]
        if len(data) < 9 + length:
            break
        kind, flags = data[3], data[4]
        stream_id = struct.unpack("!I", data[5:9])[0] & 0x7FFFFFFF
        frames.append((kind, flags, stream_id, data[9:9 + length]))
        data = data[9 + length:]
    return frames, closed


def goaway_code(frames):
    """The error code of the first GOAWAY among `frames`, or None."""
    for kind, _, _, payload in frames:
        if kind == GOAWAY:
            return struct.unpack("!I", payload[4:8])[0]
    return None
