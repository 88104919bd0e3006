#!/usr/bin/env bash
# What one full ingestion keeps on disk, against the source it read (the
# sizing of docs/operations.md): pipelines/ingest_folder.lua over a mixed
# corpus (default /usr/share/doc with the pipeline's default globs; CORPUS=DIR
# to change), into a fresh state database and store, tracing on with no Opik
# (records kept locally). Sizes are SQLite's own page counts per table
# (dbstat), the reference is the run's `bytes` (source bytes of the ingested
# files). Figures only: no target.
set -euo pipefail
build=${1:-${LODE_BUILD:-build}}
lode="$build/lode"
src=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$lode" ] || { echo "bench_sizes: $lode not built"; exit 1; }
command -v sqlite3 >/dev/null || { echo "bench_sizes: needs sqlite3 (Debian package sqlite3)"; exit 1; }
lode=$(cd "$(dirname "$lode")" && pwd)/lode
corpus=${CORPUS:-/usr/share/doc}
work=$(mktemp -d "${TMPDIR:-/tmp}/lode-bench-sizes.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
if ! env -u OPIK_URL_OVERRIDE -u OPIK_API_KEY HOME="$work" OPIK_CONFIG_PATH="$work/none" \
    "$lode" run --db state.db --workers "${WORKERS:-2}" "$src/pipelines/ingest_folder.lua" \
    "$corpus" --store store.db > result.json 2> run.err; then
  # failed files make the run exit 1; the summary on stderr still counts them
  grep -q "files failed" run.err || { cat run.err >&2; exit 1; }
fi
tail -n 3 run.err | grep -E "ingested|chunks" || true
size() { sqlite3 "$1" "SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE $2"; }
bytes=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["bytes"])' result.json 2>/dev/null \
        || grep -oE '[0-9.]+ MB$' run.err | tail -1 | awk '{printf "%d", $1 * 1048576}')
python3 - "$bytes" \
  "$(stat -c %s state.db)" "$(size state.db "name = 'steps'")" \
  "$(size state.db "name LIKE 'trace_records%' OR name LIKE 'sqlite_autoindex_trace_records%'")" \
  "$(stat -c %s store.db)" "$(size store.db "name = 'vectors'")" "$(size store.db "name = 'chunks'")" <<'PY'
import sys
src, *v = (int(x) for x in sys.argv[1:])
names = ["state database, whole file", "  step checkpoints (steps)", "  trace records",
         "store, whole file", "  vectors", "  chunk texts"]
print(f"source: {src / 1e6:.1f} MB (the ingested files)")
for n, b in zip(names, v):
    print(f"{n:32s} {b / 1e6:8.1f} MB  {b / src:5.2f}x source")
PY
