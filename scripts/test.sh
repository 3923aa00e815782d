#!/usr/bin/env bash
# The whole test suite on a fresh machine: venv, install, databases, then pytest.
# SQLite always; PostgreSQL too when it answers on $CALLCENTER_TEST_POSTGRES_URL
# (default postgresql://postgres@127.0.0.1:5432/test). Extra args go to pytest.
# Two pytest-xdist workers (CALLCENTER_TEST_WORKERS): many tests wait on time-scaled
# simulators and subprocesses, so two workers on two cores halve the wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --test
set +e
.venv/bin/python -m pytest -n "${CALLCENTER_TEST_WORKERS:-2}" "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then echo "test.sh: pytest collected no tests: failing" >&2; exit 1; fi
exit $rc
