#!/usr/bin/env bash
# Issue 18's benchmark targets: `mlv import-dvc` of `many` from DVC's cache against `mlv add` of
# the same tree (and with the workspace copy gone), and from a DVC local remote against
# `dvc pull`:
#
#   bench/run-import-dvc.sh [--quick] [--scenarios cache,remote] [--passes N] [--out DIR]
#
# Installs the tools like bench/run.sh (bench/setup.sh: DVC in bench/.cache/venv-dvc, mlv's
# release build), then runs bench/import_dvc.py. No S3 server is needed.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export MLV_BENCH_HOME=${MLV_BENCH_HOME:-$ROOT/bench/.cache}
for a in "$@"; do
  case $a in -h|--help) exec python3 "$ROOT/bench/import_dvc.py" --help ;; esac
done
eval "$(MLV_BENCH_NO_S3=1 bash "$ROOT/bench/setup.sh")"
exec python3 "$ROOT/bench/import_dvc.py" "$@"
