"""The SMTP sink (one per session) for the backup and restore test's email."""

from tests.support.smtp import smtp_sink  # noqa: F401
