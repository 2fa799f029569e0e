#!/usr/bin/env bash
# Issue 14's benchmark targets (get vs pull vs dvc get, push -A over history; Python reads are
# bench/python_read.py):
#
#   bench/run-registry.sh [--quick] [--scenarios get,push-all] [--passes N] [--out DIR]
#
# Installs the tools like bench/run.sh (bench/setup.sh), then runs bench/registry.py.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export MLV_BENCH_HOME=${MLV_BENCH_HOME:-$ROOT/bench/.cache}
for a in "$@"; do
  case $a in -h|--help) exec python3 "$ROOT/bench/registry.py" --help ;; esac
done
eval "$(bash "$ROOT/bench/setup.sh")"
exec python3 "$ROOT/bench/registry.py" "$@"
