#!/usr/bin/env bash
# Run the simulated PBX and the service together on SQLite; dashboard on localhost.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export CALLCENTER_SERVICE_DATA_DIR=${CALLCENTER_SERVICE_DATA_DIR:-$PWD/var/demo}
.venv/bin/callcenter db upgrade >/dev/null
exec .venv/bin/callcenter demo "$@"
