#!/usr/bin/env bash
# Restore a backup made by scripts/backup.sh into an EMPTY database and recordings directory
# (docs/operations.md, "Restore"). Stop the service first.
#   CALLCENTER_DATABASE_URL=... RECORDINGS_DIR=... scripts/restore.sh /var/backups/callcenter/callcenter-<time>
set -euo pipefail
src=${1:?usage: restore.sh BACKUP_DIR}
: "${CALLCENTER_DATABASE_URL:?set CALLCENTER_DATABASE_URL (postgresql URL)}"
: "${RECORDINGS_DIR:?set RECORDINGS_DIR ([recordings] directory)}"
url=${CALLCENTER_DATABASE_URL/postgresql+psycopg:/postgresql:}
(cd "$src" && sha256sum --check --quiet SHA256SUMS)
tables=$(psql "$url" -Atc "select count(*) from information_schema.tables where table_schema = 'public'")
if [ "$tables" != 0 ]; then
  echo "restore.sh: the database is not empty ($tables tables); restore into a new database" >&2; exit 2
fi
mkdir -p "$RECORDINGS_DIR"
if [ -n "$(ls -A "$RECORDINGS_DIR")" ]; then
  echo "restore.sh: $RECORDINGS_DIR is not empty" >&2; exit 2
fi
pg_restore --no-owner --exit-on-error --dbname="$url" "$src/db.dump"
tar -C "$RECORDINGS_DIR" -xzf "$src/recordings.tar.gz"
echo "restored $src; now: callcenter db status (and callcenter db upgrade if the code is newer)"
