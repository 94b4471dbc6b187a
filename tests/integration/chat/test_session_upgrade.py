"""Upgrading to chat.sessions keeps everyone signed in: migration 0006 copies the
live rows of Django's session table, each with its user's id."""

from datetime import timedelta

import pytest
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore as DjangoSessionStore
from django.contrib.sessions.models import Session
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from chat.auth import session_users
from chat.models import UserSession
from tests.factories import UserFactory

pytestmark = pytest.mark.slow


def _migrate(targets: list[tuple[str, str]]) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


def test_live_sessions_are_copied_with_their_user(committed):
    user = UserFactory()
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    _migrate([("chat", "0006_preferences_to_notifications")])
    try:
        store = DjangoSessionStore()
        data = {
            SESSION_KEY: str(user.pk),
            BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
            HASH_SESSION_KEY: user.get_session_auth_hash(),
        }
        live = Session.objects.create(
            session_key="live" + "x" * 28,
            session_data=store.encode(data),
            expire_date=timezone.now() + timedelta(days=1),
        )
        Session.objects.create(
            session_key="gone" + "x" * 28,
            session_data=store.encode(data),
            expire_date=timezone.now() - timedelta(seconds=1),
        )
    finally:
        _migrate(latest)
    copied = UserSession.objects.get(session_key=live.session_key)
    assert copied.user_id == user.pk and copied.session_data == live.session_data
    assert not UserSession.objects.filter(session_key="gone" + "x" * 28).exists()
    assert session_users(keys=[live.session_key])[live.session_key].pk == user.pk
