#!/usr/bin/env bash
# Runs every test: installs missing Debian packages (apt-get, idempotent), builds, runs ctest.
# Exits non-zero on any failure.
#   tests/run-tests.sh              Release build in build/, all tests
#   tests/run-tests.sh --sanitize   ASan+UBSan build in build-asan/, all tests but the
#                                   memory-bound ones (sanitizers change RSS)
# Extra arguments after the options go to ctest (e.g. -R integration.test_routing).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

build=build
cmake_args=(-DCMAKE_BUILD_TYPE=Release -DMERIDIAN_SANITIZE=OFF)
if [ "${1:-}" = "--sanitize" ]; then
  shift
  build=build-asan
  cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DMERIDIAN_SANITIZE=ON)
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fi

bash tests/install-deps.sh
jobs=$(nproc)
cmake -S . -B "$build" -DMERIDIAN_TESTS=ON -DMERIDIAN_BENCH=ON "${cmake_args[@]}" >/dev/null
cmake --build "$build" -j"$jobs"
cd "$build"
ctest --output-on-failure --timeout 900 -j"$jobs" "$@"
