# Developer entry points: make run | test | check | migrate | services | bench | clean (see README).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PY := .venv/bin/python
# Start (or reuse) PostgreSQL + Redis and export DATABASE_URL / REDIS_URL into the recipe's shell.
SERVICES_UP := svc="$$(bash scripts/services.sh up)"; eval "$$svc"
export DJANGO_SETTINGS_MODULE ?= config.settings
PYTEST_ARGS ?=
# Checks and tests run with DEBUG off, as production does; they need a key.
TEST_ENV := export DJANGO_SECRET_KEY="$${DJANGO_SECRET_KEY:-insecure-key-for-tests-only}"
# Lint + format check + types (mypy's django plugin loads settings, so give it the URLs, nothing started).
CHECK := set -x; $(TEST_ENV); .venv/bin/ruff check .; .venv/bin/ruff format --check .; \
	svc="$$(bash scripts/services.sh env)"; eval "$$svc"; .venv/bin/mypy

.PHONY: help venv services migrate run check test bench clean chromium nginx prometheus

help:
	@echo "make run | test | check | migrate | services | bench | venv | clean"

venv:
	@bash scripts/venv.sh

services: venv
	@bash scripts/services.sh up

migrate: venv
	@$(SERVICES_UP); $(PY) manage.py migrate --noinput

run: venv
	@bash scripts/run.sh

check: venv
	@$(CHECK)

chromium:
	@bash scripts/apt-need.sh /usr/bin/chromium chromium

# The deployment tests run deploy/nginx/chat.conf in a real nginx and verify deploy/systemd's units.
nginx:
	@bash scripts/apt-need.sh /usr/sbin/nginx nginx
	@bash scripts/apt-need.sh systemd-analyze systemd

# Tests use Redis database 1: rate windows, presence and revocation keys name users and rooms
# by id, and the test database's ids would otherwise collide with `make run`'s.
test: venv chromium nginx prometheus
	@$(SERVICES_UP); export REDIS_URL="$${REDIS_URL%/0}/1"; ($(CHECK)); set -x; $(TEST_ENV); .venv/bin/pytest $(PYTEST_ARGS)

bench: venv
	@$(SERVICES_UP); $(PY) scripts/bench.py

# The metrics test runs a real Prometheus (and promtool) from Debian's package.
prometheus:
	@bash scripts/apt-need.sh prometheus prometheus

clean:
	-@bash scripts/services.sh down
	rm -rf .var
