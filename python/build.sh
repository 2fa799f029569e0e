#!/usr/bin/env bash
# Builds the Python wheel (package `mlv`: the native module mlv._mlv, the pure-Python API, and
# the `mlv` binary that pip puts on PATH) into a directory.
#
#   python/build.sh OUT_DIR                    # release build of the extension
#   MLV_WHEEL_PROFILE=dev python/build.sh OUT  # a dev build (CI: faster; deps are optimized anyway)
#   MLV_BIN=/path/to/mlv python/build.sh OUT   # ship that binary instead of building one
#
# Needs maturin (1.16) on PATH, or MATURIN=/path/to/maturin. Without MLV_BIN the binary is
# built with `cargo build --release --bin mlv` (what install.sh builds).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
out=${1:-}
[ -n "$out" ] || { echo "usage: python/build.sh OUT_DIR" >&2; exit 2; }
mkdir -p "$out"
out=$(cd "$out" && pwd)
maturin=${MATURIN:-maturin}
command -v "$maturin" >/dev/null 2>&1 || { echo "python/build.sh: maturin not found (pip install maturin==1.16.0, or set MATURIN)" >&2; exit 1; }

bin=${MLV_BIN:-}
if [ -z "$bin" ]; then
  echo "python/build.sh: building the mlv binary (release)" >&2
  cargo build --release --locked --manifest-path "$root/Cargo.toml" --bin mlv
  target_dir=$(cargo metadata --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  bin="$target_dir/release/mlv"
fi
[ -x "$bin" ] || { echo "python/build.sh: $bin is not an executable" >&2; exit 1; }

# The wheel's <name>.data/scripts/ directory is installed into the environment's bin/ by pip.
scripts="$here/mlv.data/scripts"
rm -rf "$here/mlv.data"
mkdir -p "$scripts"
cp "$bin" "$scripts/mlv"
chmod 755 "$scripts/mlv"
trap 'rm -rf "$here/mlv.data"' EXIT

cd "$here"
"$maturin" build --locked --profile "${MLV_WHEEL_PROFILE:-release}" --out "$out" --compatibility linux --strip ${MATURIN_ARGS:-}
