#!/usr/bin/env bash
# Quick end-to-end throughput check (issue 2's acceptance run): wrk -t1 -c50 against an
# nginx origin directly, through meridian (one worker), and through nginx as a reverse proxy
# (one worker, upstream keep-alive, logs off) for a peer figure; same settings, loopback.
#   bench/e2e/quick.sh [duration]     default 10s; prints req/s, latency and errors for each
# Installs wrk and nginx-light if missing. Ports 18100 (origin), 18101 (meridian), 18102
# (nginx proxy). The performance issue's harness (interleaved rounds, HAProxy, callgrind,
# syscall counts) goes further; this is the one-minute sanity check.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
duration=${1:-10s}
bash tests/install-deps.sh wrk nginx-light
build=${MERIDIAN_BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --target meridian -j"$(nproc)" >/dev/null

work=$(mktemp -d)
cleanup() {
  for pidfile in "$work/nginx.pid" "$work/nginx-proxy.pid"; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  [ -n "${mpid:-}" ] && kill "$mpid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/nginx.conf" <<NGINX
worker_processes 1;
daemon on;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:18100 reuseport;
    location / { return 200 "hello from the origin\n"; }
  }
}
NGINX
cat > "$work/nginx-proxy.conf" <<NGINX
worker_processes 1;
daemon on;
pid $work/nginx-proxy.pid;
error_log $work/nginx-proxy-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  upstream origin { server 127.0.0.1:18100; keepalive 64; }
  server {
    listen 127.0.0.1:18102 reuseport;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
NGINX
nginx -c "$work/nginx.conf" -p "$work"
nginx -c "$work/nginx-proxy.conf" -p "$work"

cat > "$work/meridian.yaml" <<YAML
workers: 1
admin: {listen: ""}
access_log: {path: off}
listeners:
  - name: bench
    listen: 127.0.0.1:18101
    routes: [{name: all, backend: origin}]
backends:
  - name: origin
    regions:
      - name: local
        location: {lat: 0, lon: 0}
        endpoints: [{address: 127.0.0.1:18100}]
YAML
"$build/meridian" --config "$work/meridian.yaml" 2>"$work/meridian.log" &
mpid=$!
for _ in $(seq 100); do
  curl -sf -o /dev/null http://127.0.0.1:18101/ && break
  sleep 0.05
done

run() {
  echo "== $1"
  wrk -t1 -c50 -d"$duration" --latency "$2" | grep -E "Requests/sec|Latency  |50%|99%|requests in|Socket errors|Non-2xx"
}
run "direct to nginx origin" http://127.0.0.1:18100/
run "through meridian (1 worker)" http://127.0.0.1:18101/
run "through nginx proxy (1 worker)" http://127.0.0.1:18102/
echo "meridian peak RSS: $(grep VmHWM /proc/$mpid/status | awk '{print $2, $3}')"
