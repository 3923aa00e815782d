#!/usr/bin/env bash
# Back up the database and the recordings together (docs/operations.md, "Backups").
#   CALLCENTER_DATABASE_URL=postgresql+psycopg://callcenter@127.0.0.1/callcenter \
#   RECORDINGS_DIR=/var/spool/asterisk/callcenter scripts/backup.sh /var/backups/callcenter
# Writes DEST/callcenter-<UTC time>/{db.dump,recordings.tar.gz,SHA256SUMS}. The database is
# dumped first: every recording row in the dump has its file in the archive taken after it.
set -euo pipefail
dest=${1:?usage: backup.sh DEST_DIR}
: "${CALLCENTER_DATABASE_URL:?set CALLCENTER_DATABASE_URL (postgresql URL)}"
: "${RECORDINGS_DIR:?set RECORDINGS_DIR ([recordings] directory)}"
url=${CALLCENTER_DATABASE_URL/postgresql+psycopg:/postgresql:}
case $url in postgresql://*) ;; *) echo "backup.sh: only PostgreSQL is supported (got ${url%%:*})" >&2; exit 2;; esac
[ -d "$RECORDINGS_DIR" ] || { echo "backup.sh: $RECORDINGS_DIR does not exist" >&2; exit 2; }
out="$dest/callcenter-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
pg_dump --format=custom --no-owner --file="$out/db.dump" "$url"
tar -C "$RECORDINGS_DIR" -czf "$out/recordings.tar.gz" .
(cd "$out" && sha256sum db.dump recordings.tar.gz > SHA256SUMS)
echo "$out"
