#!/usr/bin/env bash
# Text kernels on real documents (issue 16), each shape of bench/corpora.sh
# (generated prose is one shape among them), one core:
#   split    lode.text.split from Lua (bench/text_shapes.lua: chunks returned
#            as Lua tables and strings, as a pipeline gets them) against
#            LangChain's JS RecursiveCharacterTextSplitter with a code-point
#            length function, at 1000/200 and 300/0, checked chunk for chunk
#            (both sides write their chunk texts; cmp); the C kernel alone
#            (bench_text_split) in MB/s
#   normalize, hash embed   lode.text.normalize, the 384-dim hash embedder on
#            the text's 1000/200 chunks, from Lua, MB/s
# Each side is the best of a few passes; the figure is the median of ROUNDS
# rounds (default 3), a round measuring every side back to back. Targets: Lua
# split >= 25x LangChain at 1000/200 and >= 10x at 300/0 on every real shape;
# the C kernel >= 1 GB/s on the manual's text. The peer is installed from npm
# into bench/.work (not a test dependency).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${LODE_BUILD:-$here/../build}
lode=${LODE_BIN:-$build/lode}
work=$here/.work
mkdir -p "$work"
bin=$build/bench_text_split
[ -x "$bin" ] || { echo "bench_text: $bin missing (build first)"; exit 1; }
# shellcheck source=corpora.sh
source "$here/corpora.sh"
corpora_make "$lode" >/dev/null 2>&1
if [ ! -d "$work/node_modules/@langchain/textsplitters" ]; then
  (cd "$work" && { [ -f package.json ] || echo '{"name":"lode-bench","private":true}' > package.json; } &&
     npm install --no-audit --no-fund @langchain/textsplitters@1 @langchain/core >/dev/null 2>&1) ||
    { echo "bench_text: npm install of @langchain/textsplitters failed: no reference"; exit 1; }
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pin() { taskset -c "${BENCH_CPU:-0}" "$@" 2>/dev/null || "$@"; }
lua_run() { OPIK_TRACK_DISABLE=true LODE_DB="$tmp/db" pin "$lode" run "$here/text_shapes.lua" "$@" 2>/dev/null; }
kv() { tr ' ' '\n' | sed -n "s/^$1=//p"; } # value of key $1 in a key=value line
med() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
rounds=${ROUNDS:-3}
status=0
printf '%-9s %8s %9s  %-9s %9s %9s %9s %7s  %s\n' shape MB "size/ov" "" "C MB/s" "Lua MB/s" "LC MB/s" "Lua/LC" "chunks"
for shape in $SHAPES; do
  name=${shape%%:*} file=${shape#*:}
  bytes=$(stat -c %s "$file")
  for cfg in 1000/200 300/0; do
    size=${cfg%/*} ov=${cfg#*/}
    : >"$tmp/r"
    for _ in $(seq "$rounds"); do
      read -r _ cn _ cmbs < <(pin "$bin" "$file" "$size" "$ov" 10)
      line=$(lua_run split "$file" "$size" "$ov" 10 "$tmp/lode.chunks")
      lsec=$(echo "$line" | kv sec) ln=$(echo "$line" | kv chunks)
      read -r _ jn jsec _ < <(NODE_PATH="$work/node_modules" pin node "$here/bench_text_split.cjs" \
                              "$file" "$size" "$ov" 3 codepoints "$tmp/js.chunks")
      same=no
      [ "$cn" = "$ln" ] && [ "$ln" = "$jn" ] && cmp -s "$tmp/lode.chunks" "$tmp/js.chunks" && same=yes
      echo "$cmbs $lsec $jsec $same $ln" >>"$tmp/r"
    done
    c=$(awk '{print $1}' "$tmp/r" | med) l=$(awk '{print $2}' "$tmp/r" | med) j=$(awk '{print $3}' "$tmp/r" | med)
    same=$(awk '$4 != "yes" {bad = 1} END {print bad ? "DIFFER" : "identical"}' "$tmp/r")
    n=$(awk 'END {print $5}' "$tmp/r")
    [ "$same" = identical ] || status=1
    ratio=$(awk -v l="$l" -v j="$j" 'BEGIN {printf "%.1f", j / l}')
    target=25; [ "$cfg" = 300/0 ] && target=10
    verdict=met; awk -v r="$ratio" -v t="$target" 'BEGIN {exit !(r < t)}' && verdict="NOT MET"
    [ "$name" = prose ] && verdict="(generated)"
    printf '%-9s %8.2f %9s  %-9s %9.0f %9.0f %9.1f %6.1fx  %s %s; >= %dx: %s\n' "$name" \
      "$(echo "$bytes / 1000000" | bc -l)" "$cfg" split "$c" "$(echo "$bytes / $l / 1000000" | bc -l)" \
      "$(echo "$bytes / $j / 1000000" | bc -l)" "$ratio" "$n" "$same" "$target" "$verdict"
    if [ "$name" = manual ] && [ "$cfg" = 1000/200 ]; then
      printf '%-9s C kernel >= 1000 MB/s: %s\n' "" "$(awk -v c="$c" 'BEGIN {print (c >= 1000) ? "met" : "NOT MET"}')"
    fi
  done
  : >"$tmp/k"
  for _ in $(seq "$rounds"); do
    line=$(lua_run kernels "$file" 3)
    echo "$(echo "$line" | kv normalize_mbs) $(echo "$line" | kv embed_mbs)" >>"$tmp/k"
  done
  printf '%-9s %8s %9s  %-9s normalize %.0f MB/s, hash embed %.0f MB/s (from Lua)\n' "$name" "" "" "" \
    "$(awk '{print $1}' "$tmp/k" | med)" "$(awk '{print $2}' "$tmp/k" | med)"
done
echo "(C: bench_text_split alone; Lua: lode.text.split from Lua, tables built; LC: LangChain JS, code-point length;"
echo " medians of $rounds rounds, each side best of its passes; 'identical': every chunk cmp-equal on both sides)"
exit $status
