#!/usr/bin/env bash
# Installs GTO (iterative/gto), pinned, idempotently, into .ci/gto-venv: the registry tests
# (tests/it/cli_model_gto.rs) run the real `gto` CLI against registries mlv writes and reads.
# 1.10.1 is the version DVC 3.67.1 depends on. Skipped when the pinned version is there.
set -euo pipefail

GTO_VERSION=1.10.1

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.ci/gto-venv"
command -v python3 >/dev/null 2>&1 || { echo "install-gto: python3 is required" >&2; exit 1; }
if [ -x "$venv/bin/gto" ] && "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('gto') != '$GTO_VERSION')" 2>/dev/null; then
  echo "install-gto: gto $GTO_VERSION already installed"
else
  echo "install-gto: installing gto $GTO_VERSION into $venv"
  start=$(date +%s)
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "gto==$GTO_VERSION"
  echo "install-gto: took $(( $(date +%s) - start ))s"
fi
