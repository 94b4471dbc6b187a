"""/healthz and /readyz of a real daphne whose PostgreSQL is missing or not migrated."""

import json
import time
import urllib.error
import urllib.request
import uuid

import pytest
from django.db import connection

from tests.support.servers import free_port

pytestmark = pytest.mark.e2e


def get(url: str) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"Host": "10.0.0.9"})  # the load balancer's way
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_without_postgresql_the_process_is_live_but_not_ready(start_server, db_settings):
    daphne = start_server(
        DATABASE_URL=f"postgres://chat:chat@127.0.0.1:{free_port()}/nowhere",
        HEALTH_TIMEOUT_SECONDS="0.5",
        # The probe's thread waits this long for a pooled connection; the process waits for it at exit.
        DATABASE_POOL_TIMEOUT="1",
        METRICS_TOKEN="t0ken",
    )
    assert get(f"{daphne.http}/healthz") == (200, {"status": "ok"})

    status, body = get(f"{daphne.http}/readyz")

    assert status == 503 and body["status"] == "unavailable"
    assert body["failed"] == ["database", "migrations"]
    assert "PostgreSQL" in body["checks"]["database"]["error"]
    assert body["checks"]["redis"]["ok"] is True
    assert "projections" not in body

    # The metrics still answer, within the health timeout, and say the same.
    request = urllib.request.Request(f"{daphne.http}/metrics", headers={"Authorization": "Bearer t0ken"})
    started = time.monotonic()
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
    assert time.monotonic() - started < 3
    assert "chat_ready 0.0" in text and 'chat_ready_check{check="database"} 0.0' in text
    assert 'chat_ready_check{check="redis"} 1.0' in text
    assert "chat_outbox_pending" not in text and "chat_projection_lag_events{" not in text


@pytest.fixture
def empty_database(committed, db_settings):
    name = f"{db_settings['NAME']}_empty_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    yield name
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_an_unmigrated_database_is_not_ready_and_the_answer_names_the_migrations(
    start_server, db_settings, empty_database
):
    db = db_settings
    url = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{empty_database}"
    daphne = start_server(DATABASE_URL=url)

    status, body = get(f"{daphne.http}/readyz")

    assert status == 503 and body["failed"] == ["migrations"]
    migrations = body["checks"]["migrations"]
    assert "auth.0001_initial" in migrations["pending"] and migrations["pending_count"] > 20
    assert migrations["error"] == "Migrations are not applied: run manage.py migrate."
