#!/usr/bin/env bash
# Quick start: installs what is missing (apt-get, idempotent), builds meridian, starts the
# eight demo origins of conf/demo.yaml on 127.0.0.1:9001-9008 (four regions: us-east,
# us-west, eu-west, ap-southeast) and meridian on 127.0.0.1:8080 (admin on :9901), then
# prints curl commands that play clients around the world (loopback GeoIP database).
# Ctrl-C stops everything (meridian drains first).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bash tests/install-deps.sh
build=${MERIDIAN_BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --target meridian -j"$(nproc)"

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# port  name             delay_ms
# The delay (origin.py --delay-ms, applied to every request but health checks) stands in for
# the round trip from this node (Frankfurt, node.location) to the region: about the
# great-circle distance / 100 km per ms, the score's geo term) plus routing overhead, close to what
# Frankfurt sees to those cloud regions. Health checks are answered at once, so the latency
# term of steering stays small and the client's location decides (the point of the demo).
origins=(
  "9001 us-east-1      90"    # Virginia, ~6500 km
  "9002 us-east-2      90"
  "9003 us-west-1      150"   # Oregon, ~8400 km
  "9004 eu-west-1      20"    # Dublin, ~1100 km: the near one
  "9005 eu-west-2      20"
  "9006 ap-southeast-1 160"   # Singapore, ~10300 km
  "9007 ap-southeast-2 160"
  "9008 accounts-eu-1  20"    # Dublin: the primary of the "accounts" failover backend
)
for o in "${origins[@]}"; do
  read -r port name delay <<<"$o"
  python3 -S tests/support/origin.py --port "$port" --name "$name" --delay-ms "$delay" \
    >/dev/null &
  pids+=($!)
done
# Wait until every origin listens, so that the first health checks find them up.
for o in "${origins[@]}"; do
  read -r port _ <<<"$o"
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
  done
done

"$build/meridian" --check --config conf/demo.yaml
cat <<'EOF'
meridian: http://127.0.0.1:8080/   admin: http://127.0.0.1:9901/status   (Ctrl-C to stop)

Clients around the world (the source address places them; see conf/demo.yaml):
  curl -si --interface 127.0.1.1 http://127.0.0.1:8080/     # New York  -> us-east
  curl -si --interface 127.0.2.1 http://127.0.0.1:8080/     # Frankfurt -> eu-west
  curl -si --interface 127.0.3.1 http://127.0.0.1:8080/     # Singapore -> ap-southeast
  curl -si http://127.0.0.1:8080/                           # unknown   -> eu-west (node location)
  curl -si http://127.0.0.1:8080/account/me                 # failover backend -> eu-west
Look at x-meridian-region and x-meridian-endpoint in the response.

Fail a region (its origins answer 503 to health checks), watch the traffic move, restore it:
  curl -X POST 'http://127.0.0.1:9004/__control/health?status=503'
  curl -X POST 'http://127.0.0.1:9005/__control/health?status=503'
  curl -si --interface 127.0.2.1 http://127.0.0.1:8080/     # Frankfurt -> us-east after ~2 s
  curl -s http://127.0.0.1:9901/status                      # health, ejection, latency
  curl -X POST 'http://127.0.0.1:9004/__control/health?status=200'
  curl -X POST 'http://127.0.0.1:9005/__control/health?status=200'
(The same on 9008 moves /account/ to us-east.)
EOF
"$build/meridian" --config conf/demo.yaml &
pids+=($!)
wait "${pids[-1]}"
