"""Real Celery workers (one per test module) and SMTP sink (one per session) for
these tests, signed-in test clients, and a room with an author, a member and a moderator."""

import uuid

import pytest
from django.test import Client

from chat.models import Membership
from chat.services import room_join
from tests.factories import UserFactory
from tests.support.celery import celery_worker, start_worker  # noqa: F401
from tests.support.smtp import smtp_sink  # noqa: F401


@pytest.fixture
def client_for(db):
    """`client_for(user)`: a Django test client signed in as that user."""

    def make(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make


def _new_room() -> str:
    return f"hist-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def room(db):
    """A room with an author (alice), another member (bob) and a moderator (mod)."""
    name = _new_room()
    alice, bob, mod = UserFactory(), UserFactory(), UserFactory()
    accesses = {who: room_join(user=user, name=name) for who, user in (("alice", alice), ("bob", bob), ("mod", mod))}
    Membership.objects.filter(room__name=name, user=mod).update(is_moderator=True)
    return name, accesses
