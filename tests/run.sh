#!/usr/bin/env bash
# Runs the whole test suite: installs the storage emulators the remote tests use (pinned
# versions, into .ci/; idempotent), then every unit and end-to-end test.
set -euo pipefail
cd "$(dirname "$0")/.."
# The signed-lineage tests sign and verify with the real ssh-keygen (Debian's openssh-client).
if ! command -v ssh-keygen >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  apt-get install -y -qq openssh-client >/dev/null || { apt-get update -qq && apt-get install -y -qq openssh-client >/dev/null; }
fi
if [ -f .ci/install-emulators.sh ]; then
  bash .ci/install-emulators.sh
fi
# The import-dvc tests run DVC's own CLI and the registry tests the GTO it brings (pinned, into
# one venv, .ci/dvc-venv).
bash .ci/install-dvc.sh
# The audit page's browser test drives Debian's chromium (installed when missing, as root).
bash .ci/install-browser.sh
# Never let object_store reach a cloud metadata service from a test.
export AWS_METADATA_ENDPOINT=${AWS_METADATA_ENDPOINT:-http://127.0.0.1:9}
export GCE_METADATA_HOST=${GCE_METADATA_HOST:-127.0.0.1:9}
export GCE_METADATA_IP=${GCE_METADATA_IP:-127.0.0.1:9}
export AZURE_MSI_ENDPOINT=${AZURE_MSI_ENDPOINT:-http://127.0.0.1:9}
exec cargo test --locked --all-targets --features failpoints "$@"
