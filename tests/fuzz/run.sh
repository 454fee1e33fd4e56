#!/usr/bin/env bash
# Builds the libFuzzer targets (docs/hardening.md) with clang, ASan and UBSan in build-fuzz/,
# and runs each for a bounded time, starting from its seed corpus (tests/fuzz/corpus/<target>/,
# read only; what a run finds goes to build-fuzz/runs/<target>/corpus).
#
#   tests/fuzz/run.sh [--time SECONDS] [TARGET...]
#
#   --time S   seconds per target (default 60, what CI runs; docs/hardening.md's acceptance
#              run is 600)
#   TARGET     h1_request chunked config proxy_protocol h2_session (default: all)
# Runs as many targets at once as there are cores. Exits non-zero if any target finds a
# crash, a leak, a sanitizer report or a timeout; the input that did it is named in the
# output (build-fuzz/runs/<target>/crash-*, reproduce with the target binary and that file).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

seconds=60
targets=()
while [ $# -gt 0 ]; do
  case $1 in
    --time) seconds=$2; shift ;;
    -h | --help) sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
    *) targets+=("$1") ;;
  esac
  shift
done
[ ${#targets[@]} -gt 0 ] || targets=(h1_request chunked config proxy_protocol h2_session h2_codec)

bash tests/install-deps.sh clang libclang-rt-14-dev
# -O1 with line tables (-g1), as libFuzzer recommends: file and line in reports, and a
# faster build than -O2 -g.
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" \
  -DMERIDIAN_FUZZ=ON -DMERIDIAN_TESTS=OFF -DMERIDIAN_BENCH=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target "${targets[@]/#/meridian_fuzz_}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
run_one() {
  local t=$1 dir=build-fuzz/runs/$1
  mkdir -p "$dir/corpus"
  echo 1 > "$dir/status"
  echo "fuzz: $t for ${seconds}s"
  if "build-fuzz/tests/fuzz/meridian_fuzz_$t" -max_total_time="$seconds" -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$dir/" \
      "$dir/corpus" "tests/fuzz/corpus/$t" > "$dir/log.txt" 2>&1; then
    echo 0 > "$dir/status"
    echo "fuzz: $t passed: $(grep -m1 -oE 'stat::number_of_executed_units: *[0-9]+' "$dir/log.txt" | grep -oE '[0-9]+$') inputs, corpus $(ls "$dir/corpus" | wc -l) files"
    return 0
  fi
  echo "fuzz: $t FAILED (log: $dir/log.txt)"
  tail -n 60 "$dir/log.txt"
  return 1
}

for t in "${targets[@]}"; do
  run_one "$t" &
  # At most one target per core at a time.
  while [ "$(jobs -rp | wc -l)" -ge "$(nproc)" ]; do wait -n || true; done
done
wait
failed=0
for t in "${targets[@]}"; do
  [ "$(cat "build-fuzz/runs/$t/status")" = 0 ] || failed=1
done
[ $failed = 0 ] && echo "fuzz: all targets passed (${seconds}s each)" || echo "fuzz: FAILED"
exit $failed
