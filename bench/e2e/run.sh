#!/usr/bin/env bash
# End-to-end benchmark harness: meridian against nginx and HAProxy 2.6 as reverse
# proxies, each with one worker, in front of the same nginx origin, on loopback.
#
#   bench/e2e/run.sh [--quick] [--rounds N] [--duration D] [--only LIST] [--targets LIST]
#
#   --rounds N      interleaved rounds per wrk scenario (default 3)
#   --duration D    wrk duration per run (default 5s)
#   --quick         1 round of 2s, and no idle/callgrind/strace (smoke test, ~1 minute)
#   --only LIST     comma-separated scenarios: keepalive,close,64k,1m,h2,h1load,idle,callgrind,
#                   callgrind-h2,callgrind-tls,strace,
#                   tls-keepalive,tls-close,tls-full,tls-resume-ticket,tls-resume-id,tls-h2,
#                   tls-idle,tls-wakeups
#   --pin           the proxies on CPU 1, the origin and the load generators on CPU 0 (taskset):
#                   a proxy with a core of its own, as in production, instead of three processes
#                   sharing two cores as the scheduler likes
#   --hold          start the origin and the targets as configured for a run, print their ports
#                   and pids, and wait (until interrupted) for experiments by hand
#   --targets LIST  comma-separated proxies: meridian,nginx,haproxy (default all three), and
#                   meridian-h2c: meridian speaking h2c to the origin (backends[].protocol:
#                   h2c, nginx `listen ... http2` on 18210) instead of HTTP/1.1, and
#                   meridian-base: the meridian binary in $MERIDIAN_BASE_DIR (another build,
#                   e.g. of the commit before a change), for before/after in one run (its
#                   TLS port: 18221)
# Environment: MERIDIAN_BUILD_DIR (default build), MERIDIAN_SKIP_BUILD=1 (use the existing
# binary), MERIDIAN_BASE_DIR (the build directory of meridian-base),
# N1/N2 (requests of the two callgrind/strace runs, default 2000/6000), N1_H2/N2_H2 (of the
# two callgrind-h2 runs, default 5000/25000), N1_TLS/N2_TLS (handshakes of the two runs of each
# callgrind-tls handshake mode, default 200/1000), N1_TLS_KA/N2_TLS_KA (requests of the two
# callgrind-tls keep-alive runs, default 5000/25000),
# IDLE_CONNS (default 10000), H2_REQUESTS (requests of each h2load run, default 100000),
# TLS_IDLE_CONNS (default 2000), MERIDIAN_BENCH_KEEP=1 (keep the work directory: the
# configurations, logs and callgrind outputs, for callgrind_annotate).
#
# Every proxy adds the same forwarding fields (X-Forwarded-For, X-Forwarded-Proto, X-Request-Id,
# Via both ways), as meridian must: checked before each is measured (check_forwarding).
#
# Scenarios (all against 127.0.0.1, ports 18200-18221):
#   keepalive  small GET, wrk -t1 -c50 --latency            } each in rounds of direct,
#   close      the same with Connection: close              } meridian, nginx, haproxy,
#   64k, 1m    64 KiB / 1 MiB bodies, wrk -t1 -c10 --latency } interleaved so that drift of
#                                                              the machine hits all alike
#   h2         HTTP/2 in cleartext (prior knowledge), h2load -n 100000 -c 10 -m 10: meridian on
#              its port (it detects the preface), nginx `listen ... http2` and HAProxy
#              `proto h2` on ports of their own (18208, 18209)
#   h1load     the same h2load run over HTTP/1.1 keep-alive (--h1, no pipelining), for the
#              comparison with h2 through the same client
#   idle       VmRSS of the proxy process around IDLE_CONNS idle keep-alive connections
#   callgrind  user-space instructions per request: (Ir(N2) - Ir(N1)) / (N2 - N1)
#   callgrind-h2  the same for HTTP/2 in cleartext, h2load -c 10 -m 10 (nginx and HAProxy on
#              h2c ports of their tool configurations, 18216 and 18217)
#   callgrind-tls  user-space instructions per TLS handshake (a request on a new connection each):
#              full TLS 1.3, TLS 1.3 resumed by ticket, TLS 1.2 resumed by session ID
#              (handshake_load --requests N1_TLS and N2_TLS, 4 connections), and per request of
#              HTTP/1.1 keep-alive over TLS (h2load --h1 -c 10); TLS ports of the tool
#              configurations, 18218-18220
#   strace     syscalls per request under 50 concurrent keep-alive connections, same differencing
#   tls-*      the same proxies terminating TLS (ECDSA P-256 certificate made per run, ALPN h2 and
#              http/1.1, session cache and tickets on, sessions living 1 h everywhere) on ports
#              18213-18215, HTTP/1.1 to the origin:
#     tls-keepalive      wrk -t1 -c50 over TLS, keep-alive
#     tls-close          wrk -t1 -c50 with Connection: close: a TLS 1.3 handshake per request,
#                        resumed by ticket where the server hands out a fresh one each time
#                        (wrk keeps its SSL session across reconnects)
#     tls-full           handshake_load --mode full (bench/e2e/handshake_load.cpp, built with
#                        meridian): a full TLS 1.3 handshake per request, no session offered,
#                        16 connections in flight from one client thread
#     tls-resume-ticket  handshake_load --mode ticket: a new connection per request, each
#                        resuming its slot's last TLS 1.3 session by ticket
#     tls-resume-id      the same with TLS 1.2 session IDs (tickets refused by the client)
#     tls-h2             h2load -n H2_REQUESTS -c 10 -m 10 over TLS (ALPN h2)
#     tls-idle           VmRSS per idle TLS connection, HTTP/1.1 and HTTP/2, TLS_IDLE_CONNS (2,000)
#     tls-wakeups        tls-keepalive's wrk run counting context switches per request: the
#                        machine's (/proc/stat ctxt), the origin worker's and the proxy's blocking
#                        waits (voluntary_ctxt_switches of every thread)
# For every proxy run: req/s, p50/p99, CPU µs per request of the proxy process alone
# (utime+stime from /proc/PID/stat) and its peak RSS over the run (VmHWM, reset before the run).
# Tables go to stdout and are appended to bench/e2e/results/DATE-GITHASH.txt (not committed).
set -euo pipefail

# Before any option parsing shifts "$@": the exact command line for the report, with the
# environment overrides that change what is measured.
cmdline=""
for v in MERIDIAN_BUILD_DIR MERIDIAN_SKIP_BUILD N1 N2 N1_H2 N2_H2 N1_TLS N2_TLS N1_TLS_KA N2_TLS_KA \
  IDLE_CONNS H2_REQUESTS; do
  [ -n "${!v:-}" ] && cmdline+="$v=${!v} "
done
cmdline+=$(printf '%q ' "$0" "$@")
cmdline=${cmdline% }

die() { echo "run.sh: ERROR: $*" >&2; exit 1; }
# die with the tail of a log file, which lives in the temporary directory removed on exit.
die_log() {
  local log=$1; shift
  echo "run.sh: ERROR: $*" >&2
  if [ -s "$log" ]; then echo "--- last lines of $log:" >&2; tail -n 20 "$log" >&2; fi
  exit 1
}
progress() { echo "run.sh: $*" >&2; }

usage() { sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; }

# idle last: its 10,000 connections leave the machine busy for a while (a valgrind start
# right after it once timed out).
all_scenarios=(keepalive close 64k 1m h2 h1load callgrind callgrind-h2 callgrind-tls strace idle
  tls-keepalive tls-close tls-full tls-resume-ticket tls-resume-id tls-h2 tls-idle tls-wakeups)
rounds="" duration="" quick=0 hold=0 pin=0 only="" targets_arg=meridian,nginx,haproxy
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1 ;;
    --hold) hold=1 ;;
    --pin) pin=1 ;;
    --rounds) [ $# -ge 2 ] || die "--rounds needs a value"; rounds=$2; shift ;;
    --duration) [ $# -ge 2 ] || die "--duration needs a value"; duration=$2; shift ;;
    --only) [ $# -ge 2 ] || die "--only needs a value"; only=$2; shift ;;
    --targets) [ $# -ge 2 ] || die "--targets needs a value"; targets_arg=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
  shift
done
if [ "$quick" = 1 ]; then
  rounds=${rounds:-1}
  duration=${duration:-2s}
else
  rounds=${rounds:-3}
  duration=${duration:-5s}
fi
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer, not '$rounds'"
[[ $duration =~ ^[1-9][0-9]*[smh]?$ ]] || die "--duration must look like 5s, not '$duration'"

if [ -n "$only" ]; then
  IFS=, read -r -a scenarios <<< "$only"
  for s in "${scenarios[@]}"; do
    [[ " ${all_scenarios[*]} " == *" $s "* ]] || die "unknown scenario '$s' (one of: ${all_scenarios[*]})"
  done
elif [ "$quick" = 1 ]; then
  scenarios=(keepalive close 64k 1m)
else
  scenarios=("${all_scenarios[@]}")
fi
# Whether a TLS port is measured (then check_forwarding checks it too: a meridian-base from
# before TLS listeners existed can still be compared on the plain scenarios).
tls_measured=0
for s in "${scenarios[@]}"; do [[ $s == tls-* || $s == callgrind-tls ]] && tls_measured=1; done
IFS=, read -r -a targets <<< "$targets_arg"
for t in "${targets[@]}"; do
  case $t in
    meridian | nginx | haproxy | meridian-h2c) ;;
    meridian-base) [ -x "${MERIDIAN_BASE_DIR:-}/meridian" ] ||
      die "target meridian-base needs MERIDIAN_BASE_DIR (a build directory with a meridian)" ;;
    *) die "unknown target '$t' (meridian, nginx, haproxy, meridian-h2c, meridian-base)" ;;
  esac
done
selected() { [[ " ${scenarios[*]} " == *" $1 "* ]]; }
# --pin: command prefixes for the proxies and for the origin and the clients.
pin_proxy=() pin_load=()
if [ "$pin" = 1 ]; then
  [ "$(nproc)" -ge 2 ] || die "--pin needs at least 2 CPUs"
  pin_proxy=(taskset -c 1) pin_load=(taskset -c 0)
fi

N1=${N1:-2000}
N2=${N2:-6000}
N1_H2=${N1_H2:-5000}
N2_H2=${N2_H2:-25000}
N1_TLS=${N1_TLS:-200}
N2_TLS=${N2_TLS:-1000}
N1_TLS_KA=${N1_TLS_KA:-5000}
N2_TLS_KA=${N2_TLS_KA:-25000}
IDLE_CONNS=${IDLE_CONNS:-10000}
H2_REQUESTS=${H2_REQUESTS:-100000}
TLS_IDLE_CONNS=${TLS_IDLE_CONNS:-2000}
[ "$N2" -gt "$N1" ] || die "N2 ($N2) must be larger than N1 ($N1)"
[ "$N2_H2" -gt "$N1_H2" ] || die "N2_H2 ($N2_H2) must be larger than N1_H2 ($N1_H2)"
[ "$N2_TLS" -gt "$N1_TLS" ] || die "N2_TLS ($N2_TLS) must be larger than N1_TLS ($N1_TLS)"
[ "$N2_TLS_KA" -gt "$N1_TLS_KA" ] || die "N2_TLS_KA ($N2_TLS_KA) must be larger than N1_TLS_KA ($N1_TLS_KA)"

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
here=bench/e2e
python=${PYTHON:-python3}

# 10k idle connections need 10k descriptors in the proxy and in the client. Where the hard
# limit is lower and cannot be raised (a container without CAP_SYS_RESOURCE), take what there
# is, say so, and size the proxies and the idle test to it.
if ! ulimit -n 65536 2>/dev/null; then
  ulimit -n "$(ulimit -Hn)"
  progress "warning: cannot raise the open files limit to 65536; using the hard limit $(ulimit -n)"
fi
nofile=$(ulimit -n)
# nginx counts client and upstream connections in worker_connections.
nginx_conns=$((nofile < 32768 ? nofile : 32768))
# HAProxy reserves two descriptors per connection and refuses to start when maxconn does not
# fit its open files limit (which it can raise itself only as far as the hard limit).
haproxy_maxconn=$(((nofile - 100) / 2 < 20000 ? (nofile - 100) / 2 : 20000))
# The idle test needs IDLE_CONNS connections in every proxy; with a low limit, fewer (the
# table says how many; KiB per connection stays comparable).
idle_conns=$((IDLE_CONNS < haproxy_maxconn - 100 ? IDLE_CONNS : haproxy_maxconn - 100))
if selected idle && [ "$idle_conns" -lt "$IDLE_CONNS" ]; then
  progress "warning: the open files limit $nofile allows $idle_conns idle connections, not $IDLE_CONNS"
fi

# --- dependencies and build -------------------------------------------------------------------
bash tests/install-deps.sh wrk nginx-light haproxy valgrind strace nghttp2-client
for tool in wrk nginx haproxy valgrind strace curl h2load "$python"; do
  command -v "$tool" >/dev/null || die "$tool not found after tests/install-deps.sh"
done

work=$(mktemp -d /tmp/meridian-bench.XXXXXX)
# nginx workers run as nobody and serve the static files from here.
chmod 755 "$work"

started=()  # every process we start (or daemon we spawn), stopped on exit whatever happens
cleanup() {
  local i
  for ((i = ${#started[@]} - 1; i >= 0; i--)); do stop_tree "${started[i]}"; done
  if [ -n "${MERIDIAN_BENCH_KEEP:-}" ]; then
    echo "run.sh: MERIDIAN_BENCH_KEEP: configurations, logs and callgrind files kept in $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

build=${MERIDIAN_BUILD_DIR:-build}
build_targets() {  # log target...
  local log=$1
  shift
  { cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release &&
    cmake --build "$build" --target "$@" -j"$(nproc)"; } > "$log" 2>&1
}
if [ "${MERIDIAN_SKIP_BUILD:-0}" = 1 ]; then
  progress "MERIDIAN_SKIP_BUILD=1: using the existing $build/meridian"
else
  progress "building meridian (Release) in $build"
  build_targets "$work/build.log" meridian meridian_handshake_load ||
    die_log "$work/build.log" "the meridian build failed"
fi
# The handshake client is built even with MERIDIAN_SKIP_BUILD=1 (it is small, and not what is
# measured).
if [ ! -x "$build/bench/meridian_handshake_load" ]; then
  build_targets "$work/build-client.log" meridian_handshake_load ||
    die_log "$work/build-client.log" "the build of bench/e2e/handshake_load.cpp failed"
fi
cp "$build/bench/meridian_handshake_load" "$work/handshake_load"
[ -x "$build/meridian" ] || die "$build/meridian does not exist (build it, or unset MERIDIAN_SKIP_BUILD)"
# A private copy, so that a rebuild in the same tree during the run cannot change the binary
# between rounds.
cp "$build/meridian" "$work/meridian"
[ -n "${MERIDIAN_BASE_DIR:-}" ] && cp "$MERIDIAN_BASE_DIR/meridian" "$work/meridian-base-bin"

# --- process helpers (from /proc: no procps needed) -------------------------------------------
# Running and not a zombie (our own children stay zombies until reaped).
alive() {
  local s
  read -r s 2>/dev/null < "/proc/$1/stat" || return 1
  s=${s##*) }
  [ "${s:0:1}" != Z ]
}
children_of() {
  local p s f
  for p in /proc/[0-9]*; do
    read -r s 2>/dev/null < "$p/stat" || continue
    s=${s##*) }          # the fields after "pid (comm) ": state ppid ...
    read -r -a f <<< "$s"
    [ "${f[1]}" = "$1" ] && echo "${p#/proc/}"
  done
  return 0
}
descendants() {
  local c
  for c in $(children_of "$1"); do echo "$c"; descendants "$c"; done
}
# Waits up to $2 seconds for $1 to exit; reaps it if it is our child.
wait_exit() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    alive "$1" || { wait "$1" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  return 1
}
# SIGTERM to the process first (an nginx master stops its workers; strace detaches), then to
# whatever it left behind, then SIGKILL for anything still there after 10 s.
stop_tree() {
  local pid=$1 kids k
  alive "$pid" || { wait "$pid" 2>/dev/null || true; return 0; }
  kids=$(descendants "$pid")
  kill -TERM "$pid" 2>/dev/null || true
  wait_exit "$pid" 10 || kill -KILL "$pid" 2>/dev/null || true
  for k in $kids; do
    alive "$k" || continue
    kill -TERM "$k" 2>/dev/null || true
    wait_exit "$k" 5 || kill -KILL "$k" 2>/dev/null || true
  done
  wait "$pid" 2>/dev/null || true
}
# utime + stime (fields 14 and 15 of /proc/PID/stat, in clock ticks), all threads included.
cpu_ticks() {
  local s f
  read -r s < "/proc/$1/stat"
  s=${s##*) }
  read -r -a f <<< "$s"  # f[0] is field 3
  echo $((f[11] + f[12]))
}
status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
clk_tck=$(getconf CLK_TCK)

# Is anything (any address, v4 or v6) listening on TCP port $1? Read from /proc/net so that
# checking adds no connection to a proxy whose requests or syscalls are being counted.
listening() {
  local hex
  hex=$(printf '%04X' "$1")
  # grep reads the files itself: `cat | grep -q` fails under pipefail when grep stops at a
  # match before cat is done (SIGPIPE), which a long socket table makes likely.
  grep -qsE "^ *[0-9]+: [0-9A-F]+:$hex [0-9A-F]+:[0-9A-F]+ 0A " /proc/net/tcp /proc/net/tcp6
}
wait_listening() {  # port pid name log
  local i
  for ((i = 0; i < 600; i++)); do
    listening "$1" && return 0
    alive "$2" || die_log "$4" "$3 exited before listening on port $1"
    sleep 0.1
  done
  die_log "$4" "$3 is not listening on port $1 after 60 s"
}

# --- ports, results file ----------------------------------------------------------------------
port_origin=18200
port_origin_h2c=18210  # the origin's h2c port, for meridian-h2c
declare -A port=([direct]=18200 [meridian]=18201 [nginx]=18202 [haproxy]=18203
  [meridian-h2c]=18211 [meridian-base]=18212)
declare -A tool_port=([meridian]=18205 [nginx]=18206 [haproxy]=18207 [meridian-base]=18205)
# ... and their h2c ports for callgrind-h2 (meridian's tool port takes both).
declare -A tool_h2_port=([meridian]=18205 [nginx]=18216 [haproxy]=18217 [meridian-base]=18205)
# ... and their TLS ports for callgrind-tls.
declare -A tool_tls_port=([meridian]=18218 [nginx]=18219 [haproxy]=18220 [meridian-base]=18218)
# HTTP/2 in cleartext: nginx and HAProxy need a port that speaks only h2; meridian tells h2
# from HTTP/1.1 by the preface on its usual port.
declare -A h2_port=([meridian]=18201 [nginx]=18208 [haproxy]=18209 [meridian-h2c]=18211
  [meridian-base]=18212)
# TLS (ALPN h2 and http/1.1 on one port each).
declare -A tls_port=([meridian]=18213 [nginx]=18214 [haproxy]=18215 [meridian-base]=18221)
for p in $(seq 18200 18221); do
  listening "$p" && die "port $p is in use; run.sh needs 127.0.0.1:18200-18221 free"
done

mkdir -p "$here/results"
[ -f "$here/results/.gitignore" ] || printf '*.txt\n' > "$here/results/.gitignore"
git_hash=$(git rev-parse --short HEAD 2>/dev/null || echo nogit)
git_desc=$git_hash
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  git_desc+=" (plus uncommitted changes in the working tree)"
fi
results="$here/results/$(date -u +%Y-%m-%d)-$git_hash.txt"
runs="$work/runs.tsv"
: > "$runs"
out() { tee -a "$results"; }

version_of() { "$@" 2>&1 | head -n 1 || true; }
{
  echo "== meridian end-to-end benchmark, $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "command: $cmdline"
  echo "git: $git_desc"
  echo "meridian binary: $build/meridian, modified $(date -u -r "$build/meridian" '+%Y-%m-%d %H:%M:%S UTC')"
  # shellcheck disable=SC1091
  echo "machine: nproc $(nproc); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//');" \
    "kernel $(uname -r); $(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "tools: $(version_of wrk -v | cut -d' ' -f1-2); $(version_of nginx -v | sed 's/.*: //');" \
    "$(version_of haproxy -v | cut -d' ' -f1-3); $(version_of valgrind --version);" \
    "$(version_of strace -V | sed 's/ -- version//')"
  echo "settings: scenarios ${scenarios[*]}; targets direct ${targets[*]}; rounds $rounds;" \
    "duration $duration; N1/N2 $N1/$N2; idle connections $idle_conns;" \
    "open files limit $nofile; HAProxy maxconn $haproxy_maxconn;" \
    "$([ "$pin" = 1 ] && echo "pinned: proxies on CPU 1, origin and clients on CPU 0" || echo "not pinned")"
  echo
} | out

# --- configurations ---------------------------------------------------------------------------
# One worker everywhere, logs off, keep-alive to the origin; descriptor limits sized above.
mkdir -p "$work/www"
head -c 65536 /dev/zero | tr '\0' 'a' > "$work/www/64k"
head -c 1048576 /dev/zero | tr '\0' 'b' > "$work/www/1m"
chmod 755 "$work/www"
chmod 644 "$work/www/64k" "$work/www/1m"

cat > "$work/origin.conf" <<NGINX
worker_processes 1;
daemon on;
pid $work/origin.pid;
worker_rlimit_nofile $nofile;
events { worker_connections $nginx_conns; }
http {
  access_log off;
  keepalive_requests 1000000;
  sendfile on;
  server {
    listen 127.0.0.1:$port_origin;
    listen 127.0.0.1:$port_origin_h2c http2;  # h2c with prior knowledge (meridian-h2c)
    root $work/www;
    location = / { return 200 "hello from the origin\n"; }
    # What a proxy forwarded, for check_forwarding.
    location = /headers {
      return 200 "xff=\$http_x_forwarded_for xfp=\$http_x_forwarded_proto rid=\$http_x_request_id via=\$http_via\n";
    }
    location / { }
  }
}
NGINX

# One ECDSA P-256 certificate for every proxy's TLS port.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=bench.test -keyout "$work/tls.key" -out "$work/tls.pem" > "$work/openssl.log" 2>&1 ||
  die_log "$work/openssl.log" "cannot make the TLS certificate"
cat "$work/tls.pem" "$work/tls.key" > "$work/tls-both.pem"
chmod 644 "$work/tls.key" "$work/tls-both.pem"

# Via names the node as meridian does by default (node.name: the host name).
node_name=$(hostname)
nginx_proxy_conf() {  # file port foreground(0|1) [h2 port [tls port]]
  {
    echo "worker_processes 1;"
    if [ "$3" = 1 ]; then
      # Single process in the foreground, so valgrind/strace see the process doing the work.
      echo "master_process off;"
      echo "daemon off;"
    else
      echo "daemon on;"
    fi
    cat <<NGINX
pid $1.pid;
worker_rlimit_nofile $nofile;
events { worker_connections $nginx_conns; }
http {
  access_log off;
  keepalive_requests 1000000;
  upstream origin { server 127.0.0.1:$port_origin; keepalive 64; }
  # The forwarding fields meridian adds by contract (see the note at check_forwarding).
  map \$http_x_request_id \$forward_request_id { "" \$request_id; default \$http_x_request_id; }
  map \$http_via \$forward_via { "" "1.1 $node_name"; default "\$http_via, 1.1 $node_name"; }
  server {
    listen 127.0.0.1:$2;
${4:+    listen 127.0.0.1:$4 http2;}
${5:+    listen 127.0.0.1:$5 ssl http2;}
    ssl_certificate $work/tls.pem;
    ssl_certificate_key $work/tls.key;
    ssl_session_cache shared:SSL:10m;
    ssl_session_timeout 1h;
    # nginx 1.22's default is TLSv1 to TLSv1.2: TLS 1.3 as the other proxies offer it.
    ssl_protocols TLSv1.2 TLSv1.3;
    http2_max_concurrent_streams 100;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header X-Request-Id \$forward_request_id;
      proxy_set_header Via \$forward_via;
      add_header Via "1.1 $node_name" always;
      # Big bodies pass through the in-memory buffers, as in meridian and HAProxy, instead
      # of being spooled to temporary files on disk.
      proxy_max_temp_file_size 0;
    }
  }
}
NGINX
  } > "$1"
}
nginx_proxy_conf "$work/nginx.conf" "${port[nginx]}" 0 "${h2_port[nginx]}" "${tls_port[nginx]}"
nginx_proxy_conf "$work/nginx-tool.conf" "${tool_port[nginx]}" 1 "${tool_h2_port[nginx]}" \
  "${tool_tls_port[nginx]}"

haproxy_conf() {  # file port [h2 port [tls port]]
  cat > "$1" <<HAPROXY
global
  nbthread 1
  maxconn $haproxy_maxconn
  tune.ssl.lifetime 3600
defaults
  mode http
  option http-keep-alive
  http-reuse always
  maxconn $haproxy_maxconn
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-request 10s
  timeout http-keep-alive 60s
frontend bench
  bind 127.0.0.1:$2
${3:+  bind 127.0.0.1:$3 proto h2}
${4:+  bind 127.0.0.1:$4 ssl crt $work/tls-both.pem alpn h2,http/1.1}
  # The forwarding fields meridian adds by contract (see the note at check_forwarding).
  option forwardfor
  http-request set-header X-Forwarded-Proto https if { ssl_fc }
  http-request set-header X-Forwarded-Proto http unless { ssl_fc }
  unique-id-format %[uuid()]
  http-request set-header X-Request-Id %[unique-id] unless { req.hdr(x-request-id) -m found }
  http-request add-header Via "1.1 $node_name"
  http-response add-header Via "1.1 $node_name"
  default_backend origin
backend origin
  server origin 127.0.0.1:$port_origin
HAPROXY
  haproxy -c -q -f "$1" > "$1.check" 2>&1 || die_log "$1.check" "HAProxy rejects $1"
}
haproxy_conf "$work/haproxy.cfg" "${port[haproxy]}" "${h2_port[haproxy]}" "${tls_port[haproxy]}"
haproxy_conf "$work/haproxy-tool.cfg" "${tool_port[haproxy]}" "${tool_h2_port[haproxy]}" \
  "${tool_tls_port[haproxy]}"

meridian_conf() {  # file port [protocol [origin port [tls port]]]
  # No protocol line by default, so that the file also suits a binary from before the key.
  local protocol_line="" tls_listener=""
  [ -n "${3:-}" ] && protocol_line="protocol: $3"
  [ -n "${5:-}" ] && tls_listener="
  - name: bench-tls
    listen: 127.0.0.1:$5
    tls: {certificates: [{cert: $work/tls.pem, key: $work/tls.key}], alpn: [h2, http/1.1]}
    routes: [{name: all, backend: origin}]"
  cat > "$1" <<YAML
workers: 1
admin: {listen: ""}
access_log: {path: off}
listeners:
  - name: bench
    listen: 127.0.0.1:$2
    routes: [{name: all, backend: origin}]$tls_listener
backends:
  - name: origin
    $protocol_line
    regions:
      - name: local
        location: {lat: 0, lon: 0}
        endpoints: [{address: 127.0.0.1:${4:-$port_origin}}]
YAML
}
meridian_conf "$work/meridian.yaml" "${port[meridian]}" "" "" "${tls_port[meridian]}"
meridian_conf "$work/meridian-h2c.yaml" "${port[meridian-h2c]}" h2c "$port_origin_h2c"
meridian_conf "$work/meridian-base.yaml" "${port[meridian-base]}" "" "" "${tls_port[meridian-base]}"
meridian_conf "$work/meridian-tool.yaml" "${tool_port[meridian]}" "" "" "${tool_tls_port[meridian]}"

# --- starting the targets ---------------------------------------------------------------------
declare -A proc_pid  # target -> the process whose CPU and memory are measured
declare -A top_pid   # target -> the process to stop it by (nginx's master)
declare -A log_of=([direct]="$work/origin-error.log" [meridian]="$work/meridian.log"
  [meridian-h2c]="$work/meridian-h2c.log" [meridian-base]="$work/meridian-base.log"
  [nginx]="$work/nginx-error.log" [haproxy]="$work/haproxy.log")

# The pid a daemon wrote to its pid file.
read_pidfile() {  # file name log
  local i
  for ((i = 0; i < 100; i++)); do
    [ -s "$1" ] && { cat "$1"; return 0; }
    sleep 0.1
  done
  echo "no pid file $1" >&2
  return 1
}
# Answers with the origin's body on / and with the exact sizes on /64k and /1m.
check_answers() {  # name port
  local body got i want
  for ((i = 0; i < 100; i++)); do
    body=$(curl -s --max-time 2 "http://127.0.0.1:$2/" || true)
    [ "$body" = "hello from the origin" ] && break
    alive "${proc_pid[$1]}" || die_log "${log_of[$1]}" "$1 exited during start-up"
    sleep 0.1
  done
  [ "$body" = "hello from the origin" ] ||
    die_log "${log_of[$1]}" "$1 does not answer GET / on 127.0.0.1:$2 (got '$body')"
  for want in "64k 65536" "1m 1048576"; do
    got=$(curl -s --max-time 5 -o /dev/null -w '%{http_code} %{size_download}' \
      "http://127.0.0.1:$2/${want% *}")
    [ "$got" = "200 ${want#* }" ] ||
      die_log "${log_of[$1]}" "$1: GET /${want% *} gave '$got', not '200 ${want#* }'"
  done
}
# Equal work: meridian adds X-Forwarded-For, X-Forwarded-Proto, X-Request-Id (kept, or made
# when absent) and Via to every forwarded request and Via to every response (README:
# "Headers"); the nginx and HAProxy configurations above do the same, and every proxy is
# checked here before it is measured, on its plain port and (when a TLS scenario runs) its TLS
# port. (Until 2026-12-07 the peers added nothing: each request they forwarded was 115 bytes
# shorter for the origin to parse, and the response one field shorter for the client.)
check_forwarding() {  # name
  local scheme url got
  for scheme in http https; do
    if [ "$scheme" = https ]; then
      [ "$tls_measured" = 1 ] && [ -n "${tls_port[$1]:-}" ] || continue
      url="https://127.0.0.1:${tls_port[$1]}/headers"
    else
      url="http://127.0.0.1:${port[$1]}/headers"
    fi
    got=$(curl -sk --max-time 5 -D "$work/headers-$1.txt" "$url" || true)
    [[ $got =~ ^xff=127\.0\.0\.1\ xfp=$scheme\ rid=[0-9A-Za-z-]{32,}\ via=1\.1\ [^\ ]+$ ]] ||
      die_log "${log_of[$1]}" "$1 forwarded '$got' for GET $url; every proxy must add X-Forwarded-For, X-Forwarded-Proto, X-Request-Id and Via"
    grep -qi '^via: 1\.1 ' "$work/headers-$1.txt" ||
      die_log "$work/headers-$1.txt" "$1 answered GET $url without a Via field"
  done
}
start_origin() {
  "${pin_load[@]}" nginx -c "$work/origin.conf" -p "$work" -e "$work/origin-error.log" ||
    die_log "$work/origin-error.log" "the nginx origin did not start"
  local master
  master=$(read_pidfile "$work/origin.pid") || die_log "$work/origin-error.log" "no origin pid file"
  started+=("$master")
  proc_pid[direct]=$master
  check_answers direct "$port_origin"
}
start_target() {
  local master i
  case $1 in
    meridian | meridian-h2c | meridian-base)
      local bin="$work/meridian"
      [ "$1" = meridian-base ] && bin="$work/meridian-base-bin"
      "${pin_proxy[@]}" "$bin" --config "$work/$1.yaml" > "${log_of[$1]}" 2>&1 &
      proc_pid[$1]=$!
      top_pid[$1]=$!
      started+=("$!")
      ;;
    nginx)
      "${pin_proxy[@]}" nginx -c "$work/nginx.conf" -p "$work" -e "$work/nginx-error.log" ||
        die_log "$work/nginx-error.log" "the nginx proxy did not start"
      rm -f "$work/nginx.conf.pid.oldbin"
      for ((i = 0; i < 50; i++)); do
        master=$(read_pidfile "$work/nginx.conf.pid") || die_log "$work/nginx-error.log" "no nginx pid file"
        alive "$master" && break
        sleep 0.1
      done
      started+=("$master")
      top_pid[nginx]=$master
      # The worker (the master's one child) does the proxying; the master only supervises.
      for ((i = 0; i < 50; i++)); do
        proc_pid[nginx]=$(children_of "$master" | head -n 1)
        [ -n "${proc_pid[nginx]}" ] && break
        sleep 0.1
      done
      [ -n "${proc_pid[nginx]}" ] || die_log "$work/nginx-error.log" "the nginx proxy has no worker"
      ;;
    haproxy)
      # -D without -W: one daemon process (nbthread 1) that does all the work.
      "${pin_proxy[@]}" haproxy -D -f "$work/haproxy.cfg" -p "$work/haproxy.pid" > "$work/haproxy.log" 2>&1 ||
        die_log "$work/haproxy.log" "HAProxy did not start"
      proc_pid[haproxy]=$(read_pidfile "$work/haproxy.pid") || die_log "$work/haproxy.log" "no HAProxy pid file"
      top_pid[haproxy]=${proc_pid[haproxy]}
      started+=("${proc_pid[haproxy]}")
      ;;
  esac
  check_answers "$1" "${port[$1]}"
  check_forwarding "$1"
  progress "$1 started on 127.0.0.1:${port[$1]} (measured pid ${proc_pid[$1]})"
}
# A fresh process, so that memory freed by an earlier scenario (and reused) does not hide
# what a scenario's connections cost.
restart_target() {
  local i
  stop_tree "${top_pid[$1]}"
  rm -f "$work/nginx.conf.pid" "$work/haproxy.pid"
  for ((i = 0; i < 100; i++)); do listening "${port[$1]}" || break; sleep 0.1; done
  start_target "$1"
}

# --- wrk scenarios ----------------------------------------------------------------------------
warned_clear_refs=0
# Runs a load generator against one target while measuring the target process's CPU
# ticks and peak RSS (VmHWM) over the run, and records it for report.py, which reads wrk
# and h2load output alike.
measured_run() {  # scenario round target output-file command...
  local scen=$1 round=$2 target=$3 outf=$4 pid="" t0=0 ticks=- hwm=-
  shift 4
  if [ "$target" != direct ]; then
    pid=${proc_pid[$target]}
    alive "$pid" || die_log "${log_of[$target]}" "$target (pid $pid) is no longer running"
    # 5 resets VmHWM to the current RSS, so the peak is this run's.
    if ! echo 5 2>/dev/null > "/proc/$pid/clear_refs" && [ $warned_clear_refs = 0 ]; then
      progress "warning: cannot reset VmHWM (not root?): peak RSS is since start"
      warned_clear_refs=1
    fi
    t0=$(cpu_ticks "$pid")
  fi
  "${pin_load[@]}" "$@" > "$outf" 2>&1 || die_log "$outf" "$1 failed against $target"
  if [ -n "$pid" ]; then
    alive "$pid" || die_log "${log_of[$target]}" "$target died during the $scen run"
    ticks=$(($(cpu_ticks "$pid") - t0))
    hwm=$(status_kib "$pid" VmHWM)
  fi
  printf 'wrk\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scen" "$round" "$target" "$outf" "$ticks" "$hwm" >> "$runs"
  local line
  line=$("$python" "$here/report.py" line "$outf" "$ticks" "$clk_tck" "$hwm") ||
    die_log "$outf" "cannot parse the $1 output of $target"
  progress "$(printf '[%s %d/%d] %-8s' "$scen" "$round" "$rounds" "$target") $line"
}
# The targets of a scenario: the TLS ones have no direct run (the origin speaks no TLS) and
# only the proxies with a TLS port.
scenario_targets() {  # scenario [with-direct]
  local t
  if [[ $1 == tls-* ]]; then
    for t in "${targets[@]}"; do [ -n "${tls_port[$t]:-}" ] && echo "$t"; done
  else
    [ "${2:-}" = with-direct ] && echo direct
    for t in "${targets[@]}"; do echo "$t"; done
  fi
}
base_url() {  # scenario target
  if [[ $1 == tls-* ]]; then echo "https://127.0.0.1:${tls_port[$2]}"; else echo "http://127.0.0.1:${port[$2]}"; fi
}
run_wrk() {  # scenario round target conns path [extra wrk args...]
  local scen=$1 round=$2 target=$3 conns=$4 path=$5
  shift 5
  measured_run "$scen" "$round" "$target" "$work/wrk-$scen-$round-$target.txt" \
    wrk -t1 -c"$conns" -d"$duration" --latency "$@" "$(base_url "$scen" "$target")$path"
}
wrk_scenario() {  # scenario conns path title [extra wrk args...]
  local scen=$1 conns=$2 path=$3 title=$4 round t
  shift 4
  for ((round = 1; round <= rounds; round++)); do
    for t in $(scenario_targets "$scen" with-direct); do
      run_wrk "$scen" "$round" "$t" "$conns" "$path" "$@"
      sleep 1  # let the previous run's connections close before the next target's run
    done
  done
  "$python" "$here/report.py" table "$runs" "$scen" --title "$title" --clk-tck "$clk_tck" | out
  echo | out
}

# --- h2load scenarios -------------------------------------------------------------------------
# Recorded like wrk runs (report.py reads either output); h2load reports no percentiles.
run_h2load() {  # scenario round target proto(h2|h1)
  local url="http://127.0.0.1:${port[$3]}/" args=(-m 10)
  if [ "$4" = h1 ]; then
    args=(--h1 -m 1)
  elif [[ $1 == tls-* ]]; then
    url="https://127.0.0.1:${tls_port[$3]}/"  # h2load offers h2 by ALPN
  else
    url="http://127.0.0.1:${h2_port[$3]}/"
  fi
  measured_run "$1" "$2" "$3" "$work/h2load-$1-$2-$3.txt" \
    h2load -n "$H2_REQUESTS" -c 10 "${args[@]}" "$url"
}
h2load_scenario() {  # scenario proto title
  local round t list
  if [ "$2" = h1 ]; then
    mapfile -t list < <(scenario_targets "$1" with-direct)
  else
    mapfile -t list < <(scenario_targets "$1")
  fi
  for ((round = 1; round <= rounds; round++)); do
    for t in "${list[@]}"; do
      run_h2load "$1" "$round" "$t" "$2"
      sleep 1
    done
  done
  "$python" "$here/report.py" table "$runs" "$1" --title "$3" --clk-tck "$clk_tck" | out
  echo | out
}

# --- context switches under TLS keep-alive ----------------------------------------------------
# Voluntary context switches (the times a process blocked for want of work) of every thread of
# a process.
sleeps_of() {  # pid
  local t v sum=0
  for t in /proc/"$1"/task/*; do
    v=$(awk '$1 == "voluntary_ctxt_switches:" { print $2 }' "$t/status" 2>/dev/null) || true
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}
machine_switches() { awk '$1 == "ctxt" { print $2 }' /proc/stat; }
# The tls-keepalive wrk run again, counting per request the context switches of the whole machine,
# the blocking waits of the origin's worker and of the proxy: with three processes on two cores,
# every wait is a wake-up someone pays for in the kernel (bench/README.md).
wakeups_scenario() {
  local origin_worker round t outf m0 o0 p0 m1 o1 p1 n rps
  origin_worker=$(children_of "${proc_pid[direct]}" | head -n 1)
  [ -n "$origin_worker" ] || die "cannot find the origin's worker process"
  {
    echo "== tls-wakeups: context switches per request during wrk -t1 -c50 -d$duration over TLS keep-alive"
    printf '%-9s %5s %9s %16s %18s %17s\n' target round req/s "machine ctxt/req" "origin sleeps/req" "proxy sleeps/req"
  } | out
  for ((round = 1; round <= rounds; round++)); do
    for t in $(scenario_targets tls-wakeups); do
      outf="$work/wakeups-$round-$t.txt"
      m0=$(machine_switches) o0=$(sleeps_of "$origin_worker") p0=$(sleeps_of "${proc_pid[$t]}")
      "${pin_load[@]}" wrk -t1 -c50 -d"$duration" "https://127.0.0.1:${tls_port[$t]}/" > "$outf" 2>&1 ||
        die_log "$outf" "wrk failed against $t"
      m1=$(machine_switches) o1=$(sleeps_of "$origin_worker") p1=$(sleeps_of "${proc_pid[$t]}")
      n=$(awk '$2 == "requests" && $3 == "in" { print $1 }' "$outf")
      rps=$(awk '$1 == "Requests/sec:" { print $2 }' "$outf")
      [ -n "$n" ] && [ "$n" -gt 0 ] || die_log "$outf" "no request count in the wrk output of $t"
      awk -v t="$t" -v r="$round" -v rps="$rps" -v n="$n" -v m=$((m1 - m0)) -v o=$((o1 - o0)) \
        -v p=$((p1 - p0)) 'BEGIN { printf "%-9s %5d %9.0f %16.3f %18.3f %17.3f\n", t, r, rps, m / n, o / n, p / n }' | out
      sleep 1
    done
  done
  echo | out
}

# --- resumed TLS handshakes -------------------------------------------------------------------
resume_scenario() {  # scenario mode title
  local round t
  for ((round = 1; round <= rounds; round++)); do
    for t in $(scenario_targets "$1"); do
      measured_run "$1" "$round" "$t" "$work/resume-$1-$round-$t.txt" \
        "$work/handshake_load" --port "${tls_port[$t]}" --mode "$2" --conns 16 \
        --duration "${duration%s}"
      sleep 1
    done
  done
  "$python" "$here/report.py" table "$runs" "$1" --title "$3" --clk-tck "$clk_tck" | out
  echo | out
}

# --- idle connections -------------------------------------------------------------------------
idle_scenario() {  # [kind (idle, tls-idle-h1, tls-idle-h2)]
  local kind=${1:-idle} conns=$idle_conns tls_args=() t pid before after cpid ready i p
  if [ "$kind" != idle ]; then
    conns=$((TLS_IDLE_CONNS < idle_conns ? TLS_IDLE_CONNS : idle_conns))
    tls_args=(--tls "${kind#tls-idle-}")
  fi
  [ "$conns" -gt 0 ] || die "the open files limit $nofile is too low for the idle test"
  for t in $(scenario_targets "$kind"); do
    [ "$kind" != idle ] && restart_target "$t"
    pid=${proc_pid[$t]}
    p=${port[$t]}
    [ "$kind" != idle ] && p=${tls_port[$t]}
    ready="$work/$kind-$t.ready"
    # Warm up first, so that "before" already holds what serving 50 requests at a time costs
    # (buffers, pools, upstream connections) and the difference is the idle connections' own.
    "$python" "$here/clients.py" conc --port "${port[$t]}" --conns 50 --requests 2000 --wait 5 \
      > /dev/null 2>&1 || die "the warm-up client against $t failed"
    if [ "$kind" != idle ]; then
      "$python" "$here/clients.py" idle --port "$p" --conns 200 --wait 5 --hold 0 \
        --ready-file "$ready.warm" "${tls_args[@]}" > /dev/null 2>&1 ||
        die "the TLS warm-up client against $t failed"
    fi
    sleep 2  # let connections of earlier runs finish closing
    before=$(status_kib "$pid" VmRSS)
    "$python" "$here/clients.py" idle --port "$p" --conns "$conns" --wait 5 \
      --ready-file "$ready" "${tls_args[@]}" 2> "$work/$kind-$t.log" &
    cpid=$!
    started+=("$cpid")
    for ((i = 0; i < 3000; i++)); do
      [ -s "$ready" ] && break
      alive "$cpid" || die_log "$work/$kind-$t.log" "the idle client against $t failed"
      sleep 0.1
    done
    [ -s "$ready" ] || die_log "$work/$kind-$t.log" "the idle client against $t is not done after 300 s"
    sleep 1  # settle
    alive "$pid" || die_log "${log_of[$t]}" "$t died holding $conns connections"
    after=$(status_kib "$pid" VmRSS)
    stop_tree "$cpid"
    printf '%s\t%s\t%s\t%s\t%s\n' "$kind" "$t" "$conns" "$before" "$after" >> "$runs"
    progress "[$kind] $t: VmRSS $before KiB -> $after KiB with $conns connections"
  done
  local what="idle keep-alive connections"
  [ "$kind" = tls-idle-h1 ] && what="idle TLS connections speaking HTTP/1.1"
  [ "$kind" = tls-idle-h2 ] && what="idle TLS connections speaking HTTP/2"
  "$python" "$here/report.py" table "$runs" "$kind" --title "$kind: VmRSS of the proxy process before and while holding $conns $what (one GET answered on each)" | out
  echo | out
}

# --- callgrind and strace ---------------------------------------------------------------------
# The command running target $1 as one foreground process on its tool port.
tool_command() {
  case $1 in
    meridian) cmd=("$work/meridian" --config "$work/meridian-tool.yaml") ;;
    meridian-base) cmd=("$work/meridian-base-bin" --config "$work/meridian-tool.yaml") ;;
    nginx) cmd=(nginx -c "$work/nginx-tool.conf" -p "$work" -e "$work/nginx-tool-error.log") ;;
    haproxy) cmd=(haproxy -db -f "$work/haproxy-tool.cfg") ;;
  esac
}
callgrind_run() {  # target requests [kind: callgrind (HTTP/1.1) | callgrind-h2 (h2c) |
  #                                      callgrind-tls-{full,ticket,id} (handshakes) |
  #                                      callgrind-tls-keepalive (HTTP/1.1 over TLS)]
  local t=$1 n=$2 kind=${3:-callgrind} vpid
  local outf="$work/$kind-$1-$2.out" log="$work/$kind-$1-$2.log"
  tool_command "$t"
  valgrind --tool=callgrind --callgrind-out-file="$outf" --log-file="$log.valgrind" \
    "${cmd[@]}" > "$log" 2>&1 &
  vpid=$!  # valgrind runs the program in its own process: this is the proxy's pid
  started+=("$vpid")
  wait_listening "${tool_port[$t]}" "$vpid" "$t under callgrind" "$log.valgrind"
  if [[ $kind == callgrind-tls-* ]]; then
    wait_listening "${tool_tls_port[$t]}" "$vpid" "$t under callgrind" "$log.valgrind"
    if [ "$kind" = callgrind-tls-keepalive ]; then
      h2load --h1 -n "$n" -c 10 "https://127.0.0.1:${tool_tls_port[$t]}/" > "$log.client" 2>&1
    else
      "$work/handshake_load" --port "${tool_tls_port[$t]}" --mode "${kind#callgrind-tls-}" \
        --conns 4 --requests "$n" > "$log.client" 2>&1
    fi && grep -q "succeeded, 0 failed, 0 errored" "$log.client" ||
      die_log "$log.client" "the TLS client against $t under callgrind failed"
  elif [ "$kind" = callgrind-h2 ]; then
    wait_listening "${tool_h2_port[$t]}" "$vpid" "$t under callgrind" "$log.valgrind"
    h2load -n "$n" -c 10 -m 10 "http://127.0.0.1:${tool_h2_port[$t]}/" > "$log.h2load" 2>&1 &&
      grep -q "succeeded, 0 failed, 0 errored" "$log.h2load" ||
      die_log "$log.h2load" "h2load against $t under callgrind failed"
  else
    "$python" "$here/clients.py" seq --port "${tool_port[$t]}" --requests "$n" --wait 10 \
      2>> "$log" || die_log "$log" "the sequential client against $t under callgrind failed"
  fi
  # SIGTERM: every target exits on it, and callgrind writes its file at exit.
  kill -TERM "$vpid"
  wait_exit "$vpid" 120 || die_log "$log.valgrind" "$t under callgrind did not exit within 120 s of SIGTERM"
  grep -qE '^(totals|summary):' "$outf" 2>/dev/null ||
    die_log "$log.valgrind" "no totals in the callgrind output of $t"
  printf '%s\t%s\t%s\t%s\n' "$kind" "$t" "$n" "$outf" >> "$runs"
  progress "[$kind] $t, $n requests: $(grep -hE '^(totals|summary):' "$outf" | head -n 1)"
}
strace_run() {  # target requests
  local t=$1 n=$2 outf="$work/strace-$1-$2.txt" log="$work/strace-$1-$2.log" spid tracee i
  tool_command "$t"
  strace -f -c -o "$outf" -- "${cmd[@]}" > "$log" 2>&1 &
  spid=$!
  started+=("$spid")
  wait_listening "${tool_port[$t]}" "$spid" "$t under strace" "$log"
  tracee=$(children_of "$spid" | head -n 1)
  [ -n "$tracee" ] || die_log "$log" "cannot find $t's process under strace"
  "$python" "$here/clients.py" conc --port "${tool_port[$t]}" --requests "$n" --conns 50 \
    --wait 10 2>> "$log" || die_log "$log" "the concurrent client against $t under strace failed"
  # Signal the proxy, not strace (which would detach and leave it running); strace writes
  # its summary when its last tracee has exited.
  kill -TERM "$tracee"
  wait_exit "$spid" 60 || die_log "$log" "$t under strace did not exit within 60 s of SIGTERM"
  grep -qE ' total$' "$outf" 2>/dev/null || die_log "$log" "no strace summary for $t"
  printf 'strace\t%s\t%s\t%s\n' "$t" "$n" "$outf" >> "$runs"
  progress "[strace] $t, $n requests: $(awk '$NF == "total" { print $4 }' "$outf") syscalls"
}
tool_scenario() {  # callgrind|callgrind-h2|callgrind-tls|strace
  local t mode
  if [ "$1" = callgrind-tls ]; then
    local n1 n2 title
    for mode in keepalive full ticket id; do
      if [ "$mode" = keepalive ]; then
        n1=$N1_TLS_KA n2=$N2_TLS_KA
        title="user-space instructions per request of HTTP/1.1 keep-alive over TLS (h2load --h1 -c 10)"
      else
        n1=$N1_TLS n2=$N2_TLS
        title="user-space instructions per handshake (${tls_mode_title[$mode]}, a request on a new connection each, handshake_load --conns 4)"
      fi
      for t in "${targets[@]}"; do
        [ "$t" = meridian-h2c ] && continue
        callgrind_run "$t" "$n1" "callgrind-tls-$mode"
        callgrind_run "$t" "$n2" "callgrind-tls-$mode"
      done
      "$python" "$here/report.py" table "$runs" "callgrind-tls-$mode" --title "callgrind-tls-$mode: $title, (Ir($n2) - Ir($n1)) / $((n2 - n1))" | out
      echo | out
    done
    return
  fi
  for t in "${targets[@]}"; do
    [ "$t" = meridian-h2c ] && continue  # measured with the wrk and h2load scenarios only
    # meridian-base is measured on the same port as meridian: one runs after the other.
    if [ "$1" = callgrind-h2 ]; then
      callgrind_run "$t" "$N1_H2" callgrind-h2
      callgrind_run "$t" "$N2_H2" callgrind-h2
      continue
    fi
    "${1}_run" "$t" "$N1"
    "${1}_run" "$t" "$N2"
  done
  if [ "$1" = callgrind-h2 ]; then
    "$python" "$here/report.py" table "$runs" callgrind-h2 --title "callgrind-h2: user-space instructions per proxied request, h2load -c 10 -m 10 in cleartext (HTTP/1.1 to the origin), (Ir($N2_H2) - Ir($N1_H2)) / $((N2_H2 - N1_H2))" | out
  elif [ "$1" = callgrind ]; then
    "$python" "$here/report.py" table "$runs" callgrind --title "callgrind: user-space instructions per proxied request, sequential keep-alive client, (Ir($N2) - Ir($N1)) / $((N2 - N1))" | out
  else
    "$python" "$here/report.py" table "$runs" strace --title "strace -f -c: syscalls per proxied request, 50 keep-alive connections with one request outstanding each, (calls($N2) - calls($N1)) / $((N2 - N1))" | out
  fi
  echo | out
}

declare -A tls_mode_title=([full]="full TLS 1.3" [ticket]="TLS 1.3 resumed by ticket"
  [id]="TLS 1.2 resumed by session ID")

# --- run --------------------------------------------------------------------------------------
start_origin
progress "nginx origin started on 127.0.0.1:$port_origin"
needs_running=0
for s in keepalive close 64k 1m h2 h1load idle tls-keepalive tls-close tls-full \
  tls-resume-ticket tls-resume-id tls-h2 tls-idle tls-wakeups; do selected "$s" && needs_running=1; done
if [ "$needs_running" = 1 ] || [ "$hold" = 1 ]; then
  for t in "${targets[@]}"; do start_target "$t"; done
fi
if [ "$hold" = 1 ]; then
  for t in "${targets[@]}"; do
    progress "holding: $t pid ${proc_pid[$t]} port ${port[$t]} TLS port ${tls_port[$t]:-none}"
  done
  progress "holding: origin pid ${proc_pid[direct]} port $port_origin; configurations in $work (Ctrl-C ends)"
  while true; do sleep 3600 & wait $!; done  # wait: a signal ends it at once
fi

for s in "${scenarios[@]}"; do
  case $s in
    keepalive) wrk_scenario keepalive 50 / \
      "keepalive: small GET (22-byte body), keep-alive, wrk -t1 -c50 -d$duration --latency" ;;
    close) wrk_scenario close 50 / \
      "close: a new connection per request, wrk -t1 -c50 -d$duration --latency -H 'Connection: close'" \
      -H 'Connection: close' ;;
    64k) wrk_scenario 64k 10 /64k "64k: 64 KiB responses, keep-alive, wrk -t1 -c10 -d$duration --latency" ;;
    1m) wrk_scenario 1m 10 /1m "1m: 1 MiB responses, keep-alive, wrk -t1 -c10 -d$duration --latency" ;;
    h2) h2load_scenario h2 h2 \
      "h2: HTTP/2 cleartext, small GET, h2load -n $H2_REQUESTS -c 10 -m 10 (HTTP/1.1 keep-alive to the origin)" ;;
    h1load) h2load_scenario h1load h1 \
      "h1load: HTTP/1.1 keep-alive, small GET, h2load --h1 -n $H2_REQUESTS -c 10 -m 1" ;;
    idle) idle_scenario ;;
    tls-keepalive) wrk_scenario tls-keepalive 50 / \
      "tls-keepalive: small GET over TLS, keep-alive, wrk -t1 -c50 -d$duration --latency" ;;
    tls-close) wrk_scenario tls-close 50 / \
      "tls-close: a TLS handshake per request (wrk resumes its last session where it can), wrk -t1 -c50 -d$duration --latency -H 'Connection: close'" \
      -H 'Connection: close' ;;
    tls-full) resume_scenario tls-full full \
      "tls-full: a full TLS 1.3 handshake per request, handshake_load --mode full --conns 16 ($duration); failed = resumed" ;;
    tls-resume-ticket) resume_scenario tls-resume-ticket ticket \
      "tls-resume-ticket: a TLS 1.3 handshake resumed by ticket per request, handshake_load --mode ticket --conns 16 ($duration); failed = not resumed" ;;
    tls-resume-id) resume_scenario tls-resume-id id \
      "tls-resume-id: a TLS 1.2 handshake resumed by session ID per request, handshake_load --mode id --conns 16 ($duration); failed = not resumed" ;;
    tls-h2) h2load_scenario tls-h2 h2 \
      "tls-h2: HTTP/2 over TLS, small GET, h2load -n $H2_REQUESTS -c 10 -m 10 (HTTP/1.1 keep-alive to the origin)" ;;
    tls-idle) idle_scenario tls-idle-h1; idle_scenario tls-idle-h2 ;;
    tls-wakeups) wakeups_scenario ;;
    callgrind | callgrind-h2 | callgrind-tls | strace) tool_scenario "$s" ;;
  esac
done
progress "results appended to $results"
