#!/usr/bin/env bash
# mlv vs DVC benchmark: one entry point.
#
#   bench/run.sh [--quick] [--datasets many,mixed,large,huge-count] [--passes N]
#                [--tools dvc,mlv] [--s3 s3s-fs,moto] [--out DIR] [other bench.py options]
#
# Installs (idempotently, under $MLV_BENCH_HOME, default bench/.cache) DVC 3.67.1 with dvc-s3,
# moto, s3s-fs 0.14.1 with the bench patch, rclone and b3sum; builds mlv (release); then runs
# bench/bench.py, which prints the Markdown table and writes results.md/results.json in --out.
# Exit code 0 when every step ran (and pulled/checked-out data matched); times are never asserted.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export MLV_BENCH_HOME=${MLV_BENCH_HOME:-$ROOT/bench/.cache}
for a in "$@"; do
  case $a in -h|--help) exec python3 "$ROOT/bench/bench.py" --help ;; esac
done
eval "$(bash "$ROOT/bench/setup.sh")"
exec python3 "$ROOT/bench/bench.py" "$@"
