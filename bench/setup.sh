#!/usr/bin/env bash
# Installs everything the benchmark needs, idempotently, under $MLV_BENCH_HOME
# (default bench/.cache, git-ignored):
#   - venv-dvc:  DVC 3.x with its S3 plugin (pinned)
#   - venv-moto: the moto S3 server (pinned)
#   - s3s-fs 0.14.1 with ../shared/s3s-fs-0.14.1-bench.patch applied (TCP_NODELAY, prefix probes)
#   - rclone and b3sum (Debian packages) if missing
#   - mlv itself: `cargo build --release` at the repository root
# Prints nothing on stdout but `export` lines the caller may eval.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HOME_DIR=${MLV_BENCH_HOME:-$ROOT/bench/.cache}
mkdir -p "$HOME_DIR"
HOME_DIR=$(cd "$HOME_DIR" && pwd)
log() { echo "[setup] $*" >&2; }

DVC_VERSION=${DVC_VERSION:-3.67.1}
DVC_S3_VERSION=${DVC_S3_VERSION:-3.3.0}
MOTO_VERSION=${MOTO_VERSION:-5.2.5}
S3S_FS_VERSION=0.14.1
PY=${PYTHON:-python3}

# --- Debian packages -------------------------------------------------------------------------
need_apt=()
command -v rclone >/dev/null 2>&1 || need_apt+=(rclone)
command -v b3sum >/dev/null 2>&1 || need_apt+=(b3sum)
[ -x /usr/bin/time ] || need_apt+=(time)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >&2
fi

# --- DVC -----------------------------------------------------------------------------------------
DVC_VENV=$HOME_DIR/venv-dvc
stamp=$DVC_VENV/.installed-$DVC_VERSION-$DVC_S3_VERSION
if [ ! -f "$stamp" ]; then
  log "installing dvc==$DVC_VERSION dvc-s3==$DVC_S3_VERSION into $DVC_VENV"
  rm -rf "$DVC_VENV"
  "$PY" -m venv "$DVC_VENV"
  "$DVC_VENV/bin/pip" install -q --disable-pip-version-check \
    "dvc[s3]==$DVC_VERSION" "dvc-s3==$DVC_S3_VERSION" >&2
  touch "$stamp"
fi

# The S3 servers are skipped when a benchmark needs none (MLV_BENCH_NO_S3=1: bench/run-pipeline.sh);
# moto alone when it needs s3s-fs only (MLV_BENCH_NO_MOTO=1: bench/run-format2.sh).
NO_S3=${MLV_BENCH_NO_S3:-}
NO_MOTO=${MLV_BENCH_NO_MOTO:-$NO_S3}

# --- moto --------------------------------------------------------------------------------------
MOTO_VENV=$HOME_DIR/venv-moto
stamp=$MOTO_VENV/.installed-$MOTO_VERSION
if [ -z "$NO_MOTO" ] && [ ! -f "$stamp" ]; then
  log "installing moto[s3]==$MOTO_VERSION into $MOTO_VENV"
  rm -rf "$MOTO_VENV"
  "$PY" -m venv "$MOTO_VENV"
  "$MOTO_VENV/bin/pip" install -q --disable-pip-version-check \
    "moto[s3]==$MOTO_VERSION" flask flask-cors >&2
  touch "$stamp"
fi

# --- s3s-fs 0.14.1, patched ----------------------------------------------------------------------
S3S_ROOT=$HOME_DIR/s3s-fs
PATCH=${S3S_PATCH:-$ROOT/../shared/s3s-fs-0.14.1-bench.patch}
[ -f "$PATCH" ] || PATCH=$ROOT/bench/s3s-fs-0.14.1-bench.patch
if [ -z "$NO_S3" ] && [ ! -x "$S3S_ROOT/bin/s3s-fs" ]; then
  log "building s3s-fs $S3S_FS_VERSION (patched) into $S3S_ROOT (a few minutes)"
  # (outside the repository: cargo would take the throwaway projects for members of its workspace)
  work=$(mktemp -d "${TMPDIR:-/tmp}/mlv-s3s-fs-build.XXXXXX")
  rm -rf "$work"; mkdir -p "$work/fetch/src"
  # Fetch the crate source through an ordinary cargo dependency, then unpack the .crate file.
  cat > "$work/fetch/Cargo.toml" <<TOML
[package]
name = "s3s-fs-fetch"
version = "0.0.0"
edition = "2021"
[dependencies]
s3s-fs = "=$S3S_FS_VERSION"
TOML
  echo "fn main() {}" > "$work/fetch/src/main.rs"
  (cd "$work/fetch" && cargo fetch -q >&2)
  crate=$(find "${CARGO_HOME:-$HOME/.cargo}/registry/cache" -name "s3s-fs-$S3S_FS_VERSION.crate" | head -1)
  [ -n "$crate" ] || { echo "s3s-fs-$S3S_FS_VERSION.crate not found after cargo fetch" >&2; exit 1; }
  tar -xzf "$crate" -C "$work"
  (cd "$work/s3s-fs-$S3S_FS_VERSION" && patch -p1 < "$PATCH" >&2)
  # --locked: the crate's own Cargo.lock (later versions of its dependencies need a newer rustc).
  cargo install -q --locked --features binary --path "$work/s3s-fs-$S3S_FS_VERSION" \
    --root "$S3S_ROOT" --target-dir "$work/target" >&2
  rm -rf "$work"
fi

# --- mlv -----------------------------------------------------------------------------------------
if [ -z "${MLV_BIN:-}" ]; then
  log "cargo build --release (mlv)"
  (cd "$ROOT" && cargo build --release --locked -q >&2)
  MLV_BIN=$ROOT/target/release/mlv
fi

echo "export DVC_BIN=$DVC_VENV/bin/dvc"
echo "export MOTO_SERVER_BIN=$MOTO_VENV/bin/moto_server"
echo "export S3S_FS_BIN=$S3S_ROOT/bin/s3s-fs"
echo "export MLV_BIN=$MLV_BIN"
