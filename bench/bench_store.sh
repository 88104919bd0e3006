#!/usr/bin/env bash
# Store search: exact top-10 over 100,000 and 1,000,000 x 384 float32
# vectors. Prints time per query, the ratio to a plain memory read of the same
# bytes (target <= 1.5x) and the speed-up over sqlite-vec's vec0 KNN on the
# same vectors (target >= 6x), all measured in this run.
# sqlite-vec comes from npm (the sqlite-vec-linux-x64 subpackage ships vec0.so).
set -euo pipefail
build=${LODE_BUILD:-build}
bin="$build/bench_store"
[ -x "$bin" ] || { echo "bench_store: $bin not built (cmake --build $build)"; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/lode-bench-store.XXXXXX")
trap 'rm -rf "$work"' EXIT

deps="$build/bench-deps/sqlite-vec"
vec0=$(find "$deps" -name vec0.so 2>/dev/null | head -1 || true)
if [ -z "$vec0" ] && command -v npm >/dev/null; then
  mkdir -p "$deps"
  npm install --silent --no-audit --no-fund --prefix "$deps" sqlite-vec >/dev/null 2>&1 || true
  vec0=$(find "$deps" -name vec0.so 2>/dev/null | head -1 || true)
fi
[ -n "$vec0" ] || echo "note: sqlite-vec not available (npm install sqlite-vec failed); skipping it"

status=0
for spec in "100000 384 30" "1000000 384 10"; do
  set -- $spec
  out=$("$bin" "$1" "$2" "$3" "$work" ${vec0:+"$vec0"})
  echo "$out" | grep -v '_MS='
  lode=$(echo "$out" | sed -n 's/^LODE_MS=//p')
  mem=$(echo "$out" | sed -n 's/^MEM_MS=//p')
  v=$(echo "$out" | sed -n 's/^VEC0_MS=//p')
  awk -v l="$lode" -v m="$mem" -v v="$v" -v n="$1" 'BEGIN {
    r = l / m
    printf "  => n=%d: lode %.2f ms/query, %.2fx a memory read (target <= 1.5x: %s)", n, l, r, (r <= 1.5 ? "met" : "MISSED")
    if (v != "") printf ", %.1fx faster than sqlite-vec (target >= 6x: %s)", v / l, ((v / l) >= 6 ? "met" : "MISSED")
    printf "\n"
  }'
  echo "$out" | grep -q "agree with lode: NO" && { echo "  results disagree with sqlite-vec"; status=1; }
done

# The same puts (documents of 20 chunks) and searches on both backends: a
# private PostgreSQL (tests/pg/pgserver.py), fsync and synchronous_commit on.
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  here=$(cd "$(dirname "$0")/.." && pwd)
  /usr/bin/python3 "$here/tests/pg/pgserver.py" run -- sh -c \
    "\"$bin\" backends 1000 384 30 \"$work\" \"\$LODE_TEST_PG\"" || status=1
else
  echo "note: PostgreSQL not installed (make deps); skipping the backends comparison"
fi
exit $status
