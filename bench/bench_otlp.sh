#!/usr/bin/env bash
# OTLP figures (issue 13), against a local sink that accepts everything
# (bench/trace_sink.mjs, Node's HTTP server, no parsing):
#   1. OTLP encoding and export of 100,000 spans (lode_trace_fill's bodies)
#      to the sink, 1000 per request (bench/bench_otlp.c) (target >= 100,000
#      spans/s); and the same through the durable outbox (`lode export`,
#      OTLP only), beside Opik's exporter in the same run
#   2. tracing on, delivering to both destinations (Opik and OTLP, to the
#      sink), against tracing off (OPIK_TRACK_DISABLE), on 10-step workflows:
#      `lode run bench/noop10.lua N 10`, whole process wall time including the
#      final flush, medians of ROUNDS alternated rounds (target >= 0.8)
# Needs node.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${LODE_BUILD:-$here/../build}
lode=${LODE_BIN:-$build/lode}
fill=$build/lode_trace_fill
work=$here/.work/otlp
mkdir -p "$work"
[ -x "$fill" ] || { echo "bench_otlp: $fill missing (configure with LODE_TESTING=ON)"; exit 1; }

rm -f "$work/port"
node "$here/trace_sink.mjs" "$work/port" &
sink=$!
trap 'kill $sink 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
base="http://127.0.0.1:$(cat "$work/port")"
clean_env() { env -u OPIK_API_KEY -u OPIK_WORKSPACE -u OPIK_TRACK_DISABLE -u OPIK_CONFIG_PATH \
  -u OPIK_URL_OVERRIDE -u OTEL_EXPORTER_OTLP_ENDPOINT -u OTEL_EXPORTER_OTLP_TRACES_ENDPOINT \
  -u OTEL_EXPORTER_OTLP_HEADERS -u OTEL_SDK_DISABLED HOME="$work" "$@"; }
stat() { curl -s "$base/_stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

# ---- 1. OTLP encoding and export ----------------------------------------------------
db=$work/otlp.db
rm -f "$db" "$db-wal" "$db-shm"
"$fill" "$db" --traces 1000 --spans 100 >/dev/null
# 1a. the span bodies encoded and posted to the sink, 1000 per request, one
#     connection (bench/bench_otlp.c): the target figure
out=$("$build/bench_otlp" "$db" "$base/v1/traces")
python3 - "$out" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
assert r["bad"] == 0 and r["spans"] == 100000, r
rate, enc = r["spans"] / r["total_s"], r["spans"] / r["encode_s"]
print("OTLP encoding + export to a local sink: %d spans, %d requests, %.1f MB in %.3f s"
      " = %.0f spans/s (encoding alone %.0f spans/s) (target >= 100000: %s)"
      % (r["spans"], r["requests"], r["bytes"] / 1e6, r["total_s"], rate, enc,
         "MET" if rate >= 100000 else "NOT MET"))
PY
# 1b. the same through the durable outbox: `lode export` with only OTLP
#     configured (rows read, encoded, posted, marked sent), and Opik's
#     exporter on a copy of the same database in the same run
cp "$db" "$work/opik.db"
t0=$(date +%s.%N)
clean_env OTEL_EXPORTER_OTLP_ENDPOINT="$base" "$lode" export --db "$db" --timeout 120 >/dev/null
t1=$(date +%s.%N)
clean_env OPIK_URL_OVERRIDE="$base/api" "$lode" export --db "$work/opik.db" --timeout 120 >/dev/null
t2=$(date +%s.%N)
sent=$(sqlite3 "$db" "SELECT count(*) FROM trace_records WHERE kind='span' AND otlp_state='sent'")
python3 - "$t0" "$t1" "$t2" "$sent" <<'PY'
import sys
t0, t1, t2, sent = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
assert sent == 100000, "only %d of 100000 spans were marked sent" % sent
print("  through the outbox (lode export, OTLP only): %.0f spans/s; Opik's exporter, same"
      " spans (+1000 traces), same run: %.0f spans/s" % (sent / (t1 - t0), 100000 / (t2 - t1)))
PY

# ---- 2. tracing on (both destinations) vs off, 10-step workflows -------------------------
N=${N:-1000}
ROUNDS=${ROUNDS:-3}
run_once() { # $1: on|off|local -> seconds
  local db=$work/noop-$1.db
  rm -f "$db" "$db-wal" "$db-shm"
  local t0 t1
  t0=$(date +%s.%N)
  if [ "$1" = on ]; then
    clean_env OPIK_URL_OVERRIDE="$base/api" OTEL_EXPORTER_OTLP_ENDPOINT="$base" \
      "$lode" run "$here/noop10.lua" "$N" 10 --db "$db" >/dev/null
    local left
    left=$(sqlite3 "$db" "SELECT count(*) FROM trace_records WHERE state='pending'
                          OR otlp_state='pending'")
    [ "$left" = 0 ] || { echo "tracing on: $left records left pending" >&2; exit 1; }
  elif [ "$1" = opik ]; then # Opik alone, for comparison
    clean_env OPIK_URL_OVERRIDE="$base/api" "$lode" run "$here/noop10.lua" "$N" 10 --db "$db" >/dev/null
  elif [ "$1" = local ]; then # recorded, no destination configured
    clean_env "$lode" run "$here/noop10.lua" "$N" 10 --db "$db" >/dev/null
  else
    clean_env OPIK_TRACK_DISABLE=true "$lode" run "$here/noop10.lua" "$N" 10 --db "$db" >/dev/null
  fi
  t1=$(date +%s.%N)
  python3 -c "import sys; print(float(sys.argv[1]) - float(sys.argv[2]))" "$t1" "$t0"
}
ons=() offs=() locs=() opiks=()
for _ in $(seq "$ROUNDS"); do
  offs+=("$(run_once off)")
  ons+=("$(run_once on)")
  locs+=("$(run_once local)")
  opiks+=("$(run_once opik)")
done
python3 - "$N" "${ons[*]}" "${offs[*]}" "${locs[*]}" "${opiks[*]}" <<'PY'
import statistics, sys
n = int(sys.argv[1])
on = [float(x) for x in sys.argv[2].split()]
off = [float(x) for x in sys.argv[3].split()]
loc = [float(x) for x in sys.argv[4].split()]
opik = [float(x) for x in sys.argv[5].split()]
m_on, m_off = statistics.median(on), statistics.median(off)
steps = n * 10
r = m_off / m_on
print("tracing on (Opik + OTLP, delivered) vs off, %d workflows x 10 steps: on %.0f steps/s,"
      " off %.0f steps/s, ratio %.2f (rounds on %s, off %s; target >= 0.8: %s)"
      % (n, steps / m_on, steps / m_off, r, " ".join("%.2fs" % x for x in on),
         " ".join("%.2fs" % x for x in off), "MET" if r >= 0.8 else "NOT MET"))
print("  for comparison, against off: recorded locally only (no destination) %.2f;"
      " Opik alone %.2f" % (m_off / statistics.median(loc), m_off / statistics.median(opik)))
PY
