"""Upgrading a database from before the notifications app: the preferences and the
outbox it already holds are read through the new models, and the outbox still sends.

The test migrates the test database back to the last migrations before the move,
writes rows through the historical models, then migrates forward. It commits
(`committed`, not `transactional_db`: that one's flush TRUNCATEs the event log,
which the database refuses) and always leaves the database at the latest
migrations.
"""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from django.core import mail
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import override_settings

from notifications.models import OutboxEmail, Preferences
from notifications.outbox import outbox_cancel, outbox_send

# The last migrations before Preferences and OutboxEmail moved to notifications.
BEFORE = [("chat", "0005_search_index"), ("events", "0005_stream_closed")]


def _migrate(targets: list[tuple[str, str | None]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return MigrationExecutor(connection)  # a fresh loader: it reads what is applied now


def _latest() -> list[tuple[str, str | None]]:
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


@pytest.fixture
def before_the_move(committed) -> Iterator[MigrationExecutor]:
    try:
        yield _migrate([*BEFORE, ("notifications", None)])
    finally:
        _migrate(_latest())


def test_rows_written_before_the_move_are_read_and_sent_after_it(before_the_move):
    old = before_the_move.loader.project_state(BEFORE).apps
    assert not old.is_installed("notifications")
    suffix = uuid.uuid4().hex[:8]
    user = old.get_model("auth", "User").objects.create(username=f"upgrade-{suffix}", email=f"up-{suffix}@example.com")
    old.get_model("chat", "Preferences").objects.create(user_id=user.pk, digest_email=False, language="ja")
    old_outbox = old.get_model("events", "OutboxEmail")
    fields = {"recipient_id": user.pk, "to_address": user.email, "subject": "s", "language": "en", "headers": {}}
    pending = old_outbox.objects.create(
        kind="mention",
        key=f"pending-{suffix}",
        text_body="pending text",
        html_body="<p>pending</p>",
        next_attempt_at=datetime(2000, 1, 1, tzinfo=UTC),  # first in line for the sender
        **fields,
    )
    sent = old_outbox.objects.create(
        kind="digest",
        key=f"sent-{suffix}",
        text_body="sent text",
        html_body="<p>sent</p>",
        status="sent",
        attempts=1,
        next_attempt_at=datetime(2000, 1, 1, tzinfo=UTC),
        sent_at=datetime(2000, 1, 1, 0, 1, tzinfo=UTC),
        **fields,
    )

    _migrate(_latest())

    prefs = Preferences.objects.get(user_id=user.pk)
    assert (prefs.digest_email, prefs.mention_email, prefs.blog_email, prefs.language) == (False, True, True, "ja")
    rows = {row.pk: row for row in OutboxEmail.objects.filter(recipient_id=user.pk)}
    assert set(rows) == {pending.pk, sent.pk}
    assert (rows[pending.pk].status, rows[pending.pk].key, rows[pending.pk].text_body) == (
        "pending",
        f"pending-{suffix}",
        "pending text",
    )
    assert (rows[sent.pk].status, rows[sent.pk].sent_at) == ("sent", sent.sent_at)
    assert rows[pending.pk].quoted_user_ids == [] == rows[sent.pk].quoted_user_ids  # the new column's default

    mail.outbox = []
    with override_settings(MAILERS={"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}):
        report = outbox_send(limit=1)
    assert report.sent == 1 and [m.to for m in mail.outbox] == [[user.email]]
    assert OutboxEmail.objects.get(pk=pending.pk).status == "sent"
    assert outbox_cancel(user_id=user.pk) == 0  # nothing pending is left to cancel
