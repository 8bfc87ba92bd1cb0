#!/usr/bin/env bash
# Creates .venv with dagmerge and the versions it was tested with (constraints.txt). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
"$PYTHON" - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"dagmerge needs Python 3.11 or newer, this is {sys.version.split()[0]}")
PY
git --version >/dev/null || { echo "dagmerge needs git (2.38 or newer)"; exit 1; }
# Task code runs under bubblewrap; install it where we can (Debian/Ubuntu, as root or with sudo).
if ! command -v bwrap >/dev/null && command -v apt-get >/dev/null; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo -n"
  { $sudo apt-get install -y -qq bubblewrap >/dev/null 2>&1 ||
    { $sudo apt-get update -qq && $sudo apt-get install -y -qq bubblewrap >/dev/null; }; } ||
    echo "dagmerge: could not install bubblewrap; tasks will refuse to run unless DAGMERGE_TRUSTED_CODE=1" >&2
fi
stamp=.venv/.dagmerge-installed
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  .venv/bin/pip install -q --disable-pip-version-check -U pip
  .venv/bin/pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev,agents]'
  touch "$stamp"
fi
