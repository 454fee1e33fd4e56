#!/usr/bin/env bash
# Quick start: installs what is missing (apt-get, idempotent), builds meridian, starts four
# demo origins on 127.0.0.1:9001-9004 and meridian with conf/demo.yaml on :8080.
#   curl http://127.0.0.1:8080/          (the "web" backend)
#   curl http://127.0.0.1:8080/api/hello (the "api" backend, least_conn over two endpoints)
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

for port in 9001 9002 9003 9004; do
  python3 -S tests/support/origin.py --port "$port" --name "origin-$port" >/dev/null &
  pids+=($!)
done
"$build/meridian" --check --config conf/demo.yaml
echo "meridian: http://127.0.0.1:8080/  admin: http://127.0.0.1:9901/ready  (Ctrl-C to stop)"
"$build/meridian" --config conf/demo.yaml &
pids+=($!)
wait "${pids[-1]}"
