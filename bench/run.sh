#!/usr/bin/env bash
# Runs every benchmark (bench/bench_*.sh) against the build in $1 (default
# build/). Each prints its figures and ratios against a reference measured in
# the same run. Benchmarks may install their peers (npm, Debian packages).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-build}" && pwd)
export LODE_BIN="$build/lode" LODE_BUILD="$build"
status=0
for b in "$here"/bench_*.sh; do
  [ -e "$b" ] || continue
  [ -n "${BENCH:-}" ] && [[ "$(basename "$b")" != *"$BENCH"* ]] && continue
  echo "=== $(basename "$b")"
  bash "$b" || { echo "bench $(basename "$b") failed"; status=1; }
done
exit $status
