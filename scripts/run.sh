#!/usr/bin/env bash
# Set up (first time only) and run the engine on the shipped config.yaml until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The key that seals recordings and NHS numbers: made once, on the first start (see config.yaml).
.venv/bin/callrouter keygen --config config.yaml --if-missing
exec .venv/bin/callrouter run --config config.yaml "$@"
