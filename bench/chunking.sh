#!/usr/bin/env bash
# Remote format 2 chunking figures (issue 16): chunking + blake3 MB/s on one core over a 1 GiB
# file, and the bytes of new chunks after the issue's edit cases. Prints a Markdown table.
#
#   bench/chunking.sh [SIZE_MIB] [DIR]     (default 1024 MiB in a temporary directory)
#
# Needs ~3 GiB of memory and SIZE_MIB of free disk in DIR. Figures are printed, never asserted.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
cargo build --quiet --release --example format2_chunking
exec "$ROOT/target/release/examples/format2_chunking" "$@"
