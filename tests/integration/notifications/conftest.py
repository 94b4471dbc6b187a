"""Real Celery workers (one per test module) and SMTP sink (one per session) for these tests."""

from tests.support.celery import celery_worker, start_worker  # noqa: F401
from tests.support.smtp import smtp_sink  # noqa: F401
