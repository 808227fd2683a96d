#!/usr/bin/env bash
# The whole test suite, as CI runs it: set-up, lint, types, then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH:/usr/sbin:/sbin"
echo "== ruff";  ruff check callrouter tests benchmarks
echo "== mypy --strict"; mypy
echo "== pytest"; pytest -q -p no:cacheprovider "$@"
