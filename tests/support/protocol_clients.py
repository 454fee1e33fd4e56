"""One client interface over the three downstream protocols, for tests that check the same
behaviour whatever the client speaks (tests/integration/test_behaviour_matrix.py, Proxygen's
typed tests): HTTP/1.1 on a cleartext listener, HTTP/2 over TLS (ALPN h2) on a TLS listener,
and h2c (prior knowledge) on the cleartext one.

    client = PROTOCOLS["h2"](addresses, cafile)
    reply = client.request("GET", "/path", headers=[("x-a", "1")], source="127.0.2.1")
    reply.status, reply.header("via"), reply.json(), reply.reset

Each request goes on a fresh connection (a source address is per connection). A Reply's
header names are lower case; `reset` is the HTTP/2 RST_STREAM code (None otherwise), and
`closed` says the HTTP/1.1 connection ended without a response."""

import json
import ssl

from harness import HttpConn, ProtocolError
from h2client import H2Client


class Reply:
    def __init__(self, protocol, status=None, headers=(), body=b"", reset=None, closed=False):
        self.protocol = protocol
        self.status = status
        self.headers = [(n.lower(), v) for n, v in headers]
        self.body = bytes(body)
        self.reset = reset
        self.closed = closed

    def header(self, name, default=None):
        for n, v in self.headers:
            if n == name:
                return v
        return default

    def header_all(self, name):
        return [v for n, v in self.headers if n == name]

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return (f"Reply({self.protocol} {self.status} reset={self.reset} closed={self.closed} "
                f"{self.headers!r} {self.body[:200]!r})")


class Http1:
    name = "http/1.1"
    version = 11  # as the access log writes it
    https = False

    def __init__(self, addresses, cafile):
        self.address = addresses["plain"]

    def request(self, method, path, headers=(), body=None, host="matrix.test", source=None,
                timeout=10.0):
        try:
            with HttpConn(self.address, timeout=timeout,
                          source_address=(source, 0) if source else None) as c:
                r = c.request(method, path, list(headers), body, host=host)
        except (ProtocolError, ConnectionError) as e:
            return Reply(self.name, closed=True, body=str(e).encode())
        return Reply(self.name, r.status, r.headers, r.body or b"")


class _Http2:
    version = 20

    def __init__(self, address, tls_context):
        self.address = address
        self.tls_context = tls_context

    def request(self, method, path, headers=(), body=None, host="matrix.test", source=None,
                timeout=10.0):
        with H2Client(self.address, tls_context=self.tls_context, server_hostname=host,
                      source=source, timeout=timeout) as c:
            fields = [(n.lower(), v) for n, v in headers]
            stream_id = c.request(method, path, headers=fields, body=body, authority=host)
            c.run_until(lambda: c.streams[stream_id].done)
            s = c.streams[stream_id]
        return Reply(self.name, s.status, (s.headers or {}).items(), s.body, s.reset)


class H2Tls(_Http2):
    name = "h2"
    https = True

    def __init__(self, addresses, cafile):
        super().__init__(addresses["tls"], ssl.create_default_context(cafile=cafile))


class H2c(_Http2):
    name = "h2c"
    https = False

    def __init__(self, addresses, cafile):
        super().__init__(addresses["plain"], None)


PROTOCOLS = {"http1": Http1, "h2": H2Tls, "h2c": H2c}
