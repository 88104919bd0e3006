#!/usr/bin/env bash
# Real-document corpora for the benchmarks (issue 16), built once into
# bench/.work/shapes/ (git ignores bench/.work) from Debian documentation
# packages; nothing here is committed. Source it, then call `corpora_make
# LODE_BIN`; it sets:
#   MANUAL_HTML   folder of a manual's HTML pages (postgresql-doc-15: ~1,170
#                 pages of 5-30 KB; installed with apt-get when missing)
#   SHAPES        "name:file ..." the texts the kernels are measured on:
#     prose     generated English-like prose (the old benchmark text)
#     manual    the manual's pages as lode.fs.load + normalize give them
#               (short lines, many blank-line breaks)
#     plain     plain text with short lines: /usr/share/doc/*/copyright
#     markdown  the README*.md files under /usr/share/doc and node's global
#               modules
#     pdf       the text of the PDFs under /usr/share/doc
corpora_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
corpora_make() {
  local lode=$1 dir=$corpora_here/.work/shapes
  mkdir -p "$dir"
  MANUAL_HTML=/usr/share/doc/postgresql-doc-15/html
  if [ ! -d "$MANUAL_HTML" ]; then
    apt-get install -y --no-install-recommends postgresql-doc-15 >/dev/null 2>&1 ||
      echo "corpora: apt-get install postgresql-doc-15 failed: the manual shape is missing" >&2
  fi
  local db; db=$(mktemp -d)
  mk() { # name files...
    local name=$1; shift
    [ -s "$dir/$name.txt" ] && return 0
    [ $# -gt 0 ] || return 0
    printf '%s\n' "$@" >"$db/list"
    OPIK_TRACK_DISABLE=true LODE_DB="$db/db" "$lode" run "$corpora_here/text_shapes.lua" \
      make "$dir/$name.txt" "$db/list" >/dev/null
  }
  if [ ! -s "$dir/prose.txt" ]; then
    python3 - "$dir/prose.txt" <<'PY'
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
  [ -d "$MANUAL_HTML" ] && mapfile -t f < <(find "$MANUAL_HTML" -name '*.html' | sort) && mk manual "${f[@]}"
  mapfile -t f < <(find /usr/share/doc -name copyright -type f | sort); mk plain "${f[@]}"
  mapfile -t f < <(find /usr/share/doc /usr/lib/node_modules /usr/local/lib/node_modules -iname "README*.md" -type f 2>/dev/null | sort); mk markdown "${f[@]}"
  mapfile -t f < <(find /usr/share/doc -name '*.pdf' -type f | sort); mk pdf "${f[@]}"
  rm -rf "$db"
  SHAPES=""
  for s in prose manual plain markdown pdf; do
    [ -s "$dir/$s.txt" ] && SHAPES="$SHAPES $s:$dir/$s.txt"
  done
}
