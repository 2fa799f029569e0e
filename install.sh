#!/usr/bin/env bash
# Build mlv from source and install it into a directory on PATH.
#
#   ./install.sh                   # into ~/.cargo/bin if it exists, else ~/.local/bin
#   ./install.sh --prefix DIR      # into DIR/bin, as `make install PREFIX=DIR` or `cargo install --root DIR`
#   MLV_INSTALL_DIR=DIR ./install.sh   # into DIR itself
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
dest=${MLV_INSTALL_DIR:-}
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=${2:-}; [ -n "$prefix" ] || { echo "install.sh: --prefix needs a directory" >&2; exit 2; }
      dest=${prefix%/}/bin; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; [ -n "$prefix" ] || { echo "install.sh: --prefix needs a directory" >&2; exit 2; }
      dest=${prefix%/}/bin; shift ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
if [ -z "$dest" ]; then
  if [ -d "$HOME/.cargo/bin" ]; then dest="$HOME/.cargo/bin"; else dest="$HOME/.local/bin"; fi
fi

if ! command -v cargo >/dev/null 2>&1; then
  for c in "$HOME/.cargo/bin/cargo"; do [ -x "$c" ] && export PATH="$(dirname "$c"):$PATH"; done
fi
command -v cargo >/dev/null 2>&1 || { echo "install.sh: cargo not found; install Rust with rustup first" >&2; exit 1; }

echo "building mlv (release)..." >&2
cargo build --release --locked --manifest-path "$here/Cargo.toml" --bin mlv
target_dir=$(cargo metadata --format-version 1 --no-deps --manifest-path "$here/Cargo.toml" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])' 2>/dev/null || echo "$here/target")

mkdir -p "$dest"
tmp="$dest/.mlv.install.$$"
cp "$target_dir/release/mlv" "$tmp"
# Compress the line tables (see [profile.release] in Cargo.toml): about 77 MB down to 33 MB, and
# a panic's backtrace still shows file:line. Without objcopy the binary is installed as built.
if command -v objcopy >/dev/null 2>&1 && objcopy --compress-debug-sections=zlib "$tmp" "$tmp.z" 2>/dev/null; then
  mv -f "$tmp.z" "$tmp"
else
  rm -f "$tmp.z"
fi
chmod 755 "$tmp"
mv -f "$tmp" "$dest/mlv"
echo "installed $("$dest/mlv" --version) to $dest/mlv" >&2
case ":$PATH:" in
  *":$dest:"*) ;;
  *) echo "note: $dest is not on your PATH; add it, e.g. export PATH=\"$dest:\$PATH\"" >&2 ;;
esac
