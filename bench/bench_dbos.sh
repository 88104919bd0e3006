#!/usr/bin/env bash
# lode against DBOS Transact's TypeScript SDK (issue 2, last figure): N
# sequential workflows of STEPS no-op steps, each step checkpointed.
#   DBOS: @dbos-inc/dbos-sdk on a private PostgreSQL 15 cluster (Debian,
#         default settings: fsync on, synchronous_commit on), bench/dbos_bench.mjs.
#   lode: bench/noop10.lua, a driver workflow running the STEPS-step workflow
#         N times as child workflows in one process, --sync normal and full.
#   lode on PostgreSQL: the same lode runs with --db postgresql://... on the
#         SAME server as DBOS (a database of its own per run), so both pay
#         the same commits (issue 12).
# Targets: lode >= 50x DBOS's steps/s with --sync normal, >= 15x with full;
# lode on the same PostgreSQL >= 8x DBOS and >= 70% of pgbench's one-client
# rate of one-row commits (a step costs about one commit).
#
# It installs its peers when missing (Debian postgresql-15 with apt-get when
# run as root, the SDK from npm into bench/.work/dbos), so they are never test
# dependencies. A peer that cannot be installed or run, or a run whose
# checkpoints do not check out, says why and exits non-zero; no figure is made
# up. A missed target is printed as NOT MET (exit 0, like bench_executor.sh).
#
# Environment: LODE_BIN (default build/lode), N (100), STEPS (10), WARMUP (10
# DBOS workflows before timing), REPEAT (5 runs of each; the median counts),
# DBOS_SDK_VERSION (npm version range, default ^5.3.0).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
lode=${LODE_BIN:-$root/build/lode}
N=${N:-100} STEPS=${STEPS:-10} WARMUP=${WARMUP:-10} REPEAT=${REPEAT:-5}
# Like for like: DBOS records no traces by default (its OpenTelemetry export is
# off), so lode runs with tracing off too; OPIK_TRACK_DISABLE=false measures
# lode with its trace records (the same transactions as the checkpoints).
export OPIK_TRACK_DISABLE=${OPIK_TRACK_DISABLE:-true}
sdk_version=${DBOS_SDK_VERSION:-^5.3.0}
pgbin=/usr/lib/postgresql/15/bin
work=$here/.work/dbos

die() { echo "bench_dbos: $*" >&2; exit 1; }

for v in N STEPS WARMUP REPEAT; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer, got '${!v}'"
done
[ "$N" -gt 0 ] && [ "$STEPS" -gt 0 ] && [ "$REPEAT" -gt 0 ] ||
  die "N, STEPS and REPEAT must be at least 1"
[ -x "$lode" ] || die "no lode binary at $lode: run 'make build' first (or set LODE_BIN)"
command -v python3 >/dev/null || die "python3 is needed to compute the figures"

# --- peers ----------------------------------------------------------------
if [ ! -x "$pgbin/initdb" ]; then
  [ "$(id -u)" = 0 ] || die "PostgreSQL 15 is not installed ($pgbin/initdb missing) and installing it needs root: apt-get install postgresql-15"
  echo "installing Debian postgresql-15 ..."
  apt-get install -y -q postgresql-15 >/dev/null ||
    { apt-get update -q >/dev/null && apt-get install -y -q postgresql-15 >/dev/null; } ||
    die "apt-get could not install postgresql-15"
  [ -x "$pgbin/initdb" ] || die "postgresql-15 installed but $pgbin/initdb is missing"
fi

command -v node >/dev/null && command -v npm >/dev/null ||
  die "node and npm are needed for DBOS's TypeScript SDK (node >= 20)"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "the DBOS SDK needs node >= 20; this is node $(node --version)"

sdk_pkg=$work/node_modules/@dbos-inc/dbos-sdk/package.json
if [ ! -f "$sdk_pkg" ]; then
  echo "installing @dbos-inc/dbos-sdk@$sdk_version from npm into ${work#"$root"/} ..."
  mkdir -p "$work"
  [ -f "$work/package.json" ] ||
    echo '{"name":"lode-dbos-bench","private":true,"type":"module"}' >"$work/package.json"
  (cd "$work" && npm install --no-audit --no-fund --loglevel=error \
      "@dbos-inc/dbos-sdk@$sdk_version" >"$work/npm-install.log" 2>&1) ||
    die "npm could not install @dbos-inc/dbos-sdk@$sdk_version (see $work/npm-install.log)"
fi
sdk_installed=$(node -p "require('$sdk_pkg').version")
# The program must sit next to node_modules for its ESM import to resolve.
cp "$here/dbos_bench.mjs" "$work/dbos_bench.mjs"

# --- private PostgreSQL cluster -----------------------------------------------
tmp=$(mktemp -d)
pg_started=0
cleanup() {
  if [ "$pg_started" = 1 ]; then as_pg "$pgbin/pg_ctl" -D "$tmp/pg" -m fast -w stop >/dev/null 2>&1 || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM  # so that the EXIT trap stops the cluster on ^C or kill

# initdb refuses root: as root the cluster belongs to the Debian 'postgres' user.
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || die "no 'postgres' user to own the cluster (the Debian package creates it)"
  as_pg() { runuser -u postgres -- "$@"; }
  chmod 755 "$tmp"
  install -d -o postgres -g postgres -m 700 "$tmp/pg" "$tmp/sock"
else
  as_pg() { "$@"; }
  install -d -m 700 "$tmp/pg" "$tmp/sock"
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

as_pg "$pgbin/initdb" -D "$tmp/pg" -U postgres -A trust -E UTF8 >"$tmp/initdb.log" 2>&1 ||
  { cat "$tmp/initdb.log" >&2; die "initdb failed"; }
# Only where it listens is set; everything else (fsync, synchronous_commit,
# wal_sync_method, shared_buffers) stays at PostgreSQL's defaults.
as_pg "$pgbin/pg_ctl" -D "$tmp/pg" -l "$tmp/pg/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$tmp/sock" start >/dev/null ||
  { cat "$tmp/pg/server.log" >&2; die "PostgreSQL did not start on 127.0.0.1:$port"; }
pg_started=1

psql_q() { psql -X -q -At -h 127.0.0.1 -p "$port" -U postgres -d "$1" -c "$2"; }
pg_version=$(psql_q postgres "SHOW server_version")
fsync=$(psql_q postgres "SHOW fsync")
sync_commit=$(psql_q postgres "SHOW synchronous_commit")
[ "$fsync" = on ] && [ "$sync_commit" = on ] ||
  die "PostgreSQL has fsync=$fsync synchronous_commit=$sync_commit; the comparison needs both on"

echo "peers: PostgreSQL $pg_version on 127.0.0.1:$port (fsync=$fsync, synchronous_commit=$sync_commit)," \
  "@dbos-inc/dbos-sdk $sdk_installed, node $(node --version); $N workflows x $STEPS no-op steps, median of $REPEAT interleaved runs"

# --- runs ---------------------------------------------------------------------------
# Each repeat runs DBOS, then lode --sync normal, then lode --sync full, so the
# peers share the same moments of this (shared, noisy) machine; each repeat's
# ratios pair runs made seconds apart.
dbos_url="postgres://postgres@127.0.0.1:$port/dbos_bench_sys"
dbos_run() { # -> steps/s
  local out line
  out=$(cd "$work" && DBOS_SYSTEM_DATABASE_URL=$dbos_url N=$N STEPS=$STEPS WARMUP=$WARMUP \
        node dbos_bench.mjs 2>"$tmp/dbos.err") ||
    { cat "$tmp/dbos.err" >&2; die "the DBOS program failed"; }
  line=$(printf '%s\n' "$out" | grep '^{"workflows"' | tail -n 1) ||
    { printf '%s\n' "$out" >&2; die "the DBOS program printed no result"; }
  printf '%s' "$line" | python3 -c 'import json,sys; print(json.load(sys.stdin)["steps_per_s"])'
}

# lode gives two figures per run: "process" is the wall time of the whole
# `lode run` (start-up, creating and migrating the database included);
# "executor" is the driver workflow's own recorded span (created_at to
# ended_at, millisecond stamps), which matches what the DBOS program times:
# its workflow loop, after DBOS.launch().
lode_run() { # mode run -> "process_s executor_s"
  local db="$tmp/lode-$1-$2.db" t0 t1 out
  t0=$(date +%s%N)
  out=$("$lode" run --db "$db" --sync "$1" "$here/noop10.lua" "$N" "$STEPS" 2>"$tmp/lode.err") ||
    { cat "$tmp/lode.err" >&2; die "lode run failed (--sync $1)"; }
  t1=$(date +%s%N)
  python3 - "$db" "$out" "$N" "$STEPS" "$t0" "$t1" <<'PY' || die "lode run (--sync $1) did not check out"
import json, sqlite3, sys
db, out, n, steps, t0, t1 = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
res = json.loads(out)
assert res == {"workflows": n, "steps": n * steps}, f"lode printed {out!r}"
c = sqlite3.connect(db)
# Every no-op step was checkpointed, in N child workflow records.
got = c.execute("SELECT count(*) FROM steps WHERE name='noop' AND status='SUCCESS'").fetchone()[0]
assert got == n * steps, f"lode recorded {got} step checkpoints, expected {n * steps}"
kids = c.execute("SELECT count(*) FROM workflows WHERE name='noop10' AND status='SUCCESS'").fetchone()[0]
assert kids == n, f"lode recorded {kids} child workflows, expected {n}"
a, b = c.execute("SELECT created_at, ended_at FROM workflows WHERE name='noop10_driver'").fetchone()
print((t1 - t0) / 1e9, max(b - a, 1) / 1000.0)
PY
}

# lode with its state on the same PostgreSQL as DBOS: a fresh database per
# run; the same checks, read with psql.
lode_pg_run() { # mode run -> "process_s executor_s"
  local name="lode_pg_$1_$2" t0 t1 out
  psql_q postgres "CREATE DATABASE $name" || die "cannot create database $name"
  local url="postgresql://postgres@127.0.0.1:$port/$name"
  t0=$(date +%s%N)
  out=$("$lode" run "$here/noop10.lua" "$N" "$STEPS" --db "$url" --sync "$1" 2>"$tmp/lode.err") ||
    { cat "$tmp/lode.err" >&2; die "lode run on PostgreSQL failed (--sync $1)"; }
  t1=$(date +%s%N)
  python3 -c 'import json,sys; assert json.loads(sys.argv[1]) == {"workflows": int(sys.argv[2]), "steps": int(sys.argv[2]) * int(sys.argv[3])}' "$out" "$N" "$STEPS" ||
    die "lode on PostgreSQL printed $out"
  local got kids span
  got=$(psql_q "$name" "SELECT count(*) FROM lode.steps WHERE name='noop' AND status='SUCCESS'")
  [ "$got" = $((N * STEPS)) ] || die "lode on PostgreSQL recorded $got step checkpoints, expected $((N * STEPS))"
  kids=$(psql_q "$name" "SELECT count(*) FROM lode.workflows WHERE name='noop10' AND status='SUCCESS'")
  [ "$kids" = "$N" ] || die "lode on PostgreSQL recorded $kids child workflows, expected $N"
  span=$(psql_q "$name" "SELECT greatest(ended_at - created_at, 1) FROM lode.workflows WHERE name='noop10_driver'")
  python3 -c 'import sys; print((int(sys.argv[2]) - int(sys.argv[1])) / 1e9, int(sys.argv[3]) / 1000.0)' "$t0" "$t1" "$span"
}

for mode in normal full; do  # load the binary and the page cache once
  "$lode" run --db "$tmp/warm-$mode.db" --sync "$mode" "$here/noop10.lua" 1 "$STEPS" >/dev/null 2>&1 ||
    die "lode warm-up run failed (--sync $mode)"
done
runs=$tmp/runs.txt
: >"$runs"
for ((r = 1; r <= REPEAT; r++)); do
  d=$(dbos_run) || exit 1
  line="$d"
  for mode in normal full; do
    res=$(lode_run "$mode" "$r") || exit 1
    line+=" $res"
  done
  res=$(lode_pg_run full "$r") || exit 1
  line+=" $res"
  echo "$line" >>"$runs"
done

# For information: the same work as N separate `lode run` processes (each a
# driver with one 10-step child, so 2 workflow records per process) on one
# database, start-up and recovery scan included every time.
for mode in normal full; do
  db=$tmp/procs-$mode.db t0=$(date +%s%N)
  for ((i = 1; i <= N; i++)); do
    "$lode" run --db "$db" --sync "$mode" "$here/noop10.lua" 1 "$STEPS" >/dev/null 2>"$tmp/lode.err" ||
      { cat "$tmp/lode.err" >&2; die "lode run failed (--sync $mode, process $i)"; }
  done
  echo "$mode $t0 $(date +%s%N)" >>"$tmp/procs.txt"
done

# DBOS really checkpointed every step: one operation_outputs row per step call.
want=$((REPEAT * (N + WARMUP)))
got=$(psql_q dbos_bench_sys "SELECT count(*) FROM dbos.operation_outputs WHERE function_name = 'noop'") ||
  die "cannot count DBOS's step checkpoints"
[ "$got" = $((want * STEPS)) ] || die "DBOS recorded $got step checkpoints, expected $((want * STEPS))"
ok=$(psql_q dbos_bench_sys "SELECT count(*) FROM dbos.workflow_status WHERE name = 'noop10' AND status = 'SUCCESS'")
[ "$ok" = "$want" ] || die "DBOS finished $ok workflows, expected $want"

# Reference: PostgreSQL's own rate of one-row autocommit inserts from one
# client on this cluster, i.e. what one commit (one WAL fsync) costs here.
psql_q dbos_bench_sys "CREATE TABLE bench_raw(id bigserial PRIMARY KEY, v int)" ||
  die "cannot create the reference table"
echo "INSERT INTO bench_raw(v) VALUES (1);" >"$tmp/raw.sql"
pg_raw=$("$pgbin/pgbench" -n -h 127.0.0.1 -p "$port" -U postgres -c 1 -T "${RAW_SECONDS:-3}" \
          -f "$tmp/raw.sql" dbos_bench_sys 2>&1 | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | tail -n 1)
[ -n "$pg_raw" ] || die "pgbench gave no reference rate"

# Reference: what one durable write costs on this disk, the floor of a step
# under --sync full (each step durable before the next runs): a 4 KiB
# overwrite of a preallocated file plus fdatasync, the least a WAL commit
# can do, in the folder lode's databases live in.
sync_us=$(python3 - "$tmp" <<'PY'
import os, sys, time
path = os.path.join(sys.argv[1], "fsync-probe")
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
page = b"\x01" * 4096
for i in range(64):
    os.pwrite(fd, page, i * 4096)
os.fsync(fd)
times = []
for r in range(5):
    t0 = time.perf_counter()
    for i in range(400):
        os.pwrite(fd, page, (i % 64) * 4096)
        os.fdatasync(fd)
    times.append((time.perf_counter() - t0) / 400 * 1e6)
os.close(fd)
os.unlink(path)
print(f"{sorted(times)[2]:.1f}")
PY
) || die "cannot measure fdatasync"

# --- figures --------------------------------------------------------------------------
python3 - "$N" "$STEPS" "$pg_raw" "$runs" "$tmp/procs.txt" "$sync_us" <<'PY'
import statistics as st, sys
n, steps, pg_raw = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
sync_us = float(sys.argv[6])
total = n * steps
# One line per repeat: dbos_steps_per_s, then process_s executor_s for normal,
# then full, then lode on PostgreSQL (--sync full).
rows = [[float(x) for x in line.split()] for line in open(sys.argv[4])]
dbos = [r[0] for r in rows]
lode = {"normal": ([total / r[1] for r in rows], [total / r[2] for r in rows]),
        "full": ([total / r[3] for r in rows], [total / r[4] for r in rows])}
target = {"normal": 50.0, "full": 15.0}
d = st.median(dbos)
print(f"PostgreSQL raw autocommit insert {pg_raw:9.0f} rows/s   (one client; what one commit costs here)")
print(f"DBOS, {n} x {steps}-step workflows  {d:9.0f} steps/s  (runs: {' '.join(f'{x:.0f}' for x in dbos)})")
print(f"one 4 KiB write + fdatasync          {sync_us:6.1f} us      (this disk; one per step allows at most"
      f" {1e6 / sync_us:.0f} steps/s = {1e6 / sync_us / d:.1f}x DBOS with --sync full)")
for mode, (proc, exe) in lode.items():
    for label, rates in (("executor", exe), ("process ", proc)):
        ratios = [x / y for x, y in zip(rates, dbos)]
        m = st.median(rates)
        line = (f"lode --sync {mode:6} {label}     {m:9.0f} steps/s  {m / d:6.1f}x DBOS"
                f"  (per-repeat ratios {min(ratios):.1f}-{max(ratios):.1f}x)")
        if label == "executor":
            ok = m / d >= target[mode]
            line += f"  target >= {target[mode]:.0f}x: {'met' if ok else 'NOT MET'}"
        print(line)
pg = [total / r[6] for r in rows]
pgp = [total / r[5] for r in rows]
m = st.median(pg)
ratios = [x / y for x, y in zip(pg, dbos)]
print(f"lode on the same PostgreSQL executor {m:9.0f} steps/s  {m / d:6.1f}x DBOS"
      f"  (per-repeat ratios {min(ratios):.1f}-{max(ratios):.1f}x)  target >= 8x: "
      f"{'met' if m / d >= 8 else 'NOT MET'}; {m / pg_raw * 100:.0f}% of pgbench's one-client rate"
      f" (target >= 70%: {'met' if m / pg_raw >= 0.7 else 'NOT MET'})")
print(f"lode on the same PostgreSQL process  {st.median(pgp):9.0f} steps/s  {st.median(pgp) / d:6.1f}x DBOS")
for line in open(sys.argv[5]):
    mode, t0, t1 = line.split()
    rate = total / ((int(t1) - int(t0)) / 1e9)
    print(f"lode --sync {mode:6} {n} processes {rate:9.0f} steps/s  {rate / d:6.1f}x DBOS"
          f"  (one `lode run` per workflow, for information)")
print("executor: the driver workflow's recorded duration, like DBOS's timed loop after launch;"
      " process: the whole `lode run`, start-up and database creation included.")
PY
