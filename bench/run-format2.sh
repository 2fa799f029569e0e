#!/usr/bin/env bash
# Issue 16's targets: remote format 2 (packs, index, chunks) beside format 1, DVC and rclone,
# with bytes moved and request counts (a counting proxy in front of s3s-fs, in a separate pass:
# times are measured without it):
#
#   bench/run-format2.sh [--quick] [--scenarios edits,many,local,rss,huge] [--huge]
#                        [--huge-files N] [--passes N] [--edit-mib N] [--out DIR]
#
# Installs the tools like bench/run.sh (bench/setup.sh; s3s-fs, no moto), then runs
# bench/format2.py. Exit code 0 when every scenario ran and every pulled tree matched; figures
# are compared with the targets in results.md, never asserted.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export MLV_BENCH_HOME=${MLV_BENCH_HOME:-$ROOT/bench/.cache}
for a in "$@"; do
  case $a in -h|--help) exec python3 "$ROOT/bench/format2.py" --help ;; esac
done
eval "$(MLV_BENCH_NO_MOTO=1 bash "$ROOT/bench/setup.sh")"
exec python3 "$ROOT/bench/format2.py" "$@"
