#!/usr/bin/env bash
# Concurrency figures: 10,000 tiny child workflows through a queue with
# --workers 1 and --workers 2, against the sequential executor (the same
# children called inline) in the same run; then the same fan-out served by
# two processes (lode run + lode worker) on one database, with the share of
# time lost waiting for the other process's locks (target: under 20%).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
lode=${LODE_BIN:-$here/../build/lode}
n=${N:-10000}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cp "$here/queue_bench.lua" "$work/"
cd "$work"
rate() { # prints workflows/s from the JSON result
  python3 -c 'import json,sys; r=json.load(sys.stdin); print("%.0f" % (r["n"]/r["seconds"]))'
}
seq=$("$lode" run --db seq.db --workers 1 queue_bench.lua inline "$n" 2>/dev/null | rate)
w1=$("$lode" run --db w1.db --workers 1 queue_bench.lua queue "$n" 2>/dev/null | rate)
w2=$("$lode" run --db w2.db --workers 2 queue_bench.lua queue "$n" 2>/dev/null | rate)
echo "sequential (inline children):  $seq workflows/s"
echo "queue, --workers 1:            $w1 workflows/s  ($(python3 -c "print('%.2f' % ($w1/$seq))")x sequential)"
echo "queue, --workers 2:            $w2 workflows/s  ($(python3 -c "print('%.2f' % ($w2/$seq))")x sequential)"

# two processes: a worker serving the queue, and the run (which serves it too)
LODE_STATS=1 "$lode" worker --db two.db --workers 1 queue_bench.lua 2> worker.err &
wpid=$!
sleep 0.5
start=$(date +%s.%N)
LODE_STATS=1 "$lode" run --db two.db --workers 1 queue_bench.lua queue "$n" > two.json 2> run.err
end=$(date +%s.%N)
kill -TERM $wpid; wait $wpid || true
total=$(python3 -c "print('%.0f' % ($n/($end-$start)))")
busy_run=$(sed -n 's/.*lode-stats: busy_wait_ms=\([0-9]*\).*/\1/p' run.err | tail -1)
busy_w=$(sed -n 's/.*lode-stats: busy_wait_ms=\([0-9]*\).*/\1/p' worker.err | tail -1)
share=$(python3 -c "print('%.1f' % (100.0*(${busy_run:-0}+${busy_w:-0})/(2*1000*($end-$start))))")
took=$(sqlite3 two.db "select count(distinct executor_id) from workflows where queue='bench'")
echo "two processes (run + worker):  $total workflows/s in all; $took processes took children"
echo "time lost waiting for locks:   $share% of the two processes' time (target < 20%)"
