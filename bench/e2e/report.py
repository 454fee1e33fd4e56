#!/usr/bin/env python3
"""Parses the raw outputs bench/e2e/run.sh collects and prints its tables (stdlib only).

run.sh appends one tab-separated record per measurement to a runs file:
  wrk        SCENARIO ROUND TARGET WRK_OR_H2LOAD_OUTPUT_FILE CPU_TICKS|- PEAK_RSS_KIB|-
  idle       TARGET CONNS RSS_BEFORE_KIB RSS_AFTER_KIB   (also tls-idle-h1, tls-idle-h2)
  callgrind  TARGET REQUESTS CALLGRIND_OUT_FILE
  strace     TARGET REQUESTS STRACE_SUMMARY_FILE
and calls
  report.py line FILE [CPU_TICKS CLK_TCK PEAK_RSS_KIB]    one progress line for one wrk run
  report.py table RUNS SCENARIO --title T --clk-tck N     that scenario's table
Medians are over rounds (statistics.median: the mean of the middle two for an even count).
"""
import argparse
import re
import statistics
import sys

PROXIES = ["meridian", "meridian-base", "meridian-h2c", "nginx", "haproxy"]
ORDER = ["direct"] + PROXIES

# wrk prints times as 512.00us / 1.23ms / 2.00s / 1.00m and sizes in 1024-based units.
TIME_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
SIZE_UNITS = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}


def wrk_time_ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not m:
        raise ValueError(f"unexpected wrk time {text!r}")
    return float(m.group(1)) * TIME_UNITS_MS[m.group(2)]


def parse_h2load(path, text):
    """The same numbers from one h2load output (no percentiles: p50/p99 are None)."""
    def find(pattern):
        m = re.search(pattern, text, re.M)
        if not m:
            raise SystemExit(f"report.py: no match for {pattern!r} in {path}:\n{text}")
        return m
    finished = find(r"^finished in [\d.]+\w+, ([\d.]+) req/s, ([\d.]+)(\w+)/s")
    counts = find(r"^requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, "
                  r"(\d+) errored, (\d+) timeout")
    codes = find(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx")
    return {
        "requests": int(counts.group(1)),
        "rps": float(finished.group(1)),
        "p50": None,
        "p99": None,
        "mibps": float(finished.group(2)) * SIZE_UNITS[finished.group(3)] / (1 << 20),
        "sock_err": sum(int(g) for g in counts.groups()[1:]),
        "non2xx": sum(int(g) for g in codes.groups()[1:]),
    }


def parse_wrk(path):
    """The numbers this harness uses from one `wrk --latency` (or h2load) output."""
    text = open(path, encoding="utf-8", errors="replace").read()
    if "h2load" in text or text.lstrip().startswith("starting benchmark"):
        return parse_h2load(path, text)

    def find(pattern, required=True):
        m = re.search(pattern, text, re.M)
        if not m and required:
            raise SystemExit(f"report.py: no match for {pattern!r} in {path}:\n{text}")
        return m

    requests = find(r"^\s*(\d+) requests in ([\d.]+\w+),")
    transfer = find(r"^Transfer/sec:\s*([\d.]+)(\w+)")
    errors = find(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", False)
    non2xx = find(r"Non-2xx or 3xx responses: (\d+)", False)
    return {
        "requests": int(requests.group(1)),
        "rps": float(find(r"^Requests/sec:\s*([\d.]+)").group(1)),
        "p50": wrk_time_ms(find(r"^\s*50%\s+(\S+)").group(1)),
        "p99": wrk_time_ms(find(r"^\s*99%\s+(\S+)").group(1)),
        "mibps": float(transfer.group(1)) * SIZE_UNITS[transfer.group(2)] / (1 << 20),
        "sock_err": sum(int(g) for g in errors.groups()) if errors else 0,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def with_proxy_metrics(run, cpu_ticks, clk_tck, hwm_kib):
    """CPU µs per request of the proxy process alone (utime+stime ticks over the run) and its
    peak RSS over the run (VmHWM after a clear_refs reset); '-' for the direct target."""
    run["cpu_us"] = None
    run["hwm_mib"] = None
    if cpu_ticks not in (None, "-") and run["requests"] > 0:
        run["cpu_us"] = int(cpu_ticks) * 1e6 / int(clk_tck) / run["requests"]
    if hwm_kib not in (None, "-"):
        run["hwm_mib"] = int(hwm_kib) / 1024
    return run


def parse_callgrind_total(path):
    """Total Ir of a callgrind out file: its 'totals:' line (or 'summary:' in older files)."""
    for line in open(path, encoding="utf-8", errors="replace"):
        if line.startswith(("totals:", "summary:")):
            return int(line.split()[1])
    raise SystemExit(f"report.py: no totals:/summary: line in {path}")


def parse_strace(path):
    """`strace -c` summary -> ({syscall: calls}, total calls)."""
    calls, total = {}, None
    for line in open(path, encoding="utf-8", errors="replace"):
        parts = line.split()
        # rows: % time, seconds, usecs/call, calls, [errors], syscall
        if len(parts) in (5, 6) and re.fullmatch(r"[\d.]+", parts[0]) and parts[3].isdigit():
            if parts[-1] == "total":
                total = int(parts[3])
            else:
                calls[parts[-1]] = int(parts[3])
    if total is None:
        raise SystemExit(f"report.py: no 'total' line in strace summary {path}")
    return calls, total


def fmt(value, spec=",.0f"):
    return "-" if value is None else format(value, spec)


def table(headers, rows):
    """Left-aligned first column, right-aligned numbers, two spaces between columns."""
    cells = [headers] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    out = []
    for n, row in enumerate(cells):
        out.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(row, widths))).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def read_runs(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def ratio_line(label, values, pairs):
    parts = [f"{a}/{b} {values[a] / values[b]:.2f}" for a, b in pairs
             if values.get(a) and values.get(b)]
    return f"{label}: " + ("  ".join(parts) if parts else "-")


def wrk_table(records, scenario, title, clk_tck):
    runs = {}  # target -> [run per round, in round order]
    for kind, scen, rnd, target, path, ticks, hwm in (r for r in records if r[0] == "wrk"):
        if scen == scenario:
            runs.setdefault(target, []).append(
                (int(rnd), with_proxy_metrics(parse_wrk(path), ticks, clk_tck, hwm)))
    targets = [t for t in ORDER if t in runs]
    if not targets:
        return f"== {title}\n(no runs)"
    nrounds = max(len(v) for v in runs.values())
    med = {}
    rows = []
    for t in targets:
        rs = [r for _, r in sorted(runs[t], key=lambda x: x[0])]

        def m(key):
            vals = [r[key] for r in rs if r[key] is not None]
            return statistics.median(vals) if vals else None
        med[t] = {k: m(k) for k in ("rps", "p50", "p99", "mibps", "cpu_us", "hwm_mib")}
        rows.append([t, fmt(med[t]["rps"]), fmt(med[t]["p50"], ".2f"), fmt(med[t]["p99"], ".2f"),
                     fmt(med[t]["mibps"], ",.1f"), fmt(med[t]["cpu_us"], ".1f"),
                     fmt(med[t]["hwm_mib"], ".1f"),
                     sum(r["sock_err"] for r in rs), sum(r["non2xx"] for r in rs)])
    out = [f"== {title}  [median of {nrounds} round{'s' if nrounds > 1 else ''}]",
           table(["target", "req/s", "p50 ms", "p99 ms", "MiB/s", "CPU us/req",
                  "peak RSS MiB", "sock errors*", "non-2xx*"], rows),
           "(* summed over all rounds; CPU and RSS are the proxy process's alone)"]
    rps = {t: med[t]["rps"] for t in targets}
    cpu = {t: med[t]["cpu_us"] for t in targets}
    out.append(ratio_line("req/s vs direct", rps, [(p, "direct") for p in PROXIES]))
    out.append(ratio_line("req/s between proxies", rps,
                          [("meridian", "nginx"), ("meridian", "haproxy"), ("nginx", "haproxy"),
                           ("meridian-h2c", "meridian"), ("meridian", "meridian-base")]))
    out.append(ratio_line("CPU/req meridian vs meridian-base", cpu, [("meridian", "meridian-base")]))
    out.append(ratio_line("CPU/req between proxies", cpu,
                          [("meridian", "nginx"), ("meridian", "haproxy"), ("nginx", "haproxy")]))
    # The spread is the first thing to look at on a noisy machine, so print every round.
    out.append("req/s per round: " + "; ".join(
        f"{t} " + " ".join(fmt(r["rps"]) for _, r in sorted(runs[t], key=lambda x: x[0]))
        for t in targets))
    return "\n".join(out)


def idle_table(records, kind, title):
    rows = []
    for _, target, conns, before, after in (r for r in records if r[0] == kind):
        conns, before, after = int(conns), int(before), int(after)
        rows.append([target, f"{conns:,}", f"{before:,}", f"{after:,}",
                     f"{(after - before) / conns:.2f}"])
    return f"== {title}\n" + table(
        ["target", "connections", "VmRSS before KiB", "VmRSS after KiB", "KiB/conn"], rows)


def diff_table(records, kind, title, unit):
    """Per-request cost by differencing two runs: (X(N2) - X(N1)) / (N2 - N1), which cancels
    start-up, shutdown and the client's connection set-up."""
    by_target = {}
    for _, target, n, path in (r for r in records if r[0] == kind):
        by_target.setdefault(target, {})[int(n)] = path
    rows, extra = [], []
    for target in [t for t in PROXIES if t in by_target]:
        runs = by_target[target]
        if len(runs) != 2:
            rows.append([target, "-", "-", "-"])
            continue
        n1, n2 = sorted(runs)
        if kind.startswith("callgrind"):
            v1, v2 = parse_callgrind_total(runs[n1]), parse_callgrind_total(runs[n2])
        else:
            (c1, v1), (c2, v2) = parse_strace(runs[n1]), parse_strace(runs[n2])
            per = {s: (c2.get(s, 0) - c1.get(s, 0)) / (n2 - n1) for s in set(c1) | set(c2)}
            top = sorted(c2, key=lambda s: -c2[s])[:8]
            extra.append(f"top syscalls of {target}'s {n2:,}-request run (calls; per request "
                         "by difference): " + ", ".join(f"{s} {c2[s]:,} ({per[s]:.2f})" for s in top))
        rows.append([target, f"{v1:,}", f"{v2:,}", f"{(v2 - v1) / (n2 - n1):,.1f}"])
    n1s = sorted({int(r[2]) for r in records if r[0] == kind})
    hdr = [f"{unit} ({n:,} req)" for n in n1s[:2]] if len(n1s) >= 2 else [f"{unit} (N1)", f"{unit} (N2)"]
    return f"== {title}\n" + "\n".join([table(["target"] + hdr + [f"{unit}/request"], rows)] + extra)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    line = sub.add_parser("line")
    line.add_argument("wrk_output")
    line.add_argument("cpu_ticks", nargs="?", default="-")
    line.add_argument("clk_tck", nargs="?", default="100")
    line.add_argument("hwm_kib", nargs="?", default="-")
    tab = sub.add_parser("table")
    tab.add_argument("runs")
    tab.add_argument("scenario")
    tab.add_argument("--title", required=True)
    tab.add_argument("--clk-tck", default="100")
    a = ap.parse_args()

    if a.cmd == "line":
        r = with_proxy_metrics(parse_wrk(a.wrk_output), a.cpu_ticks, a.clk_tck, a.hwm_kib)
        s = (f"{r['rps']:>9,.0f} req/s  p50 {fmt(r['p50'], '.2f')} ms  p99 {fmt(r['p99'], '.2f')} ms"
             f"  {r['mibps']:,.1f} MiB/s")
        if r["cpu_us"] is not None:
            s += f"  CPU {r['cpu_us']:.1f} us/req  peak RSS {r['hwm_mib']:.1f} MiB"
        if r["sock_err"] or r["non2xx"]:
            s += f"  socket errors {r['sock_err']}  non-2xx {r['non2xx']}"
        print(s)
        return
    records = read_runs(a.runs)
    if a.scenario in ("idle", "tls-idle-h1", "tls-idle-h2"):
        print(idle_table(records, a.scenario, a.title))
    elif a.scenario in ("callgrind", "callgrind-h2") or a.scenario.startswith("callgrind-tls-"):
        print(diff_table(records, a.scenario, a.title, "Ir"))
    elif a.scenario == "strace":
        print(diff_table(records, "strace", a.title, "syscalls"))
    else:
        print(wrk_table(records, a.scenario, a.title, a.clk_tck))


if __name__ == "__main__":
    sys.exit(main())
