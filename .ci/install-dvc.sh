#!/usr/bin/env bash
# Installs DVC (iterative/dvc), pinned, idempotently, into ONE venv .ci/dvc-venv. It serves two
# sets of tests: `mlv import-dvc` (tests/it/cli_import_dvc.rs) builds its repositories with the
# real `dvc` CLI (with dvc-s3, for its S3 remote on moto), and the registry tests (tests/it/cli_model_gto.rs) run the `gto` that DVC
# 3.67.1 depends on (1.10.1, asserted here). Skipped when the pinned versions are there.
set -euo pipefail

DVC_VERSION=3.67.1
GTO_VERSION=1.10.1

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.ci/dvc-venv"
command -v python3 >/dev/null 2>&1 || { echo "install-dvc: python3 is required" >&2; exit 1; }
pinned() {
  [ -x "$venv/bin/dvc" ] && [ -x "$venv/bin/gto" ] && "$venv/bin/python" -c "
import importlib.metadata as m, sys
sys.exit(m.version('dvc') != '$DVC_VERSION' or m.version('gto') != '$GTO_VERSION' or not m.version('dvc-s3'))" 2>/dev/null
}
if pinned; then
  echo "install-dvc: dvc $DVC_VERSION (gto $GTO_VERSION) already installed"
else
  echo "install-dvc: installing dvc $DVC_VERSION into $venv"
  start=$(date +%s)
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "dvc[s3]==$DVC_VERSION"
  pinned || { echo "install-dvc: expected dvc $DVC_VERSION with gto $GTO_VERSION, got: $("$venv/bin/python" -m pip list 2>/dev/null | grep -Ei '^(dvc|gto) ')" >&2; exit 1; }
  echo "install-dvc: took $(( $(date +%s) - start ))s"
fi
