#!/usr/bin/env bash
# The fault campaign (tests/faults, marker `faults`; docs/reliability.md): real Celery workers, beat and
# daphne — and, when DATABASE_URL and REDIS_URL are set, PostgreSQL and Redis — killed, frozen and
# restarted at seeded random moments, with every promise checked on every ticket.
#   DAGMERGE_FAULT_KILLS   faults of each kind (default 2, what CI runs; the recorded campaign used 20)
#   DAGMERGE_FAULT_SEED    seed of every random moment (default 9)
#   DAGMERGE_FAULT_REPORT  append one JSON line per fault to this file
# Leases are short so that recovery takes seconds; each can be set from outside.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export DAGMERGE_HOME=${DAGMERGE_HOME:-$(mktemp -d -t dagmerge-faults-XXXXXX)}
export DAGMERGE_LEASE_SECONDS=${DAGMERGE_LEASE_SECONDS:-5} DAGMERGE_SWEEP_SECONDS=${DAGMERGE_SWEEP_SECONDS:-1}
export DAGMERGE_RESEND_SECONDS=${DAGMERGE_RESEND_SECONDS:-5}
export DAGMERGE_FAULT_KILLS=${DAGMERGE_FAULT_KILLS:-2} DAGMERGE_FAULT_SEED=${DAGMERGE_FAULT_SEED:-9}
export DAGMERGE_FAULT_REPORT=${DAGMERGE_FAULT_REPORT:-}
.venv/bin/python -m pytest -q -rs -m faults -p no:cacheprovider tests/faults "$@"
