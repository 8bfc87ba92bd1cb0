#!/usr/bin/env bash
# Static checks: ruff (style, imports, bugbear), lint-imports (the layer contracts in pyproject.toml) and mypy
# (strict on merges/engine, the default level elsewhere; django-stubs). Every check runs; any failure fails.
set -uo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh || exit 1
# mypy's Django plugin imports the settings, which create DAGMERGE_HOME: keep that out of the checkout.
if [ -z "${DAGMERGE_HOME:-}" ]; then
  DAGMERGE_HOME=$(mktemp -d -t dagmerge-lint-XXXXXX)
  trap 'rm -rf "$DAGMERGE_HOME"' EXIT
fi
export DAGMERGE_HOME

failed=()
check() {
  echo "== $1"
  "${@:2}" || failed+=("$1")
}
check ruff .venv/bin/ruff check
check lint-imports .venv/bin/lint-imports
check mypy .venv/bin/mypy
if [ ${#failed[@]} -gt 0 ]; then
  echo "lint failed: ${failed[*]}" >&2
  exit 1
fi
echo "lint passed"
