#!/usr/bin/env bash
# make demo: ingests this repository's docs/ with the built-in defaults (hash
# embedder, SQLite state under .lode/), prints the run's trace tree and
# answers one sample query. No network needed; traces also go to Opik when
# Opik is configured (OPIK_URL_OVERRIDE or ~/.opik.config).
#
#   scripts/demo.sh [BUILD/lode] ["QUESTION"]
set -euo pipefail

LODE=${1:-build/lode}
QUESTION=${2:-how do I resume a crashed workflow?}
case "$LODE" in /*) ;; *) LODE="$PWD/$LODE" ;; esac
if [ ! -x "$LODE" ]; then
  echo "demo: $LODE is not an executable; build it first (make build)" >&2
  exit 2
fi

# Paths below are relative to the repository root, wherever we are called from.
cd "$(dirname "$0")/.."
mkdir -p .lode
export LODE_DB=.lode/lode.db
STORE=.lode/store.db

heading() { printf '\n==== %s ====\n' "$1"; }

heading "1. ingest docs/ into $STORE"
# A fresh id per run: re-running the demo ingests again (unchanged files are
# skipped), while a crashed run could be resumed with the same --id.
ID="demo-ingest-$(date +%Y%m%d-%H%M%S)-$$"
"$LODE" run --id "$ID" pipelines/ingest_folder.lua docs --store "$STORE"

heading "2. the trace of that run (lode trace $ID)"
"$LODE" trace "$ID"

heading "3. query: $QUESTION"
"$LODE" run pipelines/query.lua "$QUESTION" 3 --store "$STORE" >/dev/null

heading "done"
echo "state: $LODE_DB   store: $STORE"
echo "try:   LODE_DB=$LODE_DB $LODE run pipelines/query.lua \"your question\" --store $STORE"
echo "       LODE_DB=$LODE_DB $LODE workflow list"
