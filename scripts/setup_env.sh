#!/usr/bin/env bash
# Create ./.venv if missing and install the requirements into it (idempotent, quick when up to date).
# Usage: bash scripts/setup_env.sh [--test]     (--test also installs requirements-test.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
    echo "creating virtual environment $VENV"
    "$PYTHON" -m venv "$VENV"
fi
files=(requirements.txt)
[ "${1:-}" = "--test" ] && files+=(requirements-test.txt)
stamp="$VENV/.installed-$(cat "${files[@]}" | sha256sum | cut -c1-16)"
if [ -f "$stamp" ]; then
    exit 0
fi
echo "installing ${files[*]} into $VENV (first time: a few minutes)"
# visdom 0.2.4 is a source package whose setup.py needs pkg_resources (gone in setuptools 81).
"$VENV/bin/pip" install -q 'setuptools<81' wheel
args=()
for f in "${files[@]}"; do args+=(-r "$f"); done
"$VENV/bin/pip" install -q --no-build-isolation "${args[@]}"
touch "$stamp"
