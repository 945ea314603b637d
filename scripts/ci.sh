#!/usr/bin/env bash
# The whole check on a fresh machine: install the locked environment, start PostgreSQL,
# Redis and Kafka on loopback (scripts/services.sh), lint, type-check, and run every test
# (unit, contracts, e2e and integration against the real services).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v uv >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check uv
fi
UV="$(command -v uv || python3 -c 'import shutil,sys; print(shutil.which("uv") or sys.exit(1))')"

"$UV" sync --frozen --quiet
# The integration fixtures ask the same script for the URLs; the suite never reads LEDGER_*
# from this shell, so unit and e2e tests stay on the embedded adapters.
bash scripts/services.sh start >/dev/null

"$UV" run --frozen ruff check .
"$UV" run --frozen ruff format --check .
"$UV" run --frozen mypy
"$UV" run --frozen lint-imports
# Branch coverage of mcp_ledger on the main run, gated by [tool.coverage.report] fail_under.
# The gate is for the whole suite: a run narrowed by arguments reports without gating.
coverage=(--cov --cov-report=term)
[[ $# -eq 0 ]] || coverage+=(--cov-fail-under=0)
"$UV" run --frozen pytest -m "not disruptive and not faults" "${coverage[@]}" "$@"
# Last and alone: these restart Kafka, PostgreSQL and Redis under load (tests/integration/
# test_reliability.py), which would break any other test using the services meanwhile.
"$UV" run --frozen pytest -m "disruptive and not faults" "$@" || [[ $? -eq 5 ]]  # 5: the arguments selected none
# After them, alone: network faults through Toxiproxy under load (tests/faults, docs/reliability.md).
"$UV" run --frozen pytest -m faults "$@" || [[ $? -eq 5 ]]
