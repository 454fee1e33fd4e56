"""Edge cases of the upstream exchange: stale pooled connections, retries across endpoints and
when not to retry, least_conn and weighted round robin, early responses, pipelining, HTTP/1.0
keep-alive, HEAD / 204 / 304 framing, oversized upstream heads, debug headers,
max_connections_per_endpoint and pool reuse across client connections."""

import collections
import hashlib
import socket
import threading
import time
import unittest

from harness import (HttpConn, Meridian, Origin, free_port, parse_responses, pattern_bytes,
                     raw_exchange, split_address, wait_until)

LOC = "location: {lat: 50.0, lon: 8.0}"

# One worker: weighted round robin and pool reuse are exact per worker.
CONFIG_ONE_WORKER = f"""
node: {{name: edge-exchange}}
workers: 1
debug_headers: true
admin:
  listen: "{{admin}}"
limits:
  max_request_header_bytes: 256KiB
listeners:
  - name: public
    listen: "{{listen}}"
    routes:
      - {{name: rr, match: {{path_prefix: /rr/}}, backend: weighted}}
      - {{name: retry0, match: {{path_prefix: /retry0/}}, backend: halfdead, retries: 0}}
      - {{name: retry2, match: {{path_prefix: /retry2/}}, backend: halfdead, retries: 2}}
      - {{name: two, match: {{path_prefix: /two/}}, backend: two, retries: 2}}
      - {{name: early, match: {{path_prefix: /early/}}, backend: early, retries: 0}}
      - {{name: stale, match: {{path_prefix: /stale-up/}}, backend: staleup}}
      - {{name: all, backend: single}}
backends:
  - name: single
    regions:
      - name: r1
        {LOC}
        endpoints: [{{address: "{{o1}}"}}]
  - name: weighted
    balance: round_robin
    regions:
      - name: r-weighted
        {LOC}
        endpoints: [{{address: "{{o1}}", weight: 3}}, {{address: "{{o2}}", weight: 1}}]
  - name: halfdead
    balance: round_robin
    regions:
      - name: r-halfdead
        {LOC}
        endpoints: [{{address: "{{dead}}"}}, {{address: "{{o2}}"}}]
  - name: two
    regions:
      - name: r-two
        {LOC}
        endpoints: [{{address: "{{o1}}"}}, {{address: "{{o2}}"}}]
  - name: early
    regions:
      - name: r-early
        {LOC}
        endpoints: [{{address: "{{early}}"}}]
  - name: staleup
    regions:
      - name: r-stale
        {LOC}
        endpoints: [{{address: "{{staleup}}"}}]
"""

# Two workers: least_conn and the per-endpoint cap are counted across the whole node.
CONFIG_TWO_WORKERS = f"""
node: {{name: edge-exchange-2}}
workers: 2
debug_headers: false
admin:
  listen: "{{admin}}"
listeners:
  - name: public
    listen: "{{listen}}"
    routes:
      - {{name: lc, match: {{path_prefix: /lc/}}, backend: lc}}
      - {{name: cap, match: {{path_prefix: /cap/}}, backend: cap}}
      - {{name: all, backend: single}}
backends:
  - name: single
    regions:
      - name: r1
        {LOC}
        endpoints: [{{address: "{{o1}}"}}]
  - name: lc
    balance: least_conn
    regions:
      - name: r-lc
        {LOC}
        endpoints: [{{address: "{{o1}}"}}, {{address: "{{o2}}"}}]
  - name: cap
    max_connections_per_endpoint: 1
    regions:
      - name: r-cap
        {LOC}
        endpoints: [{{address: "{{o1}}"}}]
"""

CONFIG_BODY_LIMIT = f"""
node: {{name: edge-exchange-limit}}
workers: 1
admin:
  listen: "{{admin}}"
limits:
  max_request_body_bytes: 4KiB
listeners:
  - name: public
    listen: "{{listen}}"
    routes:
      - {{name: all, backend: single}}
backends:
  - name: single
    regions:
      - name: r1
        {LOC}
        endpoints: [{{address: "{{o1}}"}}]
"""


class EarlyUpstream:
    """A minimal upstream (not origin.py) that answers as soon as it has a request head,
    without reading the request body, then half-closes and drains what still comes (the
    polite way, RFC 9112 9.6), like a server refusing an upload early."""

    BODY = b"early\n"
    RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                b"Content-Length: %d\r\nX-Early: 1\r\nConnection: close\r\n\r\n%s"
                % (len(BODY), BODY))

    def __init__(self):
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.address = "127.0.0.1:%d" % self.lsock.getsockname()[1]
        self.lock = threading.Lock()
        self.heads = []
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def _accept_loop(self):
        while True:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        with s:
            try:
                s.settimeout(5)
                buf = b""
                while b"\r\n\r\n" not in buf:
                    data = s.recv(65536)
                    if not data:
                        return
                    buf += data
                with self.lock:
                    self.heads.append(buf.split(b"\r\n\r\n", 1)[0])
                s.sendall(self.RESPONSE)
                s.shutdown(socket.SHUT_WR)
                deadline = time.monotonic() + 2
                while time.monotonic() < deadline and s.recv(65536):
                    pass
            except OSError:
                pass

    def close(self):
        try:
            self.lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.lsock.close()


class StaleUpstream:
    """A minimal upstream (not origin.py) whose keep-alive connections go stale
    deterministically: on each connection it answers the first request (keep-alive, no
    Connection: close) and then, when a second request arrives on that connection, closes
    it without answering -- what a request sent on a pooled connection meets when the
    origin's idle close crossed it on the wire. A new connection always gets its answer."""

    def __init__(self):
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.address = "127.0.0.1:%d" % self.lsock.getsockname()[1]
        self.lock = threading.Lock()
        self.connections = 0
        self.answered = []   # request lines answered
        self.dropped = []    # request lines met with a close
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def _accept_loop(self):
        while True:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                cid = self.connections
            threading.Thread(target=self._serve, args=(s, cid), daemon=True).start()

    def _serve(self, s, cid):
        with s:
            try:
                s.settimeout(10)
                buf = b""
                served = 0
                while True:
                    while b"\r\n\r\n" not in buf:
                        data = s.recv(65536)
                        if not data:
                            return
                        buf += data
                    head, buf = buf.split(b"\r\n\r\n", 1)
                    line = head.split(b"\r\n", 1)[0].decode("latin-1")
                    if served == 0:
                        received, buf = self._read_body(s, head, buf)
                        digest = hashlib.sha256(received).hexdigest()[:16]
                        body = f"{line} conn={cid} body={len(received)} sha={digest}".encode()
                        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                  b"X-Stale-Conn: %d\r\nContent-Length: %d\r\n\r\n%s"
                                  % (cid, len(body), body))
                        with self.lock:
                            self.answered.append(line)
                        served += 1
                        continue
                    with self.lock:
                        self.dropped.append(line)
                    return  # close (FIN) without a response byte
            except OSError:
                pass

    @staticmethod
    def _read_body(s, head, buf):
        """The request body per its framing (Content-Length or chunked, which must end with
        its terminator): (body bytes, bytes left over)."""
        def more():
            data = s.recv(65536)
            if not data:
                raise OSError("closed mid-body")
            return data
        fields = {}
        for raw in head.split(b"\r\n")[1:]:
            name, _, value = raw.partition(b":")
            fields[name.strip().lower()] = value.strip().lower()
        if fields.get(b"transfer-encoding") == b"chunked":
            body = b""
            while True:
                while b"\r\n" not in buf:
                    buf += more()
                size_line, buf = buf.split(b"\r\n", 1)
                size = int(size_line.split(b";")[0], 16)
                while len(buf) < size + 2:
                    buf += more()
                body, buf = body + buf[:size], buf[size + 2:]
                if size == 0:
                    return body, buf
        length = int(fields.get(b"content-length", b"0"))
        while len(buf) < length:
            buf += more()
        return buf[:length], buf[length:]

    def close(self):
        try:
            self.lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.lsock.close()


def origin_names(responses):
    return collections.Counter(r.header("X-Origin-Name") for r in responses)


class ExchangeEdgesOneWorkerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.o1 = Origin("o1").start()
        cls.o2 = Origin("o2").start()
        cls.early = EarlyUpstream()
        cls.staleup = StaleUpstream()
        cls.dead = f"127.0.0.1:{free_port()}"  # nothing listens there: connect refused
        try:
            cls.meridian = Meridian(CONFIG_ONE_WORKER, {
                "o1": cls.o1.address, "o2": cls.o2.address, "dead": cls.dead,
                "early": cls.early.address, "staleup": cls.staleup.address}).__enter__()
        except BaseException:
            cls.o1.stop()
            cls.o2.stop()
            cls.early.close()
            cls.staleup.close()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.meridian.__exit__(None, None, None)
        finally:
            cls.o1.stop()
            cls.o2.stop()
            cls.early.close()
            cls.staleup.close()

    def setUp(self):
        self.o1.reset_stats()
        self.o2.reset_stats()

    def assert_own_answer(self, r, status):
        self.assertEqual(r.status, status, r)
        self.assertIsNone(r.header("X-Origin-Name"), f"answer came from an origin: {r!r}")
        ctype = (r.header("Content-Type") or "").split(";")[0].strip().lower()
        self.assertEqual(ctype, "text/plain", r)

    def close_all_upstream(self, origin):
        """Make the origin FIN-close every idle connection meridian holds to it, and wait
        until none is left open on the origin side."""
        def all_closed():
            origin.close_idle()
            return origin.stats()["connections_active"] == 0
        wait_until(all_closed, 5, message="origin to have closed every idle connection")

    # ---- 1. stale pooled connection -----------------------------------------------------------

    def test_stale_pooled_connection_get_and_bodyless_post(self):
        with self.meridian.conn() as c:
            r1 = c.request("GET", "/stale/1")
            self.assertEqual(r1.status, 200, r1)
            first_conn = r1.header("X-Origin-Connection-Id")
            self.close_all_upstream(self.o1)

            # Same client connection, GET: the pooled connection is dead.
            r2 = c.request("GET", "/stale/2")
            self.assertEqual(r2.status, 200, f"GET after the origin closed the pooled "
                                             f"connection: {r2!r} {r2.text()!r}")
            self.assertEqual(r2.json()["path"], "/stale/2")
            self.assertNotEqual(r2.header("X-Origin-Connection-Id"), first_conn)

            # Same client connection, POST without a body.
            self.close_all_upstream(self.o1)
            r3 = c.request("POST", "/stale/3")
            self.assertEqual(r3.status, 200, f"body-less POST after the origin closed the "
                                             f"pooled connection: {r3!r} {r3.text()!r}")
            self.assertEqual(r3.json()["method"], "POST")
            self.assertEqual(r3.json()["body_length"], 0)

        # A new client connection after the close.
        self.close_all_upstream(self.o1)
        r4 = self.meridian.get("/stale/4")
        self.assertEqual(r4.status, 200, f"{r4!r} {r4.text()!r}")
        self.close_all_upstream(self.o1)
        with self.meridian.conn() as c:
            r5 = c.request("POST", "/stale/5", [("Content-Length", "0")])
        self.assertEqual(r5.status, 200, f"{r5!r} {r5.text()!r}")

    def test_stale_pooled_connection_racing_close(self):
        # The close races the next request: meridian may not have seen the FIN yet when the
        # request arrives. Whichever way the race goes, the client must get its 200 (a
        # pooled connection that turns out dead before any response byte is retried on a
        # fresh connection; a body-less POST is as safe as a GET).
        failures = []
        c = self.meridian.conn()
        try:
            for i in range(8):
                method = "GET" if i % 2 == 0 else "POST"
                r = c.request("GET", f"/race/warm{i}")
                self.assertEqual(r.status, 200, r)
                self.o1.close_idle()  # no wait: the next request follows at once
                r = c.request(method, f"/race/{i}")
                if r.status != 200:
                    failures.append((i, method, r.status, r.text()))
                if r.will_close:
                    c.close()
                    c = self.meridian.conn()
        finally:
            c.close()
        self.assertEqual(failures, [], "requests after an upstream idle close failed")

    def test_stale_pooled_connection_deterministic(self):
        # A single-endpoint backend whose pooled connection is found closed only when the
        # next request is written on it (see StaleUpstream). Nothing of a response came back,
        # so meridian must send the request again on a fresh connection (as nginx, HAProxy
        # and Envoy do for a reused connection) instead of answering 502.
        up = self.staleup
        with self.meridian.conn() as c:
            for i, method in enumerate(("GET", "GET", "POST", "GET", "POST")):
                r = c.request(method, f"/stale-up/{i}")
                self.assertEqual(r.status, 200,
                                 f"{method} /stale-up/{i} after the pooled upstream connection "
                                 f"went stale: {r!r} {r.text()!r}; upstream answered "
                                 f"{up.answered}, dropped {up.dropped}")
                self.assertTrue(r.text().startswith(f"{method} /stale-up/{i} "), r.text())
                if r.will_close:
                    break
        with up.lock:
            self.assertGreaterEqual(len(up.dropped), 1,
                                    "the test did not exercise a stale pooled connection")

    def test_stale_pooled_connection_empty_chunked_put_is_terminated(self):
        # Regression: a retried request whose (empty) chunked body was complete must still
        # carry the terminator on the fresh connection, or the origin waits for the body.
        with self.meridian.conn() as c:
            self.assertEqual(c.request("GET", "/stale-up/warm").status, 200)
            c.send(b"PUT /stale-up/empty HTTP/1.1\r\nHost: t\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
            r = c.read_response()
        self.assertEqual(r.status, 200, f"{r!r} {r.text()!r}")
        self.assertTrue(r.text().startswith("PUT /stale-up/empty HTTP/1.1 "), r.text())
        self.assertIn(" body=0 ", r.text())

    def test_stale_pooled_connection_body_arriving_during_reconnect(self):
        # Regression: the head goes up alone on a pooled connection the origin then drops;
        # the body arrives while meridian dials the fresh connection for the free retry, and
        # must reach the origin whole.
        body = pattern_bytes(6000)
        with self.meridian.conn() as c:
            self.assertEqual(c.request("GET", "/stale-up/warm2").status, 200)
            c.send(b"PUT /stale-up/late-body HTTP/1.1\r\nHost: t\r\n"
                   b"Content-Length: 6000\r\n\r\n")
            # Let the head travel alone and meet the dropped connection (this shapes the
            # scenario; the assertions below hold whatever the timing).
            time.sleep(0.1)
            c.send(body)
            r = c.read_response()
        self.assertEqual(r.status, 200, f"{r!r} {r.text()!r}")
        digest = hashlib.sha256(body).hexdigest()[:16]
        self.assertIn(f" body=6000 sha={digest}", r.text())

    def test_body_of_failed_request_is_never_parsed_as_a_request(self):
        # Regression: after a 502 on a keep-alive connection, the body of the failed request
        # (handed to the exchange before the upstream reset) must be discarded, not read as
        # the next request -- that would be request smuggling through meridian.
        smuggled = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
        with self.meridian.conn() as c:
            c.send(b"POST /reset-me?reset_before=1 HTTP/1.1\r\nHost: t\r\n"
                   b"Content-Length: %d\r\n\r\n%s" % (len(smuggled), smuggled))
            r = c.read_response()
            self.assertEqual(r.status, 502, r)
            if not r.will_close:
                r2 = c.request("GET", "/after-502")
                self.assertEqual(r2.status, 200)
                self.assertEqual(r2.json()["path"], "/after-502")
        paths = [e["path"] for e in self.o1.log() + self.o2.log()]
        self.assertNotIn("/smuggled", paths)

    # ---- 2. retry on another endpoint ---------------------------------------------------------

    def test_connect_failure_retried_on_other_endpoint(self):
        statuses = []
        c = self.meridian.conn()
        try:
            for i in range(20):
                r = c.request("GET", f"/retry2/{i}")
                statuses.append(r.status)
                if r.status == 200:
                    self.assertEqual(r.header("X-Origin-Name"), "o2")
                if r.will_close:
                    c.close()
                    c = self.meridian.conn()
        finally:
            c.close()
        self.assertEqual(statuses, [200] * 20,
                         "retries: 2 with a refusing endpoint next to a live one")
        self.assertEqual(self.o2.requests(), 20)

    def test_connect_failure_not_retried_with_retries_0(self):
        statuses = collections.Counter()
        for i in range(20):
            r = self.meridian.get(f"/retry0/{i}")
            statuses[r.status] += 1
            if r.status == 502:
                self.assert_own_answer(r, 502)
        self.assertEqual(statuses[200] + statuses[502], 20, statuses)
        self.assertGreater(statuses[502], 0,
                           f"round robin over a refusing endpoint without retries: {statuses}")
        self.assertGreater(statuses[200], 0, statuses)
        self.assertEqual(self.o2.requests(), statuses[200])

    # ---- 3. no retry of a POST whose body was sent ----------------------------------------------

    def tries(self, path):
        return len(self.o1.log(path=path)) + len(self.o2.log(path=path))

    def test_post_with_body_reset_before_answer_not_retried(self):
        with self.meridian.conn() as c:
            r = c.request("POST", "/two/reset-post?reset_before=1", body=b"payload" * 100)
        self.assert_own_answer(r, 502)
        self.assertEqual(self.tries("/two/reset-post"), 1,
                         "a non-idempotent request whose body was sent is not retried "
                         f"(o1 log {self.o1.log(path='/two/reset-post')}, "
                         f"o2 log {self.o2.log(path='/two/reset-post')})")

    def test_idempotent_reset_before_answer_retried(self):
        # The counterpart: the same failure is retried for a GET, so the single attempt
        # above is a decision, not an accident.
        r = self.meridian.get("/two/reset-get?reset_before=1")
        self.assert_own_answer(r, 502)
        self.assertGreaterEqual(self.tries("/two/reset-get"), 2, "GET reset was not retried")
        self.assertLessEqual(self.tries("/two/reset-get"), 3, "more than retries: 2")

    def test_bodyless_post_reset_after_sending_not_retried_elsewhere(self):
        # Retried only with "no body and nothing of it was sent": the head of a body-less POST
        # reached the origin, which may have acted on it, so no other endpoint gets it. (A
        # reused pooled connection gets its one fresh-connection try on the same endpoint.)
        with self.meridian.conn() as c:
            r = c.request("POST", "/two/reset-nobody?reset_before=1")
        self.assert_own_answer(r, 502)
        o1 = len(self.o1.log(path="/two/reset-nobody"))
        o2 = len(self.o2.log(path="/two/reset-nobody"))
        self.assertTrue((o1 == 0) != (o2 == 0),
                        f"a body-less POST went to both endpoints: o1 {o1}, o2 {o2}")
        self.assertLessEqual(o1 + o2, 2)

    # ---- 5. weighted round robin --------------------------------------------------------------

    def test_weighted_round_robin_exact(self):
        responses = []
        with self.meridian.conn() as c:
            for i in range(40):
                r = c.request("GET", f"/rr/{i}")
                self.assertEqual(r.status, 200, r)
                responses.append(r)
        self.assertEqual(origin_names(responses), {"o1": 30, "o2": 10})
        self.assertEqual(self.o1.requests(), 30)
        self.assertEqual(self.o2.requests(), 10)

    # ---- 6. early response ----------------------------------------------------------------------

    def test_early_response_from_upstream_closes_client_connection(self):
        with self.meridian.conn(timeout=10) as c:
            # 100000 bytes announced, 5000 sent: the upstream answers after the head.
            c.send(b"POST /early/upload HTTP/1.1\r\nHost: example.test\r\n"
                   b"Content-Length: 100000\r\n\r\n" + b"e" * 5000)
            r = c.read_response("POST")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.header("X-Early"), "1")
            self.assertEqual(r.body, EarlyUpstream.BODY)
            self.assertIn("close", r.connection_tokens,
                          "the rest of the body will never be read: the response should say "
                          f"Connection: close ({r!r})")
            self.assertIn(c.wait_closed(5), ("eof", "reset"),
                          "meridian kept the connection open after an early response to an "
                          "unfinished upload")
        self.assertGreaterEqual(len(self.early.heads), 1)
        self.assertTrue(self.early.heads[-1].startswith(b"POST /early/upload "))
        r2 = self.meridian.get("/after-early")
        self.assertEqual(r2.status, 200, r2)

    def test_413_mid_chunked_upload(self):
        with Meridian(CONFIG_BODY_LIMIT, {"o1": self.o1.address}) as m:
            host, port = split_address(m.listen_address)
            chunk = b"%x\r\n" % 3000 + b"c" * 3000 + b"\r\n"
            res = raw_exchange(host, port,
                               b"POST /up413 HTTP/1.1\r\nHost: example.test\r\n"
                               b"Transfer-Encoding: chunked\r\n\r\n" + chunk,
                               chunks=[chunk, chunk, b"0\r\n\r\n"], chunk_interval=0.2,
                               timeout=8)
            responses, _ = parse_responses(res.data, ["POST"])
            self.assertEqual(len(responses), 1, res)
            self.assert_own_answer(responses[0], 413)
            self.assertIn("close", responses[0].connection_tokens, responses[0])
            self.assertIn(res.ended, ("eof", "reset"), "connection not closed after 413")
            # The origin never got a complete request: meridian must not have ended the
            # truncated chunked body with a last-chunk.
            self.assertEqual(self.o1.log(path="/up413"), [],
                             "a truncated upload reached the origin as a complete request")
            r = m.get("/after-413")
            self.assertEqual(r.status, 200, r)

    # ---- 7. pipelining --------------------------------------------------------------------------

    def test_pipelined_requests_answered_in_order(self):
        with self.meridian.conn() as c:
            c.send(b"GET /pipe/1?delay_ms=300 HTTP/1.1\r\nHost: example.test\r\n\r\n"
                   b"GET /pipe/2 HTTP/1.1\r\nHost: example.test\r\n\r\n"
                   b"GET /pipe/3?size=100 HTTP/1.1\r\nHost: example.test\r\n\r\n")
            r1, r2, r3 = c.read_response(), c.read_response(), c.read_response()
        self.assertEqual([r1.status, r2.status, r3.status], [200, 200, 200])
        self.assertEqual(r1.json()["path"], "/pipe/1")
        self.assertEqual(r2.json()["path"], "/pipe/2")
        self.assertEqual(r3.body, pattern_bytes(100))
        self.assertEqual([e["path"] for e in self.o1.log()], ["/pipe/1", "/pipe/2", "/pipe/3"])

    # ---- 8. HTTP/1.0 clients --------------------------------------------------------------------

    def test_http10_keepalive_with_content_length(self):
        with self.meridian.conn(timeout=5) as c:
            for i in range(2):
                r = c.request("GET", f"/h10/{i}", [("Connection", "keep-alive")],
                              version="HTTP/1.0")
                self.assertEqual(r.status, 200, r)
                self.assertIn("keep-alive", r.connection_tokens, r)
                self.assertFalse(r.will_close, r)
                self.assertEqual(r.framing, "length", r)
                self.assertEqual(r.json()["path"], f"/h10/{i}")
        self.assertEqual(self.o1.requests(), 2)

    def test_http10_keepalive_with_chunked_origin_gets_close_delimited_body(self):
        with self.meridian.conn(timeout=5) as c:
            r = c.request("GET", "/h10c?size=5000&chunked=1&chunk_size=1000",
                          [("Connection", "keep-alive")], version="HTTP/1.0")
            self.assertEqual(r.status, 200, r)
            self.assertFalse(r.has_header("Transfer-Encoding"),
                             f"an HTTP/1.0 client cannot be sent chunked: {r!r}")
            self.assertNotIn("keep-alive", r.connection_tokens, r)
            self.assertEqual(r.framing, "close", r)  # read until meridian closed
            self.assertEqual(r.body, pattern_bytes(5000))

    # ---- 9, 10. bodiless responses --------------------------------------------------------------

    def test_head_keeps_content_length_no_body_connection_usable(self):
        with self.meridian.conn() as c:
            r = c.request("HEAD", "/head?size=5000")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.header("Content-Length"), "5000")
            self.assertEqual(r.body, b"")
            r = c.request("HEAD", "/head-chunked?size=5000&chunked=1")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.body, b"")
            r = c.request("GET", "/after-head")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["path"], "/after-head",
                             "stray bytes after a HEAD response")

    def test_204_and_304_without_body_connection_usable(self):
        with self.meridian.conn() as c:
            for status in (204, 304, 204):
                r = c.request("GET", f"/nobody?status={status}")
                self.assertEqual(r.status, status, r)
                self.assertEqual(r.header("X-Origin-Name"), "o1")
                self.assertFalse(r.has_header("Transfer-Encoding"), r)
                if status == 204:
                    self.assertFalse(r.has_header("Content-Length"),
                                     f"RFC 9110 8.6: no Content-Length in a 204: {r!r}")
                self.assertFalse(r.will_close, r)
                nxt = c.request("GET", f"/after-{status}")
                self.assertEqual(nxt.status, 200, nxt)
                self.assertEqual(nxt.json()["path"], f"/after-{status}",
                                 f"stray bytes after a {status} response")

    # ---- 11. oversized upstream head ------------------------------------------------------------

    def test_upstream_head_over_64kib_is_502(self):
        def pads(n):
            return [("x-origin-header", f"X-Pad-{i}: " + "p" * 4000) for i in range(n)]

        # Control: 32 KiB of response headers pass.
        r = self.meridian.get("/bighead-ok", pads(8))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Pad-7"), "p" * 4000)
        # 72 KiB of response headers: meridian refuses the response.
        r = self.meridian.get("/bighead", pads(18))
        self.assert_own_answer(r, 502)
        self.assertEqual(len(self.o1.log(path="/bighead")), 1,
                         "an invalid response is not retried once bytes came back")
        self.assertEqual(self.meridian.get("/after-bighead").status, 200)

    # ---- 12. debug headers ----------------------------------------------------------------------

    def test_debug_headers_name_region_and_endpoint(self):
        r = self.meridian.get("/dbg")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("x-meridian-region"), "r1", r)
        self.assertEqual(r.header("x-meridian-endpoint"), self.o1.address, r)
        by_name = {"o1": self.o1.address, "o2": self.o2.address}
        with self.meridian.conn() as c:
            for i in range(4):
                r = c.request("GET", f"/rr/dbg{i}")
                self.assertEqual(r.status, 200)
                self.assertEqual(r.header("x-meridian-region"), "r-weighted", r)
                self.assertEqual(r.header("x-meridian-endpoint"),
                                 by_name[r.header("X-Origin-Name")],
                                 "x-meridian-endpoint does not name the endpoint that served")

    # ---- 14. pool reuse across client connections -----------------------------------------------

    def test_pool_reuse_across_client_connections(self):
        results = collections.Counter()
        errors = []
        lock = threading.Lock()

        def client(t):
            try:
                with HttpConn(self.meridian.listen_address) as c:
                    for i in range(10):
                        r = c.request("GET", f"/pool/{t}/{i}")
                        with lock:
                            results[r.status] += 1
            except Exception as e:  # noqa: BLE001
                with lock:
                    errors.append(repr(e))

        threads = [threading.Thread(target=client, args=(t,)) for t in range(10)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(30)
        self.assertEqual(errors, [])
        self.assertEqual(results, {200: 100})
        st = self.o1.stats()
        self.assertEqual(st["requests"], 100)
        self.assertLessEqual(st["connections_accepted"], 12,
                             f"100 requests from 10 clients opened "
                             f"{st['connections_accepted']} upstream connections")


class ExchangeEdgesTwoWorkersTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.o1 = Origin("o1").start()
        cls.o2 = Origin("o2").start()
        try:
            cls.meridian = Meridian(CONFIG_TWO_WORKERS, {
                "o1": cls.o1.address, "o2": cls.o2.address}).__enter__()
        except BaseException:
            cls.o1.stop()
            cls.o2.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.meridian.__exit__(None, None, None)
        finally:
            cls.o1.stop()
            cls.o2.stop()

    def setUp(self):
        self.o1.reset_stats()
        self.o2.reset_stats()

    # ---- 4. least_conn --------------------------------------------------------------------------

    def test_least_conn_spreads_concurrent_and_rotates_ties(self):
        n = 8
        conns = [self.meridian.conn(timeout=10) for _ in range(n)]
        try:
            for i, c in enumerate(conns):
                c.send_request("GET", f"/lc/slow{i}?delay_ms=1500")
            slow = [c.read_response() for c in conns]
        finally:
            for c in conns:
                c.close()
        self.assertEqual([r.status for r in slow], [200] * n)
        counts = origin_names(slow)
        for name in ("o1", "o2"):
            self.assertGreaterEqual(counts[name], n // 2 - 1,
                                    f"least_conn with {n} concurrent slow requests: {counts}")

        fast = []
        with self.meridian.conn() as c:
            for i in range(20):
                r = c.request("GET", f"/lc/fast{i}")
                self.assertEqual(r.status, 200, r)
                fast.append(r)
        counts = origin_names(fast)
        for name in ("o1", "o2"):
            self.assertGreaterEqual(counts[name], 5,
                                    f"least_conn ties (both idle) should rotate: {counts}")

    # ---- 12. debug headers off ------------------------------------------------------------------

    def test_debug_headers_absent_when_off(self):
        for target in ("/nodbg", "/lc/nodbg"):
            r = self.meridian.get(target)
            self.assertEqual(r.status, 200, r)
            self.assertFalse(r.has_header("x-meridian-region"), r)
            self.assertFalse(r.has_header("x-meridian-endpoint"), r)

    # ---- 13. max_connections_per_endpoint -------------------------------------------------------

    def test_full_endpoint_gives_503_retry_after(self):
        with self.meridian.conn(timeout=10) as c1:
            c1.send_request("GET", "/cap/slow?delay_ms=2000")
            wait_until(lambda: self.o1.log(path="/cap/slow"), 5,
                       message="the slow request to reach the origin")
            r2 = self.meridian.get("/cap/second")
            self.assertEqual(r2.status, 503, f"{r2!r} {r2.text()!r}")
            self.assertEqual(r2.header("Retry-After"), "1", r2)
            self.assertIsNone(r2.header("X-Origin-Name"), r2)
            r1 = c1.read_response()
            self.assertEqual(r1.status, 200, r1)
        self.assertEqual(self.o1.log(path="/cap/second"), [],
                         "the request refused for a full endpoint reached the origin")
        # The slot is free again once the slow request is done.
        wait_until(lambda: self.meridian.get("/cap/third").status == 200, 5,
                   message="the endpoint to accept a request again")


if __name__ == "__main__":
    unittest.main()
