#!/usr/bin/env bash
# The step path as a user runs it (issue: one house): the whole `lode run`
# process with lode's defaults (tracing on, --workers = cores, no Opik), less
# its start-up, per step, against one raw SQLite WAL autocommit insert in the
# same sync mode measured in the same run (bench_executor --raw).
#   per step = (time of `lode run bench/noop10.lua 200 10`
#               - time of `lode run bench/noop10.lua 0 10`) / 2000
# Targets: --sync normal <= 1.5x, --sync full <= 1.2x; start-up (a one-step
# pipeline, whole process) reported, aim under 10 ms.
# Each figure is the median of ROUNDS (default 7) rounds; a round measures
# every side back to back on fresh databases.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${LODE_BUILD:-$here/../build}
lode=${LODE_BIN:-$build/lode}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/one.lua" <<'LUA'
local lode = require("lode")
local echo = lode.step("echo", function(x) return x end)
return lode.workflow("one", function(x) return echo(x) end)
LUA
python3 - "$lode" "$build/bench_executor" "$work" "$here/noop10.lua" "${ROUNDS:-7}" "${WF:-200}" <<'PY'
import os, statistics, subprocess, sys, time
lode, bexe, work, noop, rounds, nwf = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
env = dict(os.environ)
for k in ("OPIK_URL_OVERRIDE", "OPIK_API_KEY", "OPIK_WORKSPACE", "OPIK_TRACK_DISABLE", "LODE_DB"):
    env.pop(k, None)
env["HOME"] = work  # no ~/.opik.config

def fresh(name):
    p = os.path.join(work, name)
    for s in ("", "-wal", "-shm"):
        try: os.unlink(p + s)
        except FileNotFoundError: pass
    return p

def timed(args, db):
    t = time.perf_counter()
    subprocess.run([lode, "run", "--db", db] + args, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t

def raw(sync):
    out = subprocess.run([bexe, "--raw", work, str(nwf * 10), sync], check=True,
                         capture_output=True, text=True).stdout
    return float(out) * 1e-6

one = os.path.join(work, "one.lua")
steps = nwf * 10
for sync in ("normal", "full"):
    per, ref, ratio = [], [], []
    for _ in range(rounds):
        r = raw(sync)
        t_run = timed(["--sync", sync, noop, str(nwf), "10"], fresh("a.db"))
        t_0 = timed(["--sync", sync, noop, "0", "10"], fresh("b.db"))
        p = (t_run - t_0) / steps
        per.append(p); ref.append(r); ratio.append(p / r)
    target = 1.5 if sync == "normal" else 1.2
    m = statistics.median(ratio)
    print("step path, whole `lode run` (%d x 10 steps, defaults) --sync %-6s: %.1f us per step;"
          " raw insert %.1f us; ratio %.2f (rounds %.2f-%.2f; target <= %.1f: %s)"
          % (nwf, sync, statistics.median(per) * 1e6, statistics.median(ref) * 1e6, m,
             min(ratio), max(ratio), target, "met" if m <= target else "NOT MET"))
db = fresh("s.db")
timed([one, "x"], db)  # the database exists, as for a user's second run
st = [timed([one, "x"], db) for _ in range(max(rounds, 9))]
st1 = [timed(["--workers", "1", one, "x"], db) for _ in range(max(rounds, 9))]
print("start-up, one-step pipeline, whole process: %.1f ms (--workers 1: %.1f ms; aim < 10 ms)"
      % (statistics.median(st) * 1e3, statistics.median(st1) * 1e3))
PY
