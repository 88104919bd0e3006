#!/usr/bin/env bash
# Builds every libFuzzer target (tests/fuzz/fuzz_*.c, declared by the area
# fragments under cmake/) with clang + ASan + UBSan and runs each briefly.
#   FUZZ_TIME   seconds per target (default 20)
#   FUZZ_BUILD  build directory (default build-fuzz at the repository root)
# Seeds live in tests/fuzz/corpus/<target>/ (read only); new inputs go to
# $FUZZ_BUILD/corpus/<target>/, crashes to $FUZZ_BUILD/crash-<target>-*.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${FUZZ_BUILD:-$root/build-fuzz}
time=${FUZZ_TIME:-20}
command -v clang >/dev/null || { echo "fuzz: clang not found (apt-get install clang)"; exit 1; }

CC=clang cmake -S "$root" -B "$build" -DLODE_FUZZ=ON -DLODE_ASAN=ON -DLODE_UBSAN=ON \
  -DLODE_TESTING=OFF >/dev/null
targets=$(cmake --build "$build" --target help | grep -o 'fuzz_[A-Za-z0-9_]*' | sort -u)
[ -n "$targets" ] || { echo "fuzz: no fuzz_* targets declared"; exit 1; }
# shellcheck disable=SC2086
cmake --build "$build" -j2 --target $targets

status=0
for bin in "$build"/fuzz_*; do
  [ -x "$bin" ] && [ -f "$bin" ] || continue
  name=$(basename "$bin")
  mkdir -p "$build/corpus/$name"
  seeds=()
  [ -d "$root/tests/fuzz/corpus/$name" ] && seeds=("$root/tests/fuzz/corpus/$name")
  echo "=== $name (${time}s)"
  if ! "$bin" -max_total_time="$time" -max_len=16384 -rss_limit_mb=2048 -print_final_stats=0 \
      -artifact_prefix="$build/crash-$name-" "$build/corpus/$name" "${seeds[@]}" \
      > "$build/$name.log" 2>&1; then
    tail -40 "$build/$name.log"
    echo "fuzz: $name FAILED (log: $build/$name.log)"
    status=1
  else
    grep -E '^#[0-9]+.*DONE|Done [0-9]+ runs' "$build/$name.log" | tail -1 || true
  fi
done
exit $status
