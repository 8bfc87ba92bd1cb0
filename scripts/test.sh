#!/usr/bin/env bash
# Sets up, then runs the whole test suite. DATABASE_URL / REDIS_URL in the environment select
# PostgreSQL / Redis; without them the embedded default (SQLite, filesystem broker) is tested.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export DAGMERGE_HOME=${DAGMERGE_HOME:-$(mktemp -d -t dagmerge-test-XXXXXX)}
.venv/bin/python -m pytest -q "$@"
