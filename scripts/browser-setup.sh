#!/usr/bin/env bash
# What the browser tests (tests/browser) need besides ./scripts/setup.sh: Debian's Chromium, because
# `playwright install` cannot download browsers here, and the playwright package (constraints.txt).
# Idempotent; run it after setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/chromium ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi
if ! .venv/bin/python -c "import playwright" 2>/dev/null; then
  .venv/bin/pip install -q --disable-pip-version-check -c constraints.txt -e '.[browser]'
fi
/usr/bin/chromium --version
