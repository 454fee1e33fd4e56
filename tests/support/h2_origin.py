#!/usr/bin/env python3
"""HTTP/2 test origin for meridian's integration tests (backends with protocol h2 or h2c).

    python3 h2_origin.py --port 0 [--name NAME] [--max-streams N]
                         [--tls-cert PEM --tls-key PEM]

Cleartext HTTP/2 with prior knowledge (h2c), or HTTP/2 over TLS with ALPN h2 when given a
certificate. Built on the ``h2`` package (Debian python3-h2) and asyncio: streams of one
connection are served concurrently. Prints ``LISTENING <port>`` once it listens.

Every request is answered with a JSON report (unless ``size`` is given):

  {"name", "method", "path", "authority", "scheme", "headers": [[name, value], ...],
   "body_length", "request_trailers": [[name, value], ...], "connection_id" (1, 2, ...),
   "stream_id", "concurrent" (streams open on the connection when this one began)}

Query parameters:

  status=N          response status (default 200)
  delay_ms=N        wait before the response head
  size=N            a body of N bytes ("x" repeated) instead of the report
  trailer=Name:Val  (repeatable) response trailers after the body
  reset=1           reset the stream (INTERNAL_ERROR) instead of answering
  refuse_once=KEY   reset the stream with REFUSED_STREAM the first time KEY is seen
  goaway_once=KEY   the first time KEY is seen: GOAWAY naming an earlier stream (this one was
                    not processed), then close the connection

``GET /__stats`` answers {"connections", "max_concurrent", "requests", "keys"} (not counted).
"""

import argparse
import asyncio
import json
import ssl
import sys
import urllib.parse

sys.path.append("/usr/lib/python3/dist-packages")  # Debian's python3-h2 under another python

import h2.config  # noqa: E402
import h2.connection  # noqa: E402
import h2.errors  # noqa: E402
import h2.events  # noqa: E402
import h2.settings  # noqa: E402


class Stats:
    def __init__(self):
        self.connections = 0
        self.max_concurrent = 0
        self.requests = 0
        self.keys = {}


class Connection:
    def __init__(self, args, stats, reader, writer):
        self.args = args
        self.stats = stats
        self.reader = reader
        self.writer = writer
        stats.connections += 1
        self.id = stats.connections
        config = h2.config.H2Configuration(client_side=False, header_encoding="utf-8",
                                           validate_inbound_headers=True)
        self.conn = h2.connection.H2Connection(config=config)
        self.streams = {}  # id -> {"headers", "body", "trailers", "concurrent"}
        self.window_waiters = {}
        self.closed = False

    def flush(self):
        data = self.conn.data_to_send()
        if data and not self.closed:
            self.writer.write(data)

    async def run(self):
        self.conn.initiate_connection()
        self.conn.update_settings({
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self.args.max_streams})
        self.flush()
        try:
            while not self.closed:
                data = await self.reader.read(65536)
                if not data:
                    break
                for event in self.conn.receive_data(data):
                    self.on_event(event)
                self.flush()
                await self.writer.drain()
        except (ConnectionError, h2.exceptions.ProtocolError):
            pass
        finally:
            self.closed = True
            for waiter in self.window_waiters.values():
                if not waiter.done():
                    waiter.set_result(None)
            self.writer.close()

    def on_event(self, event):
        if isinstance(event, h2.events.RequestReceived):
            self.streams[event.stream_id] = {
                "headers": event.headers, "body": 0, "trailers": [],
                "concurrent": len(self.streams) + 1, "begun": False}
            self.stats.max_concurrent = max(self.stats.max_concurrent, len(self.streams))
            # A request without a body ends here too: the StreamEnded event that h2 emits
            # with it starts the response.
        elif isinstance(event, h2.events.DataReceived):
            s = self.streams.get(event.stream_id)
            if s is not None:
                s["body"] += len(event.data)
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.TrailersReceived):
            s = self.streams.get(event.stream_id)
            if s is not None:
                s["trailers"] = event.headers
        elif isinstance(event, h2.events.StreamEnded):
            s = self.streams.get(event.stream_id)
            if s is not None and not s["begun"]:
                s["begun"] = True
                self.begin(event.stream_id)
        elif isinstance(event, h2.events.StreamReset):
            self.streams.pop(event.stream_id, None)
            self.wake(event.stream_id)
        elif isinstance(event, h2.events.WindowUpdated):
            if event.stream_id == 0:
                for sid in list(self.window_waiters):
                    self.wake(sid)
            else:
                self.wake(event.stream_id)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.closed = True

    def wake(self, stream_id):
        waiter = self.window_waiters.pop(stream_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def begin(self, stream_id):
        asyncio.ensure_future(self.respond(stream_id))

    async def respond(self, stream_id):
        s = self.streams[stream_id]
        headers = dict(s["headers"])
        path = headers.get(":path", "/")
        url = urllib.parse.urlsplit(path)
        query = urllib.parse.parse_qs(url.query)

        def q(name, default=None):
            return query.get(name, [default])[0]

        if url.path == "/__stats":
            body = json.dumps({"connections": self.stats.connections,
                               "max_concurrent": self.stats.max_concurrent,
                               "requests": self.stats.requests,
                               "keys": self.stats.keys}).encode()
            await self.send(stream_id, 200, [("content-type", "application/json")], body, [])
            return
        self.stats.requests += 1
        key = q("refuse_once") or q("goaway_once")
        if key is not None:
            seen = self.stats.keys.get(key, 0)
            self.stats.keys[key] = seen + 1
            if seen == 0 and q("refuse_once") is not None:
                self.conn.reset_stream(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
                self.streams.pop(stream_id, None)
                self.flush()
                return
            if seen == 0:
                self.conn.close_connection(h2.errors.ErrorCodes.NO_ERROR,
                                           last_stream_id=max(0, stream_id - 2))
                self.flush()
                await self.writer.drain()
                self.closed = True
                self.writer.close()
                return
        if q("reset") == "1":
            self.conn.reset_stream(stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
            self.streams.pop(stream_id, None)
            self.flush()
            return
        delay = int(q("delay_ms", "0"))
        if delay:
            await asyncio.sleep(delay / 1000)
        if stream_id not in self.streams or self.closed:
            return
        status = int(q("status", "200"))
        trailers = [tuple(t.split(":", 1)) for t in query.get("trailer", [])]
        size = q("size")
        if size is not None:
            body = b"x" * int(size)
            ctype = "application/octet-stream"
        else:
            body = json.dumps({
                "name": self.args.name, "method": headers.get(":method"), "path": path,
                "authority": headers.get(":authority"), "scheme": headers.get(":scheme"),
                "headers": [[k, v] for k, v in s["headers"]], "body_length": s["body"],
                "request_trailers": [[k, v] for k, v in s["trailers"]],
                "connection_id": self.id, "stream_id": stream_id,
                "concurrent": s["concurrent"]}).encode()
            ctype = "application/json"
        await self.send(stream_id, status, [("content-type", ctype),
                                            ("x-origin-name", self.args.name)], body, trailers)

    async def send(self, stream_id, status, headers, body, trailers):
        try:
            extra = [] if trailers else [("content-length", str(len(body)))]
            self.conn.send_headers(stream_id, [(":status", str(status))] + headers + extra,
                                   end_stream=not body and not trailers)
            self.flush()
            while body:
                window = min(self.conn.local_flow_control_window(stream_id),
                             self.conn.max_outbound_frame_size)
                if window <= 0:
                    waiter = asyncio.get_running_loop().create_future()
                    self.window_waiters[stream_id] = waiter
                    await waiter
                    if self.closed or stream_id not in self.streams:
                        return
                    continue
                chunk, body = body[:window], body[window:]
                self.conn.send_data(stream_id, chunk, end_stream=not body and not trailers)
                self.flush()
                await self.writer.drain()
            if trailers:
                self.conn.send_headers(stream_id, trailers, end_stream=True)
                self.flush()
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError, ConnectionError):
            pass
        finally:
            self.streams.pop(stream_id, None)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--name", default="h2-origin")
    parser.add_argument("--max-streams", type=int, default=100)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    args = parser.parse_args()
    stats = Stats()
    context = None
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        context.set_alpn_protocols(["h2"])

    async def serve(reader, writer):
        await Connection(args, stats, reader, writer).run()

    server = await asyncio.start_server(serve, args.host, args.port, ssl=context)
    port = server.sockets[0].getsockname()[1]
    print(f"LISTENING {port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
