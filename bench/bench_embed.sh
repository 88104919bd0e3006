#!/usr/bin/env bash
# Embedder throughput: hash embedder MB/s on one core vs XXH3 and a plain
# word scan over the same bytes; model2vec texts/s on the fixture models.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${LODE_BUILD:-$here/../build}
exec taskset -c 0 "$build/bench_embed" "$here/.." "${EMBED_BENCH_MB:-32}"
