#!/usr/bin/env bash
# Private PostgreSQL + Redis for dev/test under .var/: `up` starts them and prints export lines, `down [pg] [redis]` stops them.
#   eval "$(scripts/services.sh up)"   or   source scripts/services.sh   (same as up, exports into your shell)
#   scripts/services.sh env            prints the export lines without starting anything
# If DATABASE_URL and REDIS_URL are both set already, nothing is started and those are used.
if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then # sourced: run `up` in a child bash and export its result
  _svc_out="$(bash "${BASH_SOURCE[0]}" up)" && eval "$_svc_out"
  unset _svc_out
  return
fi
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VAR="$ROOT/.var"
PGDATA="$VAR/pg"
PGRUN="$VAR/pg-run"
PG_PORT="${PG_PORT:-54329}"
REDIS_PORT="${REDIS_PORT:-63799}"
STARTED=()

log() { echo ">> $*" >&2; }
die() { echo "error: $*" >&2; exit 1; }
is_root() { [[ "$(id -u)" == 0 ]]; }

find_pg_bin() {
  local d
  for d in /usr/lib/postgresql/15/bin $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV); do
    [[ -x "$d/initdb" ]] && { echo "$d"; return; }
  done
}
PG_BIN="${PG_BIN:-$(find_pg_bin)}"

# Run a PostgreSQL server command as the cluster owner (the postgres user when we are root).
as_pg() {
  if is_root; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

# Let the postgres user walk down to .var/pg (e.g. a clone under /root, which is 700).
ensure_traversable() {
  local dir="" part
  IFS=/ read -ra parts <<<"${1#/}"
  for part in "${parts[@]}"; do
    dir="$dir/$part"
    if ! runuser -u postgres -- test -x "$dir"; then
      log "chmod o+x $dir (so the postgres user can reach .var/pg)"
      chmod o+x "$dir"
    fi
  done
}

pg_running() { [[ -f "$PGDATA/postmaster.pid" ]] && as_pg "$PG_BIN/pg_ctl" status -D "$PGDATA" >/dev/null 2>&1; }
pg_port() { sed -n 4p "$PGDATA/postmaster.pid"; } # the port the running cluster really listens on

pg_up() {
  if [[ -z "$PG_BIN" ]]; then
    bash "$ROOT/scripts/apt-need.sh" /usr/lib/postgresql/15/bin/initdb postgresql-15
    PG_BIN="$(find_pg_bin)"
  fi
  mkdir -p "$VAR" "$PGDATA" "$PGRUN"
  chmod 755 "$VAR"
  if is_root; then
    id postgres >/dev/null 2>&1 || useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres
    [[ "$(stat -c %U "$PGDATA")" == postgres ]] || chown -R postgres:postgres "$PGDATA"
    chown postgres:postgres "$PGRUN"
    ensure_traversable "$VAR"
  fi
  chmod 700 "$PGDATA" "$PGRUN"

  if [[ ! -f "$PGDATA/PG_VERSION" ]]; then
    log "initdb $PGDATA"
    as_pg "$PG_BIN/initdb" -D "$PGDATA" -E UTF8 --locale=C.UTF-8 \
      --auth-local=peer --auth-host=scram-sha-256 >"$PGRUN/initdb.log" 2>&1 ||
      { cat "$PGRUN/initdb.log" >&2; die "initdb failed"; }
    cat >>"$PGDATA/postgresql.conf" <<CONF

# --- added by scripts/services.sh ---
listen_addresses = '127.0.0.1'
max_connections = 200
CONF
  fi

  if pg_running; then
    log "postgres already running ($PGDATA, port $(pg_port))"
  else
    if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then
      die "port $PG_PORT is used by another PostgreSQL; set PG_PORT to a free port"
    fi
    log "starting postgres on 127.0.0.1:$PG_PORT (log: $PGRUN/postgres.log)"
    as_pg "$PG_BIN/pg_ctl" start -w -t 60 -D "$PGDATA" -l "$PGRUN/postgres.log" \
      -o "-p $PG_PORT -k '$PGRUN'" >/dev/null ||
      { tail -n 20 "$PGRUN/postgres.log" >&2; die "postgres did not start"; }
    STARTED+=(pg)
  fi
  PG_PORT="$(pg_port)"
  "$PG_BIN/pg_isready" -q -t 30 -h 127.0.0.1 -p "$PG_PORT" || die "postgres is not accepting connections"

  # Role `chat` (superuser: tests create databases and disable triggers) and database `chat`, idempotently.
  as_pg "$PG_BIN/psql" -qAt -v ON_ERROR_STOP=1 -h "$PGRUN" -p "$PG_PORT" -d postgres >/dev/null <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'chat') THEN
    CREATE ROLE chat LOGIN SUPERUSER PASSWORD 'chat';
  END IF;
END $$;
SELECT 'CREATE DATABASE chat OWNER chat' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'chat')
\gexec
SQL
}

redis_ping() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }

redis_up() {
  if ! command -v redis-server >/dev/null 2>&1; then
    is_root || die "redis-server is missing; install the Debian package 'redis-server' (sudo apt-get install -y redis-server)"
    bash "$ROOT/scripts/apt-need.sh" redis-server redis-server
  fi
  if redis_ping; then
    log "redis already answering on 127.0.0.1:$REDIS_PORT"
    return
  fi
  mkdir -p "$VAR/redis"
  echo "$REDIS_PORT" >"$VAR/redis/port"
  log "starting redis on 127.0.0.1:$REDIS_PORT (log: $VAR/redis/redis.log)"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --dir "$VAR/redis" \
    --pidfile "$VAR/redis/redis.pid" --logfile "$VAR/redis/redis.log" --save '' --appendonly no
  for _ in $(seq 50); do redis_ping && break; sleep 0.1; done
  redis_ping || { tail -n 20 "$VAR/redis/redis.log" >&2; die "redis did not start"; }
  STARTED+=(redis)
}

print_env() {
  echo "export DATABASE_URL='${DATABASE_URL:-postgres://chat:chat@127.0.0.1:$PG_PORT/chat}'"
  echo "export REDIS_URL='${REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/0}'"
}

up() {
  if [[ -n "${DATABASE_URL:-}" && -n "${REDIS_URL:-}" ]]; then
    log "DATABASE_URL and REDIS_URL are set; starting nothing"
  else
    pg_up
    redis_up
    unset DATABASE_URL REDIS_URL
  fi
  print_env
  echo "export SERVICES_STARTED='${STARTED[*]}'" # what this call started, for `down $SERVICES_STARTED`
}

down() {
  local what=("$@")
  [[ ${#what[@]} -gt 0 ]] || what=(pg redis)
  for s in "${what[@]}"; do
    case "$s" in
      pg)
        if [[ -n "$PG_BIN" ]] && pg_running; then
          log "stopping postgres ($PGDATA)"
          as_pg "$PG_BIN/pg_ctl" stop -D "$PGDATA" -m fast >/dev/null
        fi ;;
      redis) # only the redis whose pidfile is ours, on the port it was started with
        local pid port
        pid="$(cat "$VAR/redis/redis.pid" 2>/dev/null || true)"
        port="$(cat "$VAR/redis/port" 2>/dev/null || true)"
        if [[ -n "$pid" && -n "$port" ]] && kill -0 "$pid" 2>/dev/null; then
          log "stopping redis on 127.0.0.1:$port"
          redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || kill "$pid" || true
        fi ;;
      *) die "unknown service '$s' (expected pg or redis)" ;;
    esac
  done
}

case "${1:-}" in
  up) up ;;
  down) shift; down "$@" ;;
  env) [[ -n "$PG_BIN" ]] && pg_running && PG_PORT="$(pg_port)"; print_env ;;
  *) echo "usage: $0 up | down [pg] [redis] | env" >&2; exit 2 ;;
esac
