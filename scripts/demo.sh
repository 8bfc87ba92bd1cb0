#!/usr/bin/env bash
# Sets up, then serves the dashboard with a live demo ticket on the embedded default (no servers).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/dagmerge demo "$@"
