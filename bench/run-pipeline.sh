#!/usr/bin/env bash
# Issue 15's benchmark targets: a no-op repro against dvc repro and mlv status, and restoring a
# pipeline's outputs from the run cache against mlv checkout:
#
#   bench/run-pipeline.sh [--quick] [--scenarios noop,restore] [--passes N] [--out DIR]
#
# Installs the tools like bench/run.sh (bench/setup.sh), then runs bench/pipeline.py.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export MLV_BENCH_HOME=${MLV_BENCH_HOME:-$ROOT/bench/.cache}
for a in "$@"; do
  case $a in -h|--help) exec python3 "$ROOT/bench/pipeline.py" --help ;; esac
done
eval "$(MLV_BENCH_NO_S3=1 bash "$ROOT/bench/setup.sh")"
exec python3 "$ROOT/bench/pipeline.py" "$@"
