#!/usr/bin/env bash
# `make run`: services, migrate, static, demo data, then web+worker+beat; Ctrl-C stops all it started.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export PATH="$PWD/.venv/bin:$PATH" VIRTUAL_ENV="$PWD/.venv"
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-config.settings}"
export DJANGO_DEBUG="${DJANGO_DEBUG:-true}"

svc="$(bash scripts/services.sh up)"
eval "$svc" # DATABASE_URL, REDIS_URL, SERVICES_STARTED
stop_services() { [[ -z "$SERVICES_STARTED" ]] || bash scripts/services.sh down $SERVICES_STARTED; }
trap stop_services EXIT
mkdir -p .var
# The processes started below share one metrics directory (/metrics adds them up;
# it is served when METRICS_TOKEN is set). Emptied at each start, as prometheus-client requires.
if [[ -z "${PROMETHEUS_MULTIPROC_DIR:-}" ]]; then
  export PROMETHEUS_MULTIPROC_DIR="$PWD/.var/metrics"
  rm -rf "$PROMETHEUS_MULTIPROC_DIR"
fi

python manage.py migrate --noinput
python manage.py collectstatic --noinput -v0
python manage.py seed_demo

# honcho runs the Procfile: each process in its own process group, output prefixed by
# its name; when one exits, or on Ctrl-C / SIGTERM, it stops them all (SIGTERM to
# each group, SIGKILL after 5 s). It sets PORT for the Procfile's processes from
# its own PORT (default 5000), so give it ours. Readiness and the URL are ours.
export HOST="${HOST:-127.0.0.1}" PORT="${PORT:-8000}"
probe="$HOST"
[[ "$probe" == 0.0.0.0 || "$probe" == "::" || -z "$probe" ]] && probe=127.0.0.1
listening() { (exec 3<>"/dev/tcp/$probe/$PORT") 2>/dev/null; }
if listening; then
  echo "error: $probe:$PORT is in use (set PORT)" >&2
  exit 1
fi

# In the background + wait, so a SIGTERM to make/this script is also passed on.
honcho start --procfile Procfile &
procs=$!
stopped=""
trap 'stopped=1; kill -TERM $procs 2>/dev/null || true' INT TERM
(
  until listening; do
    kill -0 "$procs" 2>/dev/null || exit 0
    sleep 0.25
  done
  echo "Open http://$probe:$PORT/"
) &
status=0
while :; do
  wait "$procs" && status=0 || status=$?
  kill -0 "$procs" 2>/dev/null || break # still alive: wait was interrupted by a signal
done
# Stopped by Ctrl-C / SIGTERM (honcho then exits 130 / 143): a clean exit. A process
# that exited on its own: honcho's status.
[[ -n "$stopped" || "$status" == 130 || "$status" == 143 ]] && exit 0
exit "$status"
