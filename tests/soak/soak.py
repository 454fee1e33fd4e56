#!/usr/bin/env python3
"""Fault soak (docs/hardening.md): meridian (2 workers) in front of three test origins in two
regions, for a bounded time, while everything that can go wrong around it does:

- origins that reset before answering, reset or close mid-body, stall past the route
  timeout, or answer garbage (per request, chosen at random by the client's query);
- health flapping: one origin's health check fails and recovers every ~0.7 s;
- a reload every second (alternating between two configurations, one without a route);
- clients that disconnect mid-head, mid-body, or while the response comes; pipelining;
  HTTP/2 (prior knowledge) clients with several streams, some reset.

Checked: meridian never crashes and exits 0 on SIGTERM; every reload is accepted; every
client gets a well-formed response or a clean close (a truncated body only with the
connection closed); no request hangs past the route timeout plus slack; RSS after the
warm-up stays within 3 MiB of its value at the end of the warm-up. Prints a Markdown report
(requests, faults injected, outcomes, RSS).

    tests/soak/run.sh [--duration SECONDS] [--sanitize]

Exits non-zero when a check fails."""

import argparse
import collections
import os
import random
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "support"))

from harness import Meridian, Origin, parse_responses, raw_exchange, split_address  # noqa: E402

try:
    from h2client import H2Client
except ImportError:
    H2Client = None

CONFIG = """
node: {name: soak}
workers: 2
admin:
  listen: "{admin}"
access_log: {path: off}
limits: {header_timeout: 2s, idle_timeout: 5s, max_request_body_bytes: 1MiB}
listeners:
  - name: main
    listen: "{listen}"
    routes:
{extra_route}      - {name: all, backend: b, timeout: 2s, retries: 1}
backends:
  - name: b
    health_check: {path: /health, interval: 300ms, timeout: 250ms, healthy_threshold: 1,
                   unhealthy_threshold: 1}
    regions:
      - name: r1
        location: {lat: 50.1, lon: 8.7}
        endpoints: [{address: "{o1}"}, {address: "{o2}"}]
      - name: r2
        location: {lat: 40.7, lon: -74.0}
        endpoints: [{address: "{o3}"}]
"""
EXTRA_ROUTE = "      - {name: slow, match: {path_prefix: /slow}, backend: b, timeout: 1s}\n"

ROUTE_TIMEOUT = 2.0
SLACK = 3.0  # the answer to any request comes within the route timeout plus this

# Faults the origin injects, chosen per request through its query parameters.
FAULTS = [
    ("none", ""),
    ("none", "size=20000"),
    ("none", "size=300000&chunked=1"),
    ("reset_before", "reset_before=1"),
    ("reset_mid_body", "size=200000&reset_after=60000"),
    ("close_mid_body", "size=200000&close_after=50000"),
    ("stall", "delay_ms=3000"),
    ("garbage", "garbage=1"),
    ("slow_body", "size=5000&body_delay_ms=300"),
]
# What the client does.
CLIENT_KINDS = ["get", "get", "get", "post", "pipeline", "abort_head", "abort_body",
                "abort_response", "h2"]


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = collections.Counter()
        self.failures = []

    def add(self, key, n=1):
        with self.lock:
            self.counts[key] += n

    def fail(self, message):
        with self.lock:
            if len(self.failures) < 50:
                self.failures.append(message)
            self.counts["check failures"] += 1


def check_http1(stats, kind, fault, data, ended, expected):
    """Well-formed responses, as many as requests were sent, unless the origin's fault cut
    a body (then the connection closes behind the cut response); nothing after them; and an
    end that is not a hang."""
    if ended == "timeout":
        stats.fail(f"{kind}/{fault}: no answer within {ROUTE_TIMEOUT + SLACK}s")
        return
    responses, rest = parse_responses(data)
    cut = fault in ("reset_mid_body", "close_mid_body") and rest.startswith(b"HTTP/1.1 200")
    if rest and not cut:
        stats.fail(f"{kind}/{fault}: malformed or cut answer: {rest[:120]!r}")
        return
    if cut:
        stats.add("outcome: truncated then closed")
    for r in responses:
        stats.add(f"status {r.status}")
        if not (100 <= r.status <= 599):
            stats.fail(f"{kind}/{fault}: status {r.status}")
    answered = len(responses) + (1 if cut else 0)
    if answered < expected and not cut:
        # Closed (or reset) without an answer to every request: no request may fail because
        # of a reload, and refused input is answered before the close -- faults, reloads and
        # health flaps included.
        stats.fail(f"{kind}/{fault}: {len(responses)} answers to {expected} requests, then "
                   f"{ended}")


def http1_client(address, stats, stop, seed):
    rng = random.Random(seed)
    host, port = split_address(address)
    while not stop.is_set():
        kind = rng.choice(CLIENT_KINDS)
        fault, query = rng.choice(FAULTS)
        if kind == "h2":
            h2_client(address, stats, rng)
            continue
        stats.add(f"client: {kind}")
        stats.add(f"fault: {fault}")
        path = rng.choice(["/a", "/b", "/slow/x"]) + (f"?{query}" if query else "")
        try:
            if kind.startswith("abort_"):
                leave_early(kind, path, host, port, stats)
                continue
            timeout = ROUTE_TIMEOUT + SLACK
            if kind == "post":
                body = os.urandom(rng.choice([10, 5000, 70000]))
                data = (f"POST {path} HTTP/1.1\r\nHost: soak.test\r\nConnection: close\r\n"
                        f"Content-Length: {len(body)}\r\n\r\n").encode() + body
                expected = 1
            elif kind == "pipeline":
                data = (f"GET {path} HTTP/1.1\r\nHost: soak.test\r\n\r\n"
                        f"GET /a HTTP/1.1\r\nHost: soak.test\r\nConnection: close\r\n\r\n"
                        ).encode()
                expected = 2
                timeout += ROUTE_TIMEOUT
            else:
                data = (f"GET {path} HTTP/1.1\r\nHost: soak.test\r\nConnection: close\r\n"
                        f"\r\n").encode()
                expected = 1
            res = raw_exchange(host, port, data, timeout=timeout)
            stats.add("requests", expected)
            check_http1(stats, kind, fault, res.data, res.ended, expected)
        except Exception as e:  # noqa: BLE001 -- any client-side surprise is a finding
            stats.fail(f"{kind}/{fault}: {e!r}")


def leave_early(kind, path, host, port, stats):
    """A client that goes away mid-head, mid-body or mid-response."""
    with socket.create_connection((host, port), timeout=5) as s:
        if kind == "abort_head":
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: soak.test\r\nX-Half: ".encode())
            stats.add("outcome: client left mid-head")
        elif kind == "abort_body":
            s.sendall(f"POST {path} HTTP/1.1\r\nHost: soak.test\r\n"
                      f"Content-Length: 100000\r\n\r\n".encode() + b"x" * 1000)
            stats.add("outcome: client left mid-body")
        else:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: soak.test\r\n\r\n".encode())
            s.settimeout(ROUTE_TIMEOUT + SLACK)
            try:
                s.recv(100)
            except (socket.timeout, ConnectionResetError):
                pass
            stats.add("outcome: client left mid-response")


def h2_client(address, stats, rng):
    if H2Client is None:
        return
    stats.add("client: h2")
    try:
        with H2Client(address, timeout=ROUTE_TIMEOUT + SLACK) as c:
            ids = []
            for _ in range(rng.randint(1, 8)):
                fault, query = rng.choice(FAULTS)
                stats.add(f"fault: {fault}")
                ids.append(c.request("GET", "/h2" + (f"?{query}" if query else ""),
                                     authority="soak.test"))
            if rng.random() < 0.3:
                c.conn.reset_stream(ids[0])
                c._flush()
                c.streams[ids[0]].reset = 8
                stats.add("outcome: h2 stream reset by the client")
            c.run_until(lambda: all(c.streams[i].done for i in ids) or c.closed,
                        timeout=ROUTE_TIMEOUT + SLACK)
            for i in ids:
                st = c.streams[i]
                stats.add("requests")
                if st.status is not None:
                    stats.add(f"status {st.status}")
                elif st.reset is not None:
                    stats.add("outcome: h2 stream reset")
    except TimeoutError:
        stats.fail("h2: streams not done within the route timeout plus slack")
    except Exception as e:  # noqa: BLE001 -- a connection closed under open streams is a finding
        stats.fail(f"h2: {e!r}")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=300)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--binary", default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sanitized", action="store_true",
                    help="an ASan build: RSS is not judged (ASan's quarantine keeps freed "
                         "memory), leaks and errors are")
    a = ap.parse_args()

    stats = Stats()
    origins = [Origin(f"o{i}").start() for i in (1, 2, 3)]
    subs = {f"o{i}": o.address for i, o in enumerate(origins, 1)}
    configs = [CONFIG.replace("{extra_route}", EXTRA_ROUTE), CONFIG.replace("{extra_route}", "")]
    binary = os.path.abspath(a.binary) if a.binary else None
    m = Meridian(configs[0], subs, binary=binary, stop_timeout=30)
    m.start()
    stop = threading.Event()
    rss = []
    reloads = collections.Counter()
    flaps = [0]

    def reloader():
        i = 0
        while not stop.wait(1.0):
            i += 1
            m.write_config(configs[i % 2], subs)
            status = m.reload().status
            reloads[status] += 1
            if status != 200:
                stats.fail(f"reload answered {status}")

    def flapper():
        healthy = True
        while not stop.wait(0.7):
            healthy = not healthy
            origins[1].set_health(200 if healthy else 500)
            flaps[0] += 1

    def sampler():
        while not stop.wait(1.0):
            rss.append((time.monotonic(), rss_kib(m.pid)))

    started = time.monotonic()
    threads = [threading.Thread(target=reloader), threading.Thread(target=flapper),
               threading.Thread(target=sampler)]
    threads += [threading.Thread(target=http1_client, args=(m.listen_address, stats, stop,
                                                            a.seed * 100 + i))
                for i in range(a.clients)]
    for t in threads:
        t.start()
    try:
        while time.monotonic() - started < a.duration and m.running:
            time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    elapsed = time.monotonic() - started
    crashed = not m.running
    code = m.stop()
    problem = m._exit_problem()
    for o in origins:
        o.stop()

    # RSS: flat after the warm-up (the first fifth of the run).
    warm = [v for t, v in rss if t - started >= elapsed / 5]
    rss_after_warmup = warm[0] if warm else 0
    rss_end = rss[-1][1] if rss else 0
    rss_max = max(warm) if warm else 0
    # Flat: never more than 3 MiB above the value at the end of the warm-up (a leak of a few
    # hundred bytes per request would exceed it over a 5-minute run).
    flat = bool(rss_after_warmup and rss_max <= rss_after_warmup + 3072)
    rss_judged = not a.sanitized
    ok = (not crashed and code == 0 and problem is None and not stats.failures
          and (flat or not rss_judged))

    c = stats.counts
    print(f"## Fault soak: {elapsed:.0f} s, binary {m.binary}\n")
    print(f"- command: `tests/soak/run.sh --duration {a.duration:g}"
          f"{' --sanitize' if a.sanitized else ''}`")
    print(f"- requests: {c['requests']:,} (clients: {a.clients} threads)")
    print("- faults injected: " + ", ".join(f"{k[7:]} {v:,}" for k, v in sorted(c.items())
                                            if k.startswith("fault: ")))
    print(f"- reloads: {sum(reloads.values())} ({dict(reloads)}); health flaps: {flaps[0]}")
    print("- client behaviour: " + ", ".join(f"{k[8:]} {v:,}" for k, v in sorted(c.items())
                                             if k.startswith("client: ")))
    print("- answers: " + ", ".join(f"{k[7:]}: {v:,}" for k, v in sorted(c.items())
                                    if k.startswith("status ")))
    print("- other outcomes: " + ", ".join(f"{k[9:]}: {v:,}" for k, v in sorted(c.items())
                                           if k.startswith("outcome: ")))
    print(f"- crashes: {'1' if crashed else '0'}; exit code on SIGTERM: {code}; "
          f"sanitizer or exit problems: {problem or 'none'}")
    print(f"- VmRSS: {rss[0][1] if rss else 0:,} KiB at 1 s, {rss_after_warmup:,} KiB after the "
          f"warm-up, max {rss_max:,} KiB after it, {rss_end:,} KiB at the end "
          f"({('flat' if flat else 'NOT flat') if rss_judged else 'not judged: ASan quarantine'})")
    print(f"- check failures: {c['check failures']}")
    for f in stats.failures[:20]:
        print(f"  - {f}")
    print(f"\nresult: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
