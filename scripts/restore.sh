#!/usr/bin/env bash
# Restore a backup (scripts/backup.sh) into a NEW database, never over a live one.
#   scripts/restore.sh FILE TARGET_DATABASE_URL [--sent-from OLD_DATABASE_URL]
# TARGET is created when missing (the role needs CREATEDB; or create it empty beforehand); a database
# that already has tables is refused. Then point DATABASE_URL at TARGET and restart every process.
# --sent-from: the old database, if it can still be read; emails it sent after the backup are marked
#   sent in TARGET instead of being sent a second time (README, "Backup and restore").
set -euo pipefail

die() { echo "error: $*" >&2; exit 1; }
usage() { die "usage: $0 FILE TARGET_DATABASE_URL [--sent-from OLD_DATABASE_URL]"; }

[[ $# -eq 2 || ($# -eq 4 && "$3" == --sent-from) ]] || usage
file="$1" target="$2" old="${4:-}"
[[ -r "$file" ]] || die "cannot read $file"
for cmd in pg_restore psql createdb; do
  command -v "$cmd" >/dev/null || die "$cmd is missing; install the Debian package postgresql-client"
done
pg_restore --list "$file" >/dev/null || die "$file is not a pg_dump custom-format backup"

# postgres://user:pass@host:port/NAME?opts -> NAME, and the same server's maintenance database.
path="${target#*://*/}"
name="${path%%\?*}"
query="${target#"${target%%\?*}"}"
[[ -n "$name" && "$name" != "$target" ]] || die "no database name in $target"
maintenance="${target%%/"$path"}/postgres$query"

q() { psql --no-psqlrc -v ON_ERROR_STOP=1 -qAt "$@"; }

exists="$(q -d "$maintenance" -v name="$name" <<<"SELECT count(*) FROM pg_database WHERE datname = :'name'")"
if [[ "$exists" == 0 ]]; then
  createdb --maintenance-db="$maintenance" "$name"
  echo ">> created database $name" >&2
elif [[ "$(q -d "$target" -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")" != 0 ]]; then
  die "database $name already has tables; restore into a new (or empty) database"
fi

echo ">> restoring $file into $name" >&2
# One transaction: all or nothing. The event table's triggers are created after its rows are loaded.
pg_restore --no-owner --no-privileges --exit-on-error --single-transaction --dbname="$target" "$file"

# Projections order the log by writing transaction id. On another PostgreSQL cluster the counter
# may be behind the restored log's; new events would then sort before the checkpoints and never
# be projected (no mention or announcement email ever again). Refuse to hand such a database over.
epoch="$(q -d "$target" -c "SELECT CASE WHEN coalesce(max(txid), 0) >= pg_current_xact_id()::text::bigint
                                      THEN (max(txid) >> 32) + 1 END FROM events_event")"
if [[ -n "$epoch" ]]; then
  die "$name is restored, but this PostgreSQL cluster's transaction ids are behind those of the" \
    "restored log: the chat must not run on it. Drop $name, stop the cluster, raise its epoch" \
    "(pg_resetwal --epoch=$epoch DATADIR), start it and restore again (README, \"Backup and restore\")."
fi

if [[ -n "$old" ]]; then
  # Rows queued before the backup and sent afterwards are pending in the backup: take the old
  # database's word that they went out.
  marked="$(
    q -d "$old" -c "\\copy (SELECT recipient_id, kind, key, sent_at FROM events_outboxemail WHERE status = 'sent') TO STDOUT" |
      q -d "$target" \
        -c "CREATE TEMP TABLE sent (recipient_id bigint, kind text, key text, sent_at timestamptz)" \
        -c "\\copy sent FROM pstdin" \
        -c "WITH done AS (UPDATE events_outboxemail o SET status = 'sent', sent_at = s.sent_at, last_error = ''
              FROM sent s WHERE (o.recipient_id, o.kind, o.key) = (s.recipient_id, s.kind, s.key)
                AND o.status <> 'sent' RETURNING 1) SELECT count(*) FROM done"
  )"
  echo ">> $marked email(s) sent by the old database after the backup marked sent" >&2
fi
echo ">> restored; check it with: DATABASE_URL=... python manage.py verify_log" >&2
