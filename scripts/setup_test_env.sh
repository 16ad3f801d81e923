#!/usr/bin/env bash
# What the test suite needs beyond pip (idempotent, quick when done): a headless chromium for the page tests
# and visdom's JavaScript/CSS for the offline dashboard.
# Locally it never fails because of them: the tests that need them then skip and say why.
# Under CI (CI=true) it exits 1 when chromium cannot be installed or the visdom assets cannot be prepared,
# since those tests would fail there anyway (a CI run must not pass with them skipped).
# Usage: bash scripts/setup_test_env.sh [PYTHON]     (PYTHON: the environment's python, default .venv/bin/python)
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${1:-.venv/bin/python}
CI_RUN=false
case "${CI:-}" in true | TRUE | True) CI_RUN=true ;; esac
problems=()

# A missing component: a note locally (its tests skip), a problem that fails the script under CI.
missing() {
    if [ "$CI_RUN" = true ]; then
        problems+=("$1")
        echo "error: $1" >&2
    else
        echo "note: $1; the tests that need it will skip"
    fi
}

find_chromium() {
    local name
    if [ -n "${CHROMIUM:-}" ] && command -v "$CHROMIUM" >/dev/null 2>&1; then
        return 0
    fi
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
        missing "chromium not found and apt-get is unavailable; install chromium (or Chrome) yourself, or set \$CHROMIUM to its path"
        return 0
    fi
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            missing "chromium not found and installing it needs root (apt-get install chromium)"
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
        missing "could not install chromium with apt (apt-get install -y chromium; its last lines follow)"
        tail -n 5 "$log" | sed 's/^/    apt: /' >&2
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
    missing "visdom assets not prepared (\`$PYTHON scripts/prepare_visdom_assets.py\` failed, see above; it needs npm and the npm registry or a mirror, or --from-dir)"
fi

if [ ${#problems[@]} -gt 0 ]; then
    echo "error: CI=true and ${#problems[@]} component(s) the tests need are missing (see above); the tests that" \
         "need them would fail. Fix the CI image or job, or run without CI=true to let those tests skip." >&2
    exit 1
fi
exit 0
