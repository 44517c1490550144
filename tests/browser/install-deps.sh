#!/usr/bin/env bash
# Install what tests/browser needs: Debian's Chromium and Playwright for Python.
#
#   bash tests/browser/install-deps.sh [PYTHON]
#
# PYTHON is the interpreter (or a venv folder) to install Playwright into; default: the current python3.
# Idempotent: each step is skipped when its result is already there, so a second run takes about a second.
# Never downloads a browser build of its own (no `playwright install`): Playwright drives /usr/bin/chromium.
set -euo pipefail

target="${1:-python3}"
if [[ -d "$target" ]]; then
    target="$target/bin/python"
fi
if ! command -v "$target" >/dev/null 2>&1; then
    echo "install-deps: no python at '$target'" >&2
    exit 1
fi

if [[ -x /usr/bin/chromium ]]; then
    echo "install-deps: chromium already installed: $(/usr/bin/chromium --version 2>/dev/null || echo '?')"
else
    sudo_cmd=()
    if [[ "$(id -u)" -ne 0 ]]; then
        sudo_cmd=(sudo)
    fi
    echo "install-deps: installing Debian's chromium"
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
    echo "install-deps: $(/usr/bin/chromium --version 2>/dev/null || echo 'chromium installed')"
fi

if "$target" -c "import playwright.sync_api" >/dev/null 2>&1; then
    echo "install-deps: playwright already installed in $target"
else
    echo "install-deps: pip install playwright into $target"
    "$target" -m pip install --quiet --disable-pip-version-check playwright
fi
