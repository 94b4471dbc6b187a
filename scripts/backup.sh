#!/usr/bin/env bash
# Back up the whole database (event log, projections' checkpoints, outbox, users, sessions) with pg_dump.
#   scripts/backup.sh [FILE]      default FILE: backups/chat-<UTC time>.dump; the database is $DATABASE_URL
# Custom format (compressed, restored with scripts/restore.sh). pg_dump reads one consistent snapshot,
# so checkpoints and outbox match the log exactly; writers are not blocked. Prints the file's path.
set -euo pipefail

die() { echo "error: $*" >&2; exit 1; }
[[ -n "${DATABASE_URL:-}" ]] || die "DATABASE_URL is not set (in production: set -a; . /etc/chat/chat.env; set +a)"
command -v pg_dump >/dev/null || die "pg_dump is missing; install the Debian package postgresql-client"

out="${1:-backups/chat-$(date -u +%Y%m%dT%H%M%SZ).dump}"
[[ ! -e "$out" ]] || die "$out exists; not overwriting a backup"
mkdir -p "$(dirname "$out")"
partial="$out.partial"
trap 'rm -f "$partial"' EXIT

# Written under another name and renamed when complete and readable: a file named *.dump is whole.
pg_dump --format=custom --no-owner --no-privileges --file="$partial" --dbname="$DATABASE_URL"
pg_restore --list "$partial" >/dev/null || die "the dump just written cannot be read back"
mv "$partial" "$out"
echo "$out"
