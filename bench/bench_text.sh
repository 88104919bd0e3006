#!/usr/bin/env bash
# Split throughput of lode.text (C kernel) against LangChain's JS
# RecursiveCharacterTextSplitter on the same ~4 MB of prose, size 1000 /
# overlap 200, one core, best of several passes. The peer is installed from
# npm into bench/.work (not a test dependency). Targets: >= 25x, >= 1 GB/s.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${LODE_BUILD:-$here/../build}
work=$here/.work
mkdir -p "$work"
bin=$build/bench_text_split
[ -x "$bin" ] || { echo "bench_text: $bin missing (build first)"; exit 1; }

prose=$work/prose.txt
if [ ! -s "$prose" ]; then
  python3 - "$prose" <<'PY'
import random, sys
random.seed(7)
words = ("the quick brown fox jumps over lazy dog pipeline durable chunk retrieval "
         "augmented generation vector store embedding workflow step trace span recovery "
         "checkpoint database sqlite query answer document folder").split()
out, n = [], 0
while n < 4_000_000:
    sents = []
    for _ in range(random.randint(2, 8)):
        w = [random.choice(words) for _ in range(random.randint(5, 20))]
        sents.append(" ".join(w).capitalize() + ".")
    para = " ".join(sents)
    out.append(para)
    n += len(para) + 2
open(sys.argv[1], "w").write("\n\n".join(out))
PY
fi

read -r bytes lchunks lsec lmbs < <(taskset -c 0 "$bin" "$prose" 1000 200 30 2>/dev/null ||
                                    "$bin" "$prose" 1000 200 30)
printf 'text: %d bytes of prose, size 1000 overlap 200\n' "$bytes"
printf '  lode.text split (C)                 %8.1f MB/s  (%d chunks, %.2f ms)\n' \
  "$lmbs" "$lchunks" "$(echo "$lsec * 1000" | bc -l)"

if [ ! -d "$work/node_modules/@langchain/textsplitters" ]; then
  (cd "$work" && { [ -f package.json ] || echo '{"name":"lode-bench","private":true}' > package.json; } &&
     npm install --no-audit --no-fund @langchain/textsplitters@1 @langchain/core >/dev/null 2>&1) ||
    { echo "  (npm install of @langchain/textsplitters failed: no ratio)"; exit 0; }
fi
status=0
for mode in codepoints utf16; do
  read -r _ jchunks jsec jmbs < <(NODE_PATH="$work/node_modules" \
    node "$here/bench_text_split.cjs" "$prose" 1000 200 5 "$mode")
  ratio=$(echo "$jsec / $lsec" | bc -l)
  label="LangChain JS (lengthFunction=$mode)"
  [ "$mode" = utf16 ] && label="LangChain JS (default .length)"
  printf '  %-36s %8.1f MB/s  (%d chunks)  lode is %.1fx faster\n' "$label" "$jmbs" "$jchunks" "$ratio"
  if [ "$mode" = codepoints ]; then
    [ "$jchunks" = "$lchunks" ] || { echo "  chunk counts differ: parity broken"; status=1; }
    cp_ratio=$ratio
  fi
done
ok() { [ "$(echo "$1" | bc -l)" = 1 ] && echo met || echo MISSED; }
printf '  targets: >= 25x vs LangChain (code points): %s; >= 1000 MB/s: %s\n' \
  "$(ok "$cp_ratio >= 25")" "$(ok "$lmbs >= 1000")"
exit $status
