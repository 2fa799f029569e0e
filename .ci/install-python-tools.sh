#!/usr/bin/env bash
# Installs the Python package's build and test tools, pinned, idempotently, into .ci/pytools
# (a venv): maturin (builds the wheel) and pytest (runs python/tests). Skipped when the pinned
# versions are there already.
set -euo pipefail

MATURIN_VERSION=1.16.0
PYTEST_VERSION=8.3.5

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.ci/pytools"
command -v python3 >/dev/null 2>&1 || { echo "install-python-tools: python3 is required" >&2; exit 1; }
if [ -x "$venv/bin/maturin" ] && [ "$("$venv/bin/maturin" --version 2>/dev/null)" = "maturin $MATURIN_VERSION" ] \
  && "$venv/bin/python" -c "import pytest, sys; sys.exit(pytest.__version__ != '$PYTEST_VERSION')" 2>/dev/null; then
  echo "install-python-tools: maturin $MATURIN_VERSION and pytest $PYTEST_VERSION already installed"
else
  echo "install-python-tools: installing maturin $MATURIN_VERSION and pytest $PYTEST_VERSION into $venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "maturin==$MATURIN_VERSION" "pytest==$PYTEST_VERSION"
fi
