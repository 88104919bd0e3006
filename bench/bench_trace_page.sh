#!/bin/sh
# The 10,000-span trace page (lode trace --html) loaded in headless Chromium:
# the page's own render time (first draw) and the wall time of the browser
# process, against the target of 2 s. Usage: bench/bench_trace_page.sh [BUILD]
set -e
BUILD=${1:-build}
LODE=$(cd "$BUILD" && pwd)/lode
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROMIUM" ] || { echo "bench_trace_page: chromium not installed, skipped"; exit 0; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cat > "$T/p.lua" <<'LUA'
local lode = require("lode")
local work = lode.step("work_step", function(path) return #path end)
local child = lode.workflow("process_file_workflow", function(path) return work(path) end)
local q = lode.queue("files", { concurrency = 4 })
return lode.workflow("bench_workflow", function(n)
  local hs = {}
  for i = 1, tonumber(n) do hs[i] = q:enqueue(child, string.format("/data/f%05d.md", i)) end
  for i = 1, #hs do hs[i]:result() end
  return #hs
end)
LUA
cd "$T"
LODE_DB="$T/s.db" "$LODE" run p.lua 5000 >/dev/null 2>&1
LODE_DB="$T/s.db" "$LODE" trace --html "$T/page.html" >/dev/null
start=$(date +%s%N)
"$CHROMIUM" --headless --no-sandbox --disable-gpu --proxy-server=127.0.0.1:9 --dump-dom \
  "file://$T/page.html" > "$T/dom.html" 2>/dev/null
end=$(date +%s%N)
render=$(grep -o 'data-render-ms="[0-9.]*"' "$T/dom.html" | grep -o '[0-9.]*')
size=$(($(stat -c %s "$T/page.html") / 1024))
echo "trace page, 10,000 spans ($size KB): render ${render} ms in the page, chromium load+exit $(((end - start) / 1000000)) ms (target < 2000 ms)"
