#!/usr/bin/env bash
# Anycast test (tests/anycast/README.md): two edge nodes, each running meridian and ExaBGP,
# announce the same anycast address 198.19.255.1/32 over BGP to a BIRD 2 router, which
# spreads a client's connections over both with ECMP. Everything runs in network namespaces
# this script creates (named mrd-<pid>-*) and removes on exit, with addresses from the
# benchmarking range 198.18.0.0/15 only. Scenarios:
#   1 baseline      both nodes announce, traffic reaches both, zero failures
#   2 drain         SIGTERM one node under traffic: its route is withdrawn (the time is
#                   measured), traffic moves to the other node, zero failures, exit 0
#   3 maintenance   POST /maintenance?state=on|off on one node: withdrawn, then back
#   4 origins down  every origin of one backend stops: /ready stays 200 on both nodes, the
#                   routes stay announced, the other backend is served without failure
#
#   sudo tests/anycast/run.sh
#
# Environment:
#   MERIDIAN_BIN         the meridian binary (default: <repo>/build/meridian)
#   ANYCAST_DRAIN_GRACE  value of meridian's drain_grace in the nodes' configuration (default
#                        5s); set it empty (ANYCAST_DRAIN_GRACE=) to leave the key out, for a
#                        meridian that does not know it yet
#   ANYCAST_SCENARIOS    which scenarios to run, e.g. "baseline drain" (default: all four)
#   ANYCAST_KEEP=1       keep the work directory (configurations, logs, client results) even
#                        when everything passed; it is always kept after a failure
#   ANYCAST_TIMEOUT      stop (and clean up) after this many seconds whatever happens
#                        (default 300; a normal run takes well under a minute)
# Installs what it needs with apt-get, only what is missing (bird2, exabgp, iproute2, curl,
# python3). Prints "anycast: SKIPPED: <reason>" and exits 0 where network namespaces cannot be
# made (not root, an unprivileged container). Otherwise prints PASS/FAIL/SKIPPED per scenario
# and a summary, and exits 1 if any scenario failed.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
MERIDIAN_BIN=${MERIDIAN_BIN:-$root/build/meridian}
DRAIN_GRACE=${ANYCAST_DRAIN_GRACE-5s}
SCENARIOS=${ANYCAST_SCENARIOS:-baseline drain maintenance origins_down}
TIMEOUT=${ANYCAST_TIMEOUT:-300}
# Debian's python3, for ExaBGP's health checker (Debian's exabgp package lives there), the
# client and the origins (standard library only); not a python3 earlier in PATH (a pyenv
# shim takes half a second to start, which matters when polling).
PY=/usr/bin/python3

# Addresses: links from the benchmarking range 198.18.0.0/15 (RFC 2544), router side .1.
ANYCAST=198.19.255.1
R_C=198.18.1.1 C_ADDR=198.18.1.2   # router <-> client
R_A=198.18.2.1 A_ADDR=198.18.2.2   # router <-> edge-a
R_B=198.18.3.1 B_ADDR=198.18.3.2   # router <-> edge-b
R_O=198.18.4.1 O_ADDR=198.18.4.2   # router <-> origins
ADMIN=127.0.0.1:9901                # each node's admin API, on its own loopback
HEALTH_INTERVAL=0.1                 # ExaBGP's health checker polls /ready this often (s)
CLIENT_THREADS=12

prefix="mrd-$$-"
NS_R=${prefix}router NS_C=${prefix}client NS_A=${prefix}edge-a NS_B=${prefix}edge-b
NS_O=${prefix}origins
all_ns=("$NS_R" "$NS_C" "$NS_A" "$NS_B" "$NS_O")
declare -A node_ns=([a]=$NS_A [b]=$NS_B) node_addr=([a]=$A_ADDR [b]=$B_ADDR)
declare -A node_as=([a]=65001 [b]=65002)
declare -A meridian_pid=() origin_pid=()
pids=()                             # every process this script started
made_ns=()                          # every namespace this script made
work=""
watchdog=""
t_start=$(date +%s%3N)

# Milliseconds since the epoch, and a sleep, without starting a program (the polls below run
# every 50 ms on a loaded 2-core machine).
now_ms() { local t=${EPOCHREALTIME//[.,]/}; echo "${t:0:${#t}-3}"; }
nap() {
  if [ -n "${nap_fd:-}" ]; then read -r -t "$1" -u "$nap_fd" _ 2>/dev/null; else sleep "$1"; fi
  return 0
}
log() { printf 'anycast: [%5.1fs] %s\n' "$(( $(now_ms) - t_start ))e-3" "$*"; }
skip() { echo "anycast: SKIPPED: $*"; exit 0; }
die() { echo "anycast: ERROR: $*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# Cleanup: every process started here (and anything else left in our namespaces, such as the
# health checker's curl), then the namespaces (their veth pairs go with them).

ns_pids() { ip netns pids "$1" 2>/dev/null; }

cleanup() {
  local rc=$? ns p deadline left
  trap - EXIT INT TERM
  [ -n "$watchdog" ] && kill "$watchdog" 2>/dev/null
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for ns in "${made_ns[@]}"; do
    for p in $(ns_pids "$ns"); do kill -TERM "$p" 2>/dev/null; done
  done
  deadline=$(( $(now_ms) + 3000 ))
  while :; do
    left=""
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && left+=" $p"; done
    for ns in "${made_ns[@]}"; do left+=" $(ns_pids "$ns" | tr '\n' ' ')"; done
    [ -z "${left// /}" ] && break
    if [ "$(now_ms)" -ge "$deadline" ]; then
      for p in $left; do kill -KILL "$p" 2>/dev/null; done
      break
    fi
    nap 0.05
  done
  wait 2>/dev/null
  for ns in "${made_ns[@]}"; do ip netns del "$ns" 2>/dev/null; done
  if [ -n "$work" ] && [ -d "$work" ]; then
    if [ "$rc" -eq 0 ] && [ "${ANYCAST_KEEP:-}" != 1 ]; then
      rm -rf "$work"
    else
      echo "anycast: logs, configurations and client results kept in $work"
    fi
  fi
  exit "$rc"
}

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
# Prerequisites

ensure_packages() {
  local p missing=()
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$p")
    fi
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
      die "apt-get install ${missing[*]} failed"
  fi
}

preflight() {
  [ "$(id -u)" -eq 0 ] || skip "needs root to create network namespaces (sudo $0)"
  command -v dpkg-query >/dev/null || skip "not a Debian system (dpkg-query missing)"
  command -v ip >/dev/null || ensure_packages iproute2
  # Namespaces left by an earlier run that was killed (its pid is gone).
  local ns owner p
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^mrd-[0-9]+-'); do
    owner=${ns#mrd-}; owner=${owner%%-*}
    if ! kill -0 "$owner" 2>/dev/null; then
      for p in $(ns_pids "$ns"); do kill -KILL "$p" 2>/dev/null; done
      ip netns del "$ns" 2>/dev/null && log "removed stale namespace $ns"
    fi
  done
  local probe=${prefix}probe err
  if ! err=$(ip netns add "$probe" 2>&1); then
    skip "cannot create network namespaces (ip netns add: ${err:-failed})"
  fi
  if ! err=$(ip -n "$probe" link add p0 type veth peer name p1 2>&1); then
    ip netns del "$probe" 2>/dev/null
    skip "cannot create veth pairs in a network namespace (${err:-failed})"
  fi
  ip netns del "$probe"
  ensure_packages iproute2 bird2 exabgp curl python3
  [ -x "$MERIDIAN_BIN" ] || die "no meridian binary at $MERIDIAN_BIN (build it, or set MERIDIAN_BIN)"
  "$PY" -c 'import exabgp.application.healthcheck' 2>/dev/null ||
    die "$PY cannot import exabgp.application.healthcheck (Debian's exabgp 4.x ships it)"
  work=$(mktemp -d /tmp/meridian-anycast.XXXXXX)
  mkdir -p "$work/logs"
  mkfifo "$work/nap"
  exec {nap_fd}<>"$work/nap"    # nothing is ever written: `read -t` on it is a sleep
  log "meridian: $MERIDIAN_BIN ($("$MERIDIAN_BIN" --version 2>&1 | head -1)); $(bird --version 2>&1 | head -1);" \
    "ExaBGP $(exabgp --version 2>&1 | awk '/^ExaBGP/ {print $3}'); work directory $work"
}

# ---------------------------------------------------------------------------------------------
# Helpers

# render TEMPLATE OUT NAME=VALUE...: replace every @NAME@ of TEMPLATE.
render() {
  local template=$1 out=$2 kv expr=()
  shift 2
  for kv in "$@"; do expr+=(-e "s|@${kv%%=*}@|${kv#*=}|g"); done
  sed "${expr[@]}" "$template" >"$out"
  if grep -n '@[A-Z_]*@' "$out" >&2; then die "unrendered placeholders in $out"; fi
}

# start_in NS LOGFILE COMMAND...: start COMMAND in NS in the background; its pid is last_pid
# (`ip netns exec` execs the command, so that is the command's own pid).
start_in() {
  local ns=$1 logfile=$2
  shift 2
  ip netns exec "$ns" "$@" >>"$logfile" 2>&1 </dev/null &
  last_pid=$!
  pids+=("$last_pid")
}

# stop_pid PID [TIMEOUT_S]: SIGTERM, wait for the exit (bounded), SIGKILL if it stays.
stop_pid() {
  local pid=$1 deadline=$(( $(now_ms) + ${2:-5} * 1000 ))
  kill -TERM "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$(now_ms)" -ge "$deadline" ]; then kill -KILL "$pid" 2>/dev/null; break; fi
    nap 0.05
  done
  wait "$pid" 2>/dev/null
  return 0
}

# wait_until TIMEOUT_S WHAT COMMAND...: poll COMMAND every 50 ms until it succeeds.
wait_until() {
  local timeout=$1 what=$2 deadline
  shift 2
  deadline=$(( $(now_ms) + timeout * 1000 ))
  until "$@"; do
    if [ "$(now_ms)" -ge "$deadline" ]; then
      log "timed out after ${timeout}s waiting for $what"
      return 1
    fi
    nap 0.05
  done
  return 0
}

sysctl_ns() { ip netns exec "$1" sh -c "echo '$3' > /proc/sys/${2//.//}"; }

# admin NODE METHOD PATH: the HTTP status of a request to NODE's admin API ("000": no answer).
admin() {
  ip netns exec "${node_ns[$1]}" curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
    -X "$2" "http://$ADMIN$3" 2>/dev/null
}
ready_is() { [ "$(admin "$1" GET /ready)" = "$2" ]; }

# The next hops of the anycast route in the router's kernel table. has_hop runs one `ip` and
# no pipeline, so that polling it every 50 ms measures the route change closely.
route_hops() {
  ip -n "$NS_R" route show "$ANYCAST/32" 2>/dev/null | grep -o 'via [0-9.]*' | awk '{print $2}' |
    sort | tr '\n' ' '
}
has_hop() { [[ "$(ip -n "$NS_R" route show "$ANYCAST/32" 2>/dev/null) " == *"via $1 "* ]]; }
lacks_hop() { ! has_hop "$1"; }
both_hops() { has_hop "$A_ADDR" && has_hop "$B_ADDR"; }
# route_event T0 ADDR gone|back: milliseconds from T0 (unix ms) to the first change of the
# anycast route in the router's kernel table, as `ip monitor` saw it, after which ADDR is no
# longer (gone) or again (back) a next hop; "?" if there was none. A cross-check of the 50 ms
# polls, exact to the event.
route_event() {
  "$PY" "$here/client.py" route-event "$work/logs/route-monitor.log" "$ANYCAST" "$@"
}
bird_paths() { birdc -s "$work/bird.ctl" show route "$ANYCAST/32" 2>/dev/null | grep -c 'via '; }

# backend_eligible NODE BACKEND: "true"/"false" from NODE's /status (any region eligible).
backend_eligible() {
  ip netns exec "${node_ns[$1]}" curl -s --max-time 1 "http://$ADMIN/status" 2>/dev/null |
    "$PY" -c 'import json, sys
doc = json.load(sys.stdin)
b = [b for b in doc["backends"] if b["name"] == sys.argv[1]][0]
print("true" if any(r["eligible"] for r in b["regions"]) else "false")' "$2" 2>/dev/null
}
backend_down_everywhere() {
  [ "$(backend_eligible a "$1")" = false ] && [ "$(backend_eligible b "$1")" = false ]
}

# ---------------------------------------------------------------------------------------------
# Topology

link() { # NS1 IF1 ADDR1 NS2 IF2 ADDR2: a veth pair between two namespaces, /24 addresses
  ip -n "$1" link add "$2" type veth peer name "$5" netns "$4" &&
    ip -n "$1" addr add "$3/24" dev "$2" && ip -n "$4" addr add "$6/24" dev "$5" &&
    ip -n "$1" link set "$2" up && ip -n "$4" link set "$5" up
}

make_topology() {
  local ns
  for ns in "${all_ns[@]}"; do
    ip netns add "$ns" || die "ip netns add $ns failed"
    made_ns+=("$ns")
    ip -n "$ns" link set lo up
  done
  # The router forwards, hashes flows over ECMP next hops by L4 (source port included: one
  # client address, many connections), and does not drop a node's answers (source
  # 198.19.255.1) by reverse-path filtering once that node's route is gone.
  sysctl_ns "$NS_R" net.ipv4.ip_forward 1
  sysctl_ns "$NS_R" net.ipv4.fib_multipath_hash_policy 1
  sysctl_ns "$NS_R" net.ipv4.conf.all.rp_filter 0
  sysctl_ns "$NS_R" net.ipv4.conf.default.rp_filter 0
  # IPv4 only: no IPv6 link-local addresses either.
  for ns in "${all_ns[@]}"; do
    sysctl_ns "$ns" net.ipv6.conf.all.disable_ipv6 1 2>/dev/null
    sysctl_ns "$ns" net.ipv6.conf.default.disable_ipv6 1 2>/dev/null
  done
  # The client opens a connection per request: many ports, reuse of TIME_WAIT ones.
  sysctl_ns "$NS_C" net.ipv4.ip_local_port_range "1024 65000"
  sysctl_ns "$NS_C" net.ipv4.tcp_tw_reuse 1
  link "$NS_R" rc "$R_C" "$NS_C" eth0 "$C_ADDR" || die "client link"
  link "$NS_R" ra "$R_A" "$NS_A" eth0 "$A_ADDR" || die "edge-a link"
  link "$NS_R" rb "$R_B" "$NS_B" eth0 "$B_ADDR" || die "edge-b link"
  link "$NS_R" ro "$R_O" "$NS_O" eth0 "$O_ADDR" || die "origins link"
  ip -n "$NS_C" route add default via "$R_C"
  ip -n "$NS_A" route add default via "$R_A"
  ip -n "$NS_B" route add default via "$R_B"
  ip -n "$NS_O" route add default via "$R_O"
  # The anycast address, the same on both nodes, on their loopback.
  ip -n "$NS_A" addr add "$ANYCAST/32" dev lo
  ip -n "$NS_B" addr add "$ANYCAST/32" dev lo
  log "namespaces ${prefix}{router,client,edge-a,edge-b,origins} and their links are up"
}

origin_listening() { grep -q '^LISTENING' "$work/logs/origin-$1.log" 2>/dev/null; }

start_origin() { # NAME PORT
  start_in "$NS_O" "$work/logs/origin-$1.log" "$PY" "$root/tests/support/origin.py" \
    --host "$O_ADDR" --port "$2" --name "$1"
  origin_pid[$1]=$last_pid
}
wait_origins() { # NAME...
  local n
  for n in "$@"; do
    wait_until 10 "origin $n to listen" origin_listening "$n" || die "origin $n did not start"
  done
}

start_meridian() { # NODE
  local n=$1 grace_line="" out
  [ -n "$DRAIN_GRACE" ] && grace_line="drain_grace: $DRAIN_GRACE"
  render "$here/meridian.yaml" "$work/meridian-edge-$n.yaml" NODE="edge-$n" ANYCAST="$ANYCAST" \
    ORIGIN_ADDR="$O_ADDR" DRAIN_GRACE_LINE="$grace_line"
  if ! out=$("$MERIDIAN_BIN" --check --config "$work/meridian-edge-$n.yaml" 2>&1); then
    echo "$out" >&2
    if [ -n "$DRAIN_GRACE" ] && grep -q drain_grace <<<"$out"; then
      die "this meridian does not accept drain_grace; run with ANYCAST_DRAIN_GRACE= (empty) to leave it out"
    fi
    die "meridian rejects the configuration $work/meridian-edge-$n.yaml"
  fi
  start_in "${node_ns[$n]}" "$work/logs/meridian-edge-$n.log" "$MERIDIAN_BIN" \
    --config "$work/meridian-edge-$n.yaml"
  meridian_pid[$n]=$last_pid
  if ! wait_until 10 "meridian edge-$n /ready 200" ready_is "$n" 200; then
    tail -5 "$work/logs/meridian-edge-$n.log" >&2
    die "meridian edge-$n is not ready"
  fi
}

start_bird() {
  start_in "$NS_R" "$work/logs/route-monitor.log" ip -ts -o monitor route
  render "$here/bird.conf" "$work/bird.conf" ROUTER_ID="$R_C" ANYCAST="$ANYCAST" \
    EDGE_A_ADDR="$A_ADDR" EDGE_B_ADDR="$B_ADDR" LOG="$work/logs/bird.log"
  start_in "$NS_R" "$work/logs/bird.out" bird -f -c "$work/bird.conf" -s "$work/bird.ctl" \
    -P "$work/bird.pid"
  wait_until 10 "BIRD's control socket" test -S "$work/bird.ctl" || die "BIRD did not start"
}

start_exabgp() { # NODE
  local n=$1 router_addr
  [ "$n" = a ] && router_addr=$R_A || router_addr=$R_B
  render "$here/exabgp.conf" "$work/exabgp-edge-$n.conf" NODE="edge-$n" ANYCAST="$ANYCAST" \
    LOCAL_ADDR="${node_addr[$n]}" LOCAL_AS="${node_as[$n]}" ROUTER_ADDR="$router_addr" \
    INTERVAL="$HEALTH_INTERVAL" ADMIN="$ADMIN"
  start_in "${node_ns[$n]}" "$work/logs/exabgp-edge-$n.log" exabgp --env "$here/exabgp.env" \
    "$work/exabgp-edge-$n.conf"
}

start_all() {
  make_topology
  start_origin a1 8001; start_origin a2 8002; start_origin b1 8011; start_origin b2 8012
  wait_origins a1 a2 b1 b2
  log "origins: backend a on $O_ADDR:8001,8002; backend b on $O_ADDR:8011,8012"
  start_meridian a; start_meridian b
  log "meridian edge-a and edge-b ready (drain_grace: ${DRAIN_GRACE:-not set})"
  start_bird; start_exabgp a; start_exabgp b
  if ! wait_until 20 "the router's ECMP route to $ANYCAST via both nodes" both_hops; then
    birdc -s "$work/bird.ctl" show protocols >&2
    die "the BGP sessions or the routes did not come up"
  fi
  log "BGP up: $(ip -n "$NS_R" route show "$ANYCAST/32" | tr -s ' \t\n' ' ')"
}

# ---------------------------------------------------------------------------------------------
# Client

client_start() { # NAME PATHS
  cl_out=$work/client-$1.json cl_prog=$work/client-$1.progress
  start_in "$NS_C" "$work/logs/client-$1.log" "$PY" "$here/client.py" run \
    --target "$ANYCAST:80" --paths "$2" --out "$cl_out" --progress "$cl_prog" \
    --threads "$CLIENT_THREADS" --max-seconds 60 --max-requests 200000 --timeout 2
  client_pid=$last_pid
}
client_stop() {
  stop_pid "$client_pid" 10
  [ -s "$cl_out" ] || { log "the client left no result ($cl_out)"; return 1; }
}
# prog KEY: a count from the running client's progress file (total, ok, failed, edge-a, edge-b).
prog() {
  local v
  v=$(grep -o "\"$1\": [0-9]*" "$cl_prog" 2>/dev/null | head -1 | awk '{print $2}')
  echo "${v:-0}"
}
prog_ge() { [ "$(prog "$1")" -ge "$2" ] 2>/dev/null; }
both_served() { prog_ge edge-a "$1" && prog_ge edge-b "$1"; }
total=0 ok=0 failed=0 rehashed=0 edge_a=0 edge_b=0 outcomes=""
# stats [--path P] [--started-after MS] ...: sets total ok failed rehashed edge_a edge_b
# outcomes. A reset at the instant of a route change is `rehashed`, not `failed`
# (client.py's header, README.md "Known limits").
stats() {
  eval "$("$PY" "$here/client.py" stats "$cl_out" --route-monitor "$work/logs/route-monitor.log" \
    --anycast "$ANYCAST" "$@")"
}

# ---------------------------------------------------------------------------------------------
# Results

declare -A result=() detail=() timing=()
order=()
finish() { # NAME RESULT [REASONS...]
  local name=$1 res=$2
  shift 2
  result[$name]=$res
  order+=("$name")
  if [ $# -gt 0 ]; then
    local reasons
    reasons=$(printf '%s; ' "$@")
    echo "anycast: $res: $name: ${reasons%; }"
  else
    echo "anycast: $res: $name"
  fi
}
verdict() { # NAME FAILURES...: PASS without failures, else FAIL with them
  local name=$1
  shift
  if [ $# -eq 0 ]; then finish "$name" PASS; else finish "$name" FAIL "$@"; fi
}
count_line() {
  local r=""
  [ "$rehashed" -gt 0 ] && r=" rehashed=$rehashed"
  echo "ok=$ok failed=$failed$r edge-a=$edge_a edge-b=$edge_b${outcomes:+ ($outcomes)}"
}

# ---------------------------------------------------------------------------------------------
# Scenarios

scenario_baseline() {
  local fails=() n hops
  log "--- baseline: both nodes announce"
  birdc -s "$work/bird.ctl" show route "$ANYCAST/32" | sed 's/^/    birdc: /'
  n=$(bird_paths)
  [ "$n" -eq 2 ] || fails+=("birdc shows $n paths for $ANYCAST/32, not 2")
  hops=$(route_hops)
  log "router kernel route next hops: $hops"
  both_hops || fails+=("kernel route next hops are '$hops', not both nodes")
  client_start baseline /a/,/b/
  wait_until 20 "3000 requests" prog_ge total 3000 || fails+=("the client did not reach 3000 requests")
  client_stop || fails+=("no client result")
  stats
  detail[baseline]=$(count_line)
  log "baseline: $(count_line)"
  [ "$failed" -eq 0 ] || fails+=("$failed failed requests ($outcomes)")
  [ "$edge_a" -ge $(( total / 10 )) ] && [ "$edge_b" -ge $(( total / 10 )) ] ||
    fails+=("traffic not spread by ECMP: edge-a $edge_a, edge-b $edge_b of $total")
  verdict baseline "${fails[@]}"
}

restore_node_a() {
  local t0
  t0=$(now_ms)
  kill -0 "${meridian_pid[a]}" 2>/dev/null || start_meridian a
  wait_until 10 "edge-a's route to come back" has_hop "$A_ADDR" || die "edge-a's route did not come back"
  log "edge-a restarted; its route is back $(( $(now_ms) - t0 )) ms after the start (polled; ip monitor: $(route_event "$t0" "$A_ADDR" back) ms)"
}

scenario_drain() {
  local fails=() t0 t1 b_at rc=-1 deadline withdraw_ms
  log "--- drain: SIGTERM edge-a under traffic (drain_grace: ${DRAIN_GRACE:-not set})"
  client_start drain /a/,/b/
  wait_until 10 "both nodes to serve" both_served 50 || fails+=("traffic did not reach both nodes")
  t0=$(now_ms)
  kill -TERM "${meridian_pid[a]}" 2>/dev/null || fails+=("edge-a's meridian was not running")
  # The router's kernel route, every 50 ms, until edge-a is no longer a next hop.
  deadline=$(( t0 + 10000 ))
  while has_hop "$A_ADDR" && [ "$(now_ms)" -lt "$deadline" ]; do nap 0.05; done
  t1=$(now_ms)
  if has_hop "$A_ADDR"; then
    fails+=("edge-a's route still present 10 s after SIGTERM")
    withdraw_ms="not withdrawn"
  else
    withdraw_ms="$(( t1 - t0 )) ms (polled; ip monitor: $(route_event "$t0" "$A_ADDR" gone) ms)"
  fi
  log "SIGTERM -> edge-a gone from the router's kernel route: $withdraw_ms; route now: $(route_hops)"
  timing[drain]="SIGTERM to withdrawal: $withdraw_ms"
  b_at=$(prog edge-b)
  wait_until 10 "edge-b to serve 300 more requests" prog_ge edge-b $(( b_at + 300 )) ||
    fails+=("edge-b did not take the traffic")
  # edge-a drains (drain_grace, then its connections) and exits; traffic goes on meanwhile.
  deadline=$(( $(now_ms) + 25000 ))
  while kill -0 "${meridian_pid[a]}" 2>/dev/null && [ "$(now_ms)" -lt "$deadline" ]; do nap 0.05; done
  if kill -0 "${meridian_pid[a]}" 2>/dev/null; then
    fails+=("edge-a's meridian still running 25 s after SIGTERM")
    stop_pid "${meridian_pid[a]}" 1
  else
    wait "${meridian_pid[a]}"
    rc=$?
    log "edge-a's meridian exited with status $rc"
    [ "$rc" -eq 0 ] || fails+=("edge-a's meridian exited with status $rc")
  fi
  client_stop || fails+=("no client result")
  stats
  detail[drain]=$(count_line)
  log "drain: $(count_line)"
  [ "$failed" -eq 0 ] || fails+=("$failed failed requests ($outcomes)")
  if [ "$failed" -gt 0 ]; then
    "$PY" - "$cl_out" "$t0" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1])); t0 = int(sys.argv[2])
bad = [r for r in doc["requests"] if r[4] != "ok"]
print("anycast:     failed requests started %d..%d ms after SIGTERM" % (bad[0][0] - t0, bad[-1][0] - t0))
EOF
  fi
  stats --started-after $(( t1 + 50 ))
  [ "$edge_a" -eq 0 ] || fails+=("edge-a served $edge_a requests started after its withdrawal")
  [ "$edge_b" -gt 0 ] || fails+=("edge-b served nothing after edge-a's withdrawal")
  verdict drain "${fails[@]}"
  restore_node_a
}

scenario_maintenance() {
  local fails=() code t0 t1 t2 t3 b_at a_at
  log "--- maintenance: POST /maintenance?state=on, then off, on edge-a"
  client_start maintenance /a/,/b/
  wait_until 10 "both nodes to serve" both_served 50 || fails+=("traffic did not reach both nodes")
  t0=$(now_ms)
  code=$(admin a POST "/maintenance?state=on")
  if [ "$code" = 404 ]; then
    client_stop
    detail[maintenance]="-"
    finish maintenance SKIPPED "/maintenance not available (404)"
    return
  fi
  if [ "${code:0:1}" != 2 ]; then
    client_stop
    detail[maintenance]="-"
    finish maintenance FAIL "POST /maintenance?state=on answered $code"
    return
  fi
  if wait_until 10 "edge-a's withdrawal" lacks_hop "$A_ADDR"; then
    t1=$(now_ms)
    timing[maintenance]="on to withdrawal: $(( t1 - t0 )) ms (ip monitor: $(route_event "$t0" "$A_ADDR" gone) ms)"
    log "maintenance on -> edge-a withdrawn: ${timing[maintenance]#on to withdrawal: }"
  else
    t1=$(now_ms)
    fails+=("edge-a's route not withdrawn in maintenance")
  fi
  ready_is a 503 || fails+=("edge-a's /ready does not answer 503 in maintenance")
  b_at=$(prog edge-b)
  wait_until 10 "edge-b to serve 300 more requests" prog_ge edge-b $(( b_at + 300 )) ||
    fails+=("edge-b did not take the traffic")
  t2=$(now_ms)
  code=$(admin a POST "/maintenance?state=off")
  [ "${code:0:1}" = 2 ] || fails+=("POST /maintenance?state=off answered $code")
  if wait_until 10 "edge-a's route to come back" has_hop "$A_ADDR"; then
    t3=$(now_ms)
    timing[maintenance]+=", off to announcement: $(( t3 - t2 )) ms (ip monitor: $(route_event "$t2" "$A_ADDR" back) ms)"
    log "maintenance off -> edge-a announced again in $(( t3 - t2 )) ms"
  else
    t3=$(now_ms)
    fails+=("edge-a's route did not come back")
  fi
  a_at=$(prog edge-a)
  wait_until 10 "edge-a to serve again" prog_ge edge-a $(( a_at + 100 )) ||
    fails+=("traffic did not come back to edge-a")
  client_stop || fails+=("no client result")
  stats
  detail[maintenance]=$(count_line)
  log "maintenance: $(count_line)"
  [ "$failed" -eq 0 ] || fails+=("$failed failed requests ($outcomes)")
  stats --started-after $(( t1 + 50 )) --started-before "$t2"
  [ "$edge_a" -eq 0 ] || fails+=("edge-a served $edge_a requests while withdrawn")
  verdict maintenance "${fails[@]}"
}

scenario_origins_down() {
  local fails=() t0 t1 deadline polls=0 bad_ready=0 bad_route=0 first_bad="" ra rb
  log "--- origins down: stop both origins of backend a"
  client_start origins_down /a/,/b/
  wait_until 10 "both nodes to serve" both_served 50 || fails+=("traffic did not reach both nodes")
  t0=$(now_ms)
  stop_pid "${origin_pid[a1]}"; stop_pid "${origin_pid[a2]}"
  if wait_until 10 "backend a to be ineligible on both nodes" backend_down_everywhere a; then
    t1=$(now_ms)
    log "backend a has no eligible region on either node, $(( t1 - t0 )) ms after its origins stopped"
  else
    t1=$(now_ms)
    fails+=("the nodes did not see backend a's origins go down")
  fi
  # For 3 s: /ready on both nodes and the router's route, every 100 ms.
  deadline=$(( $(now_ms) + 3000 ))
  while [ "$(now_ms)" -lt "$deadline" ]; do
    polls=$(( polls + 1 ))
    ra=$(admin a GET /ready) rb=$(admin b GET /ready)
    if [ "$ra" != 200 ] || [ "$rb" != 200 ]; then
      bad_ready=$(( bad_ready + 1 ))
      [ -n "$first_bad" ] || first_bad="/ready edge-a $ra, edge-b $rb at +$(( $(now_ms) - t0 )) ms"
    fi
    both_hops || bad_route=$(( bad_route + 1 ))
    nap 0.1
  done
  log "over $polls polls: /ready not 200 in $bad_ready, route missing a node in $bad_route${first_bad:+ (first: $first_bad; route: $(route_hops))}"
  [ "$bad_ready" -eq 0 ] || fails+=("/ready not 200 in $bad_ready of $polls polls ($first_bad)")
  [ "$bad_route" -eq 0 ] || fails+=("the router lost a node's route in $bad_route of $polls polls")
  client_stop || fails+=("no client result")
  stats --path /a/ --started-after "$t1"
  log "backend a (origins down), requests after the nodes saw it: $(count_line)"
  local a_line="/a/ after: ok=$ok failed=$failed${outcomes:+ ($outcomes)}"
  [ "$rehashed" -gt 0 ] && a_line+=" rehashed=$rehashed"
  stats --path /b/
  detail[origins_down]="/b/: $(count_line); $a_line"
  log "backend b: $(count_line)"
  [ "$failed" -eq 0 ] || fails+=("$failed failed /b/ requests ($outcomes)")
  verdict origins_down "${fails[@]}"
  # Restore: backend a's origins back, both nodes ready and announced.
  start_origin a1 8001; start_origin a2 8002
  wait_origins a1 a2
  wait_until 10 "/ready 200 on both nodes" eval 'ready_is a 200 && ready_is b 200' ||
    die "the nodes did not become ready again"
  wait_until 10 "both routes back" both_hops || die "the routes did not come back"
}

summary() {
  local name nfail=0
  echo "anycast: ---------------------------------------------------------------- summary"
  for name in "${order[@]}"; do
    printf 'anycast: %-13s %-7s %s%s\n' "$name" "${result[$name]}" "${detail[$name]:-}" \
      "${timing[$name]:+; ${timing[$name]}}"
    [ "${result[$name]}" = FAIL ] && nfail=$(( nfail + 1 ))
  done
  local passed=0 skipped=0
  for name in "${order[@]}"; do
    case ${result[$name]} in PASS) passed=$(( passed + 1 )) ;; SKIPPED) skipped=$(( skipped + 1 )) ;; esac
  done
  log "finished"
  echo "anycast: $passed passed, $nfail failed, $skipped skipped"
  [ "$nfail" -eq 0 ]
}

main() {
  local s
  for s in $SCENARIOS; do
    case $s in
      baseline | drain | maintenance | origins_down) ;;
      *) die "unknown scenario $s in ANYCAST_SCENARIOS (baseline, drain, maintenance, origins_down)" ;;
    esac
  done
  preflight
  # Whatever hangs, the run ends: SIGTERM to this shell after TIMEOUT s, and the cleanup runs.
  # (A subshell that waits with `read -t`, so no child of its own outlives it.)
  { read -r -t "$TIMEOUT" -u "$nap_fd" _
    echo "anycast: ERROR: still running after ${TIMEOUT}s; stopping" >&2
    kill -TERM $$; } &
  watchdog=$!
  start_all
  for s in $SCENARIOS; do "scenario_$s"; done
  summary
}

main
