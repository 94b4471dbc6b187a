"""/healthz, /readyz and /metrics (config.ops) on the real PostgreSQL and Redis."""

import socket
import time
import uuid

import pytest
from django.test import Client, override_settings

from chat.events import MESSAGE_POSTED
from events.projections import projection_run
from events.services import event_append, stream_create
from tests.factories import UserFactory
from tests.support.servers import free_port

FOREIGN_HOST = "10.20.30.40"  # a load balancer asks by address: not in ALLOWED_HOSTS


@pytest.fixture
def client(committed) -> Client:
    return Client()


def test_healthz_answers_any_host_without_session_or_query(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz", HTTP_HOST=FOREIGN_HOST)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "Set-Cookie" not in response.headers and "sessionid" not in response.cookies
    assert response.headers["Cache-Control"] == "no-store"


def test_readyz_reports_each_check_and_the_projections_lag(client):
    for name in ("mentions", "blog.announcements"):
        projection_run(name=name)
    stream = stream_create(key=f"test:ready:{uuid.uuid4().hex}")
    user = UserFactory()
    for i in range(3):
        event_append(stream_id=stream.id, type=MESSAGE_POSTED, data={"message": f"m{i}"}, actor_id=user.id)

    response = client.get("/readyz", HTTP_HOST=FOREIGN_HOST)

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["failed"] == []
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "database": True,
        "redis": True,
        "migrations": True,
    }
    for name in ("mentions", "blog.announcements"):
        lag = body["projections"][name]
        # At least the three new events (another session's open transaction may hold back more).
        assert lag["events"] >= 3 and lag["seconds"] > 0


def test_readyz_is_503_naming_redis_when_it_is_down(client):
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"):
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["failed"] == ["redis"]
    assert body["checks"]["redis"]["error"].startswith("Redis is unavailable")
    assert body["checks"]["database"]["ok"] is True


def test_readyz_gives_up_on_a_silent_redis_within_the_timeout(client):
    # Accepts connections (the kernel's backlog) and never answers a command.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        with override_settings(REDIS_URL=f"redis://127.0.0.1:{port}/0", HEALTH_TIMEOUT_SECONDS=0.3):
            started = time.monotonic()
            response = client.get("/readyz")
            elapsed = time.monotonic() - started
    assert response.status_code == 503 and response.json()["failed"] == ["redis"]
    assert elapsed < 2.0


@override_settings(METRICS_TOKEN="s3cret-token")
def test_metrics_need_the_bearer_token(client):
    missing = client.get("/metrics", HTTP_HOST=FOREIGN_HOST)
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope")
    assert missing.status_code == wrong.status_code == 401
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert missing.json()["error"] == "unauthenticated" and "METRICS_TOKEN" in missing.json()["detail"]

    ok = client.get("/metrics", HTTP_HOST=FOREIGN_HOST, HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert ok.status_code == 200
    assert ok.headers["Content-Type"].startswith("text/plain; version=")
    text = ok.content.decode()
    for line in ("chat_ready 1.0", 'chat_ready_check{check="redis"} 1.0', "chat_outbox_pending "):
        assert line in text
    assert 'chat_projection_lag_seconds{projection="mentions"}' in text


@override_settings(METRICS_TOKEN="")
def test_metrics_are_off_without_a_token(client):
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer ")
    assert response.status_code == 401
    assert response.json()["detail"] == "Metrics are off: set METRICS_TOKEN to serve them."


def test_each_request_gets_a_request_id_or_keeps_the_proxys(client):
    fresh = client.get("/accounts/login/")
    kept = client.get("/accounts/login/", HTTP_X_REQUEST_ID="nginx-4f2a.9")
    replaced = client.get("/accounts/login/", HTTP_X_REQUEST_ID="bad id\r\nx")
    assert fresh.status_code == 200 and len(fresh.headers["X-Request-ID"]) == 32
    assert kept.headers["X-Request-ID"] == "nginx-4f2a.9"
    assert replaced.headers["X-Request-ID"] != "bad id\r\nx" and len(replaced.headers["X-Request-ID"]) == 32
