#!/usr/bin/env bash
# Set up (first time only) and run the engine on the shipped config.yaml until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/callrouter run --config config.yaml "$@"
