#!/usr/bin/env bash
# Installs the storage emulators the remote tests run against, pinned, idempotently:
#   .ci/venv  python venv with moto (S3)           -> .ci/venv/bin/moto_server
#   .ci/node  node_modules with Azurite (Azure)    -> .ci/node/node_modules/azurite
# The GCS fake (tests/support/gcs_fake.py) needs only python3's standard library.
# Re-running is cheap: each part is skipped when the pinned version is already there.
set -euo pipefail

MOTO_VERSION=5.2.5
AZURITE_VERSION=3.35.0

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.ci/venv"
node_dir="$root/.ci/node"

need() {
    command -v "$1" >/dev/null 2>&1 || { echo "install-emulators: '$1' is required but not on PATH" >&2; exit 1; }
}

# --- moto (S3) ---
need python3
if [ -x "$venv/bin/moto_server" ] && "$venv/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
    echo "install-emulators: moto $MOTO_VERSION already installed"
else
    echo "install-emulators: installing moto $MOTO_VERSION into $venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "moto[s3]==$MOTO_VERSION" flask flask-cors
fi

# --- Azurite (Azure Blob) ---
need node
need npm
installed_azurite="$(node -p "require('$node_dir/node_modules/azurite/package.json').version" 2>/dev/null || true)"
if [ "$installed_azurite" = "$AZURITE_VERSION" ]; then
    echo "install-emulators: azurite $AZURITE_VERSION already installed"
else
    echo "install-emulators: installing azurite $AZURITE_VERSION into $node_dir"
    mkdir -p "$node_dir"
    [ -f "$node_dir/package.json" ] || echo '{"name":"mlv-ci-emulators","private":true}' >"$node_dir/package.json"
    npm install --prefix "$node_dir" --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION"
fi

echo "install-emulators: done"
