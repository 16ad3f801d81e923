#!/usr/bin/env bash
# What the test suite needs beyond pip (idempotent, quick when done): a headless chromium for the page tests
# and visdom's JavaScript/CSS for the offline dashboard. Never fails because chromium cannot be installed:
# the browser tests then skip and say why.
# Usage: bash scripts/setup_test_env.sh [PYTHON]     (PYTHON: the environment's python, default .venv/bin/python)
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${1:-.venv/bin/python}

find_chromium() {
    local name
    for name in chromium chromium-browser google-chrome google-chrome-stable; do
        command -v "$name" >/dev/null 2>&1 && return 0
    done
    return 1
}

install_chromium() {
    if find_chromium; then
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "note: chromium not found and apt-get is unavailable; install chromium (or Chrome) yourself," \
             "or the browser tests will skip"
        return 0
    fi
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            echo "note: chromium not found and installing it needs root (apt-get install chromium);" \
                 "the browser tests will skip"
            return 0
        fi
    fi
    local log
    log=$(mktemp)
    echo "installing chromium with apt (once) ..."
    if "${sudo[@]}" apt-get update >"$log" 2>&1 \
        && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y chromium >>"$log" 2>&1; then
        echo "chromium installed: $(command -v chromium)"
    else
        echo "note: could not install chromium with apt; the browser tests will skip. apt said:"
        tail -n 5 "$log" | sed 's/^/    /'
    fi
    rm -f "$log"
    return 0
}

install_chromium

if [ ! -x "$PYTHON" ]; then
    echo "error: $PYTHON is not an executable python; run scripts/setup_env.sh first or pass the python to use" >&2
    exit 2
fi
# Offline visdom dashboard: fetches the assets with npm once; later runs only check.
if ! "$PYTHON" scripts/prepare_visdom_assets.py; then
    echo "note: visdom assets not prepared; the offline dashboard test will skip (the visdom API tests still run)"
fi
exit 0
