"""The SMTP sink for the Celery workers these tests start."""

from tests.support.smtp import smtp_sink  # noqa: F401
