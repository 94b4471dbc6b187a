"""Real Celery workers (one per test module) and SMTP sink (one per session) for
these tests, and signed-in test clients."""

import pytest
from django.test import Client

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
