#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests (tests/e2e/test_gateway_browser.py) when missing.
# Idempotent and quiet: does nothing when chromium is already there; needs root (or sudo) and apt-get.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_browser: apt-get not found; install Chromium yourself (the browser tests will skip)" >&2
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "install_browser: not root and no sudo; install the 'chromium' package (the browser tests will skip)" >&2
        exit 0
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq chromium >/dev/null
echo "install_browser: installed $(chromium --version 2>/dev/null || echo chromium)"
