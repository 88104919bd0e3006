#!/usr/bin/env bash
# Executor figures (issue: the lode host): per-step overhead against raw
# SQLite inserts in the same sync mode, and replay rate.
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$LODE_BUILD/bench_executor" "$work" "${RUNS:-1000}"
