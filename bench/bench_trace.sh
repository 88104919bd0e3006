#!/usr/bin/env bash
# Tracing figures (issue 4), all against one local sink that accepts everything
# (bench/trace_sink.mjs, Node's HTTP server, no parsing):
#   1. exporter throughput: `lode export` of 100,000 pending spans (target >= 50,000 spans/s)
#   2. per-span cost, lode vs Opik's own TypeScript SDK (npm `opik`) in the same
#      run, same tree shape: lode's figure includes writing every record durably
#      to SQLite (start and end versions) and exporting it (target: lode <= 1/5).
# Needs node/npm; installs `opik` into bench/.work/opik the first time.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${LODE_BUILD:-$here/../build}
lode=${LODE_BIN:-$build/lode}
fill=$build/lode_trace_fill
work=$here/.work/trace
mods=$here/.work/opik
mkdir -p "$work" "$mods"
[ -x "$fill" ] || { echo "bench_trace: $fill missing (configure with LODE_TESTING=ON)"; exit 1; }

if [ ! -d "$mods/node_modules/opik" ]; then
  echo "installing npm package opik into $mods ..."
  [ -f "$mods/package.json" ] || echo '{"name":"lode-bench-opik","private":true}' > "$mods/package.json"
  (cd "$mods" && npm install --no-audit --no-fund --loglevel=error opik >/dev/null)
fi
sdk_version=$(node -p "require('$mods/node_modules/opik/package.json').version")

rm -f "$work/port"
node "$here/trace_sink.mjs" "$work/port" &
sink=$!
trap 'kill $sink 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
url="http://127.0.0.1:$(cat "$work/port")/api"
items() { curl -s "${url%/api}/_stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"])'; }
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
clean_env() { env -u OPIK_API_KEY -u OPIK_WORKSPACE -u OPIK_TRACK_DISABLE -u OPIK_CONFIG_PATH \
  HOME="$work" OPIK_URL_OVERRIDE="$url" OPIK_PROJECT_NAME="Default Project" "$@"; }

# ---- 1. exporter throughput ------------------------------------------------------
db=$work/throughput.db
rm -f "$db" "$db-wal" "$db-shm"
"$fill" "$db" --traces 1000 --spans 100 >/dev/null
before=$(items)
t0=$(date +%s.%N)
clean_env "$lode" export --db "$db" --timeout 120 >/dev/null
t1=$(date +%s.%N)
got=$(( $(items) - before ))
python3 - "$t0" "$t1" "$got" <<'PY'
import sys
t0, t1, got = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
spans = 100000
assert got == spans + 1000, "sink saw %d items, expected %d" % (got, spans + 1000)
rate = spans / (t1 - t0)
print("exporter throughput: %d spans (+1000 traces) in %.3f s = %.0f spans/s"
      " (target >= 50000: %s, x%.1f)" % (spans, t1 - t0, rate,
      "PASS" if rate >= 50000 else "FAIL", rate / 50000))
PY

# ---- 2. per-span cost vs Opik's TypeScript SDK -------------------------------------
T=100 S=100
db=$work/perspan.db
rm -f "$db" "$db-wal" "$db-shm"
before=$(items)
out=$(clean_env "$fill" "$db" --traces $T --spans $S --twice --export --flush 120)
lode_got=$(( $(items) - before ))
before=$(items)
sdk=$(clean_env node "$here/trace_opik_sdk.mjs" "$mods/node_modules" $T $S 2>/dev/null | tail -1)
sdk_got=$(( $(items) - before ))
python3 - "$out" "$sdk" "$lode_got" "$sdk_got" "$sdk_version" <<'PY'
import json, sys
lode, sdk = json.loads(sys.argv[1]), json.loads(sys.argv[2])
lode_got, sdk_got, ver = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
n = lode["spans"]
assert lode["pending"] == 0, "lode left %d records pending" % lode["pending"]
assert lode_got >= n and sdk_got >= n, (lode_got, sdk_got)
l_us = (lode["put_s"] + lode["stop_s"]) / n * 1e6
s_us = (sdk["record_s"] + sdk["flush_s"]) / n * 1e6
print("per span, lode (durable: start+end upserts in SQLite, then exported): %.1f us"
      " (record %.1f us + drain %.1f us)" % (l_us, lode["put_s"] / n * 1e6, lode["stop_s"] / n * 1e6))
print("per span, Opik TypeScript SDK %s (in memory, then flush):      %.1f us"
      " (record %.1f us + flush %.1f us)" % (ver, s_us, sdk["record_s"] / n * 1e6, sdk["flush_s"] / n * 1e6))
r = l_us / s_us
print("lode / SDK per-span time: %.3f (target <= 0.2: %s)" % (r, "PASS" if r <= 0.2 else "FAIL"))
PY
