#!/usr/bin/env bash
# The whole test suite on a fresh machine: venv, install, databases, then pytest.
# SQLite always; PostgreSQL too when it answers on $CALLCENTER_TEST_POSTGRES_URL
# (default postgresql://postgres@127.0.0.1:5432/test). Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --test
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then echo "test.sh: pytest collected no tests: failing" >&2; exit 1; fi
exit $rc
