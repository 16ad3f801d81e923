#!/usr/bin/env bash
# The whole test suite from a fresh clone: venv + requirements, browser and visdom assets, lint, pytest.
# Usage: bash scripts/run_tests.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh --test
if [ -f scripts/setup_test_env.sh ]; then
    bash scripts/setup_test_env.sh .venv/bin/python
fi
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -q tests "$@"
