#!/usr/bin/env bash
# Runs every test: installs missing Debian packages (apt-get, idempotent), builds, runs ctest.
# Exits non-zero on any failure.
#   tests/run-tests.sh              Release build in build/, all tests
#   tests/run-tests.sh --sanitize   ASan+UBSan build in build-asan/, all tests but the
#                                   memory-bound ones (sanitizers change RSS)
#   tests/run-tests.sh --tsan       ThreadSanitizer build in build-tsan/, the concurrency
#                                   tests: unit tests of what threads share (metrics,
#                                   rate limit buckets, GeoIP, access log, health checker)
#                                   and the integration tests with several workers, reloads
#                                   and health publishing
#   tests/run-tests.sh --arm64      cross-build for aarch64 in build-arm64/ (Debian's cross
#                                   compiler and arm64 libraries, tests/arm64/), then run
#                                   the unit tests and the smoke test (a proxied request,
#                                   /metrics, drain) under qemu-aarch64-static
# Extra arguments after the options go to ctest (e.g. -R integration.test_routing).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

build=build
cmake_args=(-DCMAKE_BUILD_TYPE=Release -DMERIDIAN_SANITIZE=OFF)
# Sanitizer builds at -O1 with line tables only (-g1): what ASan and TSan recommend, enough for
# symbolized reports with file and line, and half the compile time of -O2 -g (19 -> 10 s for
# exchange.cpp; the ASan build was most of CI's time).
sanitizer_flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG")
if [ "${1:-}" = "--sanitize" ]; then
  shift
  build=build-asan
  cmake_args=("${sanitizer_flags[@]}" -DMERIDIAN_SANITIZE=ON)
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fi

concurrency=""
targets=()
if [ "${1:-}" = "--tsan" ]; then
  shift
  build=build-tsan
  cmake_args=("${sanitizer_flags[@]}" -DMERIDIAN_TSAN=ON -DMERIDIAN_BENCH=OFF)
  export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
  # Only what those tests need is built.
  targets=(meridian meridian_unit_geo meridian_unit_metrics meridian_unit_ratelimit
           meridian_unit_accesslog meridian_unit_health)
  concurrency='^(GeoLocatorConcurrency|Registry|Gcra|LocalBuckets|Writer|HealthCheckerTest)\.|^integration\.test_(reload|sighup|traffic_policy|dns|health_checks|steering|steering_acceptance|rate_limit|rate_limit_global|metrics|lifecycle|access_log|http2|websocket|drain_and_control|failure_detection|shared_state|tls|h2_upstream|mirror|hashing_affinity)$'
fi

labels=""
if [ "${1:-}" = "--arm64" ]; then
  shift
  build=build-arm64
  cmake_args=(-DCMAKE_BUILD_TYPE=Release -DMERIDIAN_BENCH=OFF
              -DCMAKE_TOOLCHAIN_FILE="$root/tests/arm64/toolchain.cmake")
  # Emulated, the integration suite would take hours; the smoke test covers the binary.
  labels='^(unit|smoke)$'
fi

bash tests/install-deps.sh
if [ "$build" = build-arm64 ]; then
  bash tests/arm64/install-deps.sh
fi
jobs=$(nproc)
cmake -S . -B "$build" -DMERIDIAN_TESTS=ON -DMERIDIAN_BENCH=ON "${cmake_args[@]}" >/dev/null
if [ ${#targets[@]} -gt 0 ]; then
  cmake --build "$build" -j"$jobs" --target "${targets[@]}"
else
  cmake --build "$build" -j"$jobs"
fi
cd "$build"
if [ -n "$concurrency" ]; then
  # Without address space randomisation: GCC 12's TSan cannot map its shadow memory on
  # kernels with many mmap random bits; the personality is inherited by the tests' children.
  setarch "$(uname -m)" -R ctest --output-on-failure --timeout 900 -j"$jobs" -R "$concurrency" "$@"
elif [ -n "$labels" ]; then
  ctest --output-on-failure --timeout 900 -j"$jobs" -L "$labels" "$@"
else
  ctest --output-on-failure --timeout 900 -j"$jobs" "$@"
fi
