#!/usr/bin/env bash
# Fault soak (docs/hardening.md): builds meridian and runs tests/soak/soak.py against it --
# origins that reset, stall, close mid-body and answer garbage, health flapping, a reload every
# second, clients that leave mid-request, HTTP/2 clients -- and prints the report. Not part of
# the default test run.
#
#   tests/soak/run.sh [--duration SECONDS] [--sanitize] [--clients N]
#
#   --duration S  how long (default 300, the 5-minute run of docs/hardening.md)
#   --sanitize    the ASan+UBSan build (build-asan/, LeakSanitizer at exit); use a shorter
#                 run, e.g. --duration 60
# Exits non-zero when meridian crashed, exited uncleanly, reported a sanitizer error, grew
# its RSS after the warm-up, refused a reload, or a client got a malformed answer or none.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

duration=300
build=build
cmake_args=(-DCMAKE_BUILD_TYPE=Release -DMERIDIAN_SANITIZE=OFF)
extra=()
while [ $# -gt 0 ]; do
  case $1 in
    --duration) duration=$2; shift ;;
    --clients) extra+=(--clients "$2"); shift ;;
    --sanitize)
      build=build-asan
      extra+=(--sanitized)
      cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DMERIDIAN_SANITIZE=ON)
      export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
      export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
      ;;
    -h | --help) sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

bash tests/install-deps.sh
cmake -S . -B "$build" -DMERIDIAN_TESTS=ON "${cmake_args[@]}" >/dev/null
cmake --build "$build" -j"$(nproc)" --target meridian
python3 tests/soak/soak.py --duration "$duration" --binary "$build/meridian" "${extra[@]}"
