#!/usr/bin/env bash
# Sets up, then runs the whole test suite. DATABASE_URL / REDIS_URL in the environment select
# PostgreSQL / Redis; without them the embedded default (SQLite, filesystem broker) is tested.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export DAGMERGE_HOME=${DAGMERGE_HOME:-$(mktemp -d -t dagmerge-test-XXXXXX)}
.venv/bin/python -m pytest -q "$@"
# The browser tests run on their own (pytest-playwright's sync API breaks later async tests in the same
# process), in Debian's Chromium, on the embedded default: they need no servers.
if [ -z "${DAGMERGE_SKIP_BROWSER:-}" ]; then
  ./scripts/browser-setup.sh
  DAGMERGE_HOME=$(mktemp -d -t dagmerge-browser-XXXXXX) DATABASE_URL= REDIS_URL= \
    .venv/bin/python -m pytest -q tests/browser
fi
