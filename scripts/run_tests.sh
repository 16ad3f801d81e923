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
# -rfEs: the summary lists failures, errors AND each skip with its reason (under CI=true a test that lacks a
# real component fails instead of skipping: see skip_or_fail in tests/conftest.py).
exec .venv/bin/python -m pytest -q -rfEs tests "$@"
