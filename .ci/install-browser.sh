#!/usr/bin/env bash
# Installs Debian's chromium for the audit page's headless browser test (tests/it/cli_report.rs),
# only when it is missing and we are root with apt-get; idempotent and quiet. Elsewhere the test
# skips (or fails when CI is set) and says how to install it.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
    echo "install-browser: chromium is missing; install it (apt-get install chromium) to run the browser test" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; }
echo "install-browser: installed $(chromium --version 2>/dev/null || echo chromium)"
