#!/usr/bin/env python3
"""Traffic client of the anycast test (tests/anycast/run.sh); Python 3 standard library only.

    client.py run --target 198.19.255.1:80 --paths /a/,/b/ --out FILE --progress FILE
                  [--threads 12] [--max-seconds 60] [--max-requests 200000]
                  [--timeout 2] [--pause-ms 2]
    client.py stats FILE [--path /b/] [--started-after MS] [--started-before MS]
                    [--route-monitor LOG --anycast ADDR]
    client.py route-event LOG ANYCAST T0_MS ADDR gone|back

`run` starts --threads threads. Each sends GET requests in a loop, one request per fresh TCP
connection (so every request is a new flow that the router's ECMP hashes anew, and new
connections follow a routing change at once), cycling through --paths. It stops on SIGTERM
or SIGINT, after --max-seconds, or after --max-requests requests, whichever comes first, and
then writes --out: a JSON document with every request as
[start_ms, end_ms, path, node, outcome] (unix milliseconds; node is the name in the
response's Via header, e.g. edge-a, or "" when there was no answer; outcome is "ok" for a
200, "status-N" for another status, or the error: refused, reset, timeout, unreachable,
closed, or an exception name). While it runs it rewrites --progress about every 100 ms with
the counts so far ({"total", "ok", "failed", "nodes": {name: count}}), so the test can wait
for a condition instead of sleeping.

`stats` reads such a file and prints one line of shell assignments for the requests that
match (by path prefix and start time):
    total=N ok=N failed=N rehashed=N edge_a=N edge_b=N outcomes='refused:3 status-503:1'
With --route-monitor (the output of `ip -ts -o monitor route` in the router namespace), a
request that failed with a reset while the kernel route to the anycast address changed (a
change between its start and its end) is counted as `rehashed`, not as failed: the route
change moved its connection, already open to one node, to the other node, which knows
nothing of it and resets it. That is what ECMP does to open connections whenever a next hop
goes or comes (see README.md), whatever the nodes do.

`route-event` prints the milliseconds from T0_MS to the first change of the anycast route in
such a log after which ADDR is no longer (gone) or again (back) a next hop, or "?".
"""

import argparse
import datetime
import errno
import http.client
import json
import os
import signal
import socket
import sys
import threading
import time


def now_ms():
    return int(time.time() * 1000)


def node_of(via):
    # meridian appends "1.1 <node.name>"; take the last entry's name.
    if not via:
        return ""
    last = via.split(",")[-1].strip().split()
    return last[1] if len(last) >= 2 else last[0] if last else ""


def classify(exc):
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, ConnectionResetError) or isinstance(exc, BrokenPipeError):
        return "reset"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timeout"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "closed"
    if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "unreachable"
    return type(exc).__name__


class Runner:
    def __init__(self, args):
        self.args = args
        host, port = args.target.rsplit(":", 1)
        self.host, self.port = host, int(port)
        self.paths = [p for p in args.paths.split(",") if p]
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.records = []
        self.ok = 0
        self.failed = 0
        self.nodes = {}
        self.issued = 0

    def take_ticket(self):
        with self.lock:
            if self.issued >= self.args.max_requests:
                return False
            self.issued += 1
            return True

    def one(self, path):
        start = now_ms()
        node = ""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.args.timeout)
        try:
            conn.request("GET", path, headers={"Host": "anycast.test", "Connection": "close"})
            resp = conn.getresponse()
            resp.read()
            node = node_of(resp.getheader("Via"))
            outcome = "ok" if resp.status == 200 else "status-%d" % resp.status
        except Exception as exc:  # every failure is counted, none ends the run
            outcome = classify(exc)
        finally:
            conn.close()
        return [start, now_ms(), path, node, outcome]

    def worker(self, index):
        i = index
        while not self.stop.is_set() and self.take_ticket():
            path = self.paths[i % len(self.paths)]
            i += 1
            rec = self.one(path)
            with self.lock:
                self.records.append(rec)
                if rec[4] == "ok":
                    self.ok += 1
                else:
                    self.failed += 1
                if rec[3]:
                    self.nodes[rec[3]] = self.nodes.get(rec[3], 0) + 1
            if self.args.pause_ms:
                self.stop.wait(self.args.pause_ms / 1000.0)

    def write_progress(self):
        with self.lock:
            doc = {"total": self.ok + self.failed, "ok": self.ok, "failed": self.failed,
                   "nodes": dict(self.nodes), "time_ms": now_ms()}
        tmp = self.args.progress + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f)
        os.replace(tmp, self.args.progress)

    def run(self):
        signal.signal(signal.SIGTERM, lambda *_: self.stop.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop.set())
        threads = [threading.Thread(target=self.worker, args=(n,), daemon=True)
                   for n in range(self.args.threads)]
        started = now_ms()
        for t in threads:
            t.start()
        deadline = time.monotonic() + self.args.max_seconds
        while not self.stop.is_set() and any(t.is_alive() for t in threads):
            if time.monotonic() >= deadline:
                break
            self.write_progress()
            self.stop.wait(0.1)
        self.stop.set()
        for t in threads:
            # a request in progress ends within its timeout
            t.join(self.args.timeout + 2)
        self.write_progress()
        with self.lock:
            doc = {"target": self.args.target, "started_ms": started, "ended_ms": now_ms(),
                   "threads": self.args.threads, "requests": sorted(self.records)}
        with open(self.args.out + ".tmp", "w") as f:
            json.dump(doc, f)
        os.replace(self.args.out + ".tmp", self.args.out)
        return 0


def route_changes(path, anycast):
    """[(unix ms, route line)] of every change of the anycast route in an `ip -ts -o monitor
    route` log."""
    out = []
    with open(path, errors="replace") as f:
        for line in f:
            if not line.startswith("["):
                continue
            stamp, _, route = line.partition("] ")
            words = route.split()
            if words[:1] == ["Deleted"]:
                words = words[1:]
            if not words or words[0] not in (anycast, anycast + "/32"):
                continue
            t = datetime.datetime.fromisoformat(stamp[1:]).timestamp() * 1000
            out.append((int(t), route))
    return out


def route_event(args):
    for t, route in route_changes(args.log, args.anycast):
        present = not route.startswith("Deleted") and ("via %s " % args.addr) in route
        if t >= args.t0 and present == (args.want == "back"):
            print(t - args.t0)
            return 0
    print("?")
    return 0


def stats(args):
    with open(args.file) as f:
        doc = json.load(f)
    changes = [t for t, _ in route_changes(args.route_monitor, args.anycast)] \
        if args.route_monitor else []
    total = ok = rehashed = 0
    nodes = {}
    outcomes = {}
    for start, end, path, node, outcome in doc["requests"]:
        if args.path and not path.startswith(args.path):
            continue
        if args.started_after is not None and start < args.started_after:
            continue
        if args.started_before is not None and start >= args.started_before:
            continue
        total += 1
        if outcome == "ok":
            ok += 1
        elif outcome == "reset" and any(start - 1 <= t <= end + 1 for t in changes):
            rehashed += 1
        else:
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if node:
            nodes[node] = nodes.get(node, 0) + 1
    out = "total=%d ok=%d failed=%d rehashed=%d edge_a=%d edge_b=%d outcomes='%s'" % (
        total, ok, total - ok - rehashed, rehashed, nodes.get("edge-a", 0), nodes.get("edge-b", 0),
        " ".join("%s:%d" % kv for kv in sorted(outcomes.items())))
    print(out)
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--target", required=True)
    r.add_argument("--paths", default="/")
    r.add_argument("--out", required=True)
    r.add_argument("--progress", required=True)
    r.add_argument("--threads", type=int, default=12)
    r.add_argument("--max-seconds", type=float, default=60)
    r.add_argument("--max-requests", type=int, default=200000)
    r.add_argument("--timeout", type=float, default=2.0)
    r.add_argument("--pause-ms", type=float, default=2.0)
    s = sub.add_parser("stats")
    s.add_argument("file")
    s.add_argument("--path")
    s.add_argument("--started-after", type=int)
    s.add_argument("--started-before", type=int)
    s.add_argument("--route-monitor")
    s.add_argument("--anycast", default="198.19.255.1")
    e = sub.add_parser("route-event")
    e.add_argument("log")
    e.add_argument("anycast")
    e.add_argument("t0", type=int)
    e.add_argument("addr")
    e.add_argument("want", choices=["gone", "back"])
    args = parser.parse_args()
    if args.cmd == "run":
        return Runner(args).run()
    if args.cmd == "route-event":
        return route_event(args)
    return stats(args)


if __name__ == "__main__":
    sys.exit(main())
