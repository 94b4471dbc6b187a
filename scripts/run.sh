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

# In the background + wait, so a SIGTERM to make/this script is also passed on.
python scripts/run_procs.py --ready "${HOST:-127.0.0.1}:${PORT:-8000}" &
procs=$!
trap 'kill -TERM $procs 2>/dev/null || true' INT TERM
status=0
while :; do
  wait "$procs" && status=0 || status=$?
  kill -0 "$procs" 2>/dev/null || break # still alive: wait was interrupted by a signal
done
exit "$status"
