"""The email outbox: a real Celery worker sends it to a real SMTP server.

The worker's beat also runs the projections, so a blog post published by an
earlier test may be announced to this test's new user meanwhile: each test
looks only at its own kind of email ("test")."""

import os
import threading
import time
import uuid

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone

from notifications.models import OutboxEmail
from notifications.outbox import OutboxDraft, outbox_cancel, outbox_enqueue, outbox_message_id, outbox_send
from tests.factories import UserFactory
from tests.support.celery import send_task
from tests.support.servers import free_port


def _draft(user, key=None, subject="Hello") -> OutboxDraft:
    return OutboxDraft(
        recipient_id=user.pk,
        to_address=user.email,
        kind="test",
        key=key or uuid.uuid4().hex,
        subject=subject,
        text_body="plain body",
        html_body="<p>html body</p>",
        language="en",
        headers={"X-Test": "yes"},
    )


def _wait_row(row_id: int, status: str, timeout: float = 30.0) -> OutboxEmail:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        row = OutboxEmail.objects.get(pk=row_id)
        if row.status == status:
            return row
        time.sleep(0.05)
    raise AssertionError(f"outbox row {row_id} is {OutboxEmail.objects.get(pk=row_id).status}, not {status}")


def test_queueing_is_idempotent_per_recipient_kind_and_key(committed):
    user = UserFactory()
    assert outbox_enqueue(drafts=[_draft(user, key="k")]) == 1
    assert outbox_enqueue(drafts=[_draft(user, key="k", subject="other"), _draft(user, key="k2")]) == 1
    assert OutboxEmail.objects.filter(recipient=user).count() == 2
    assert OutboxEmail.objects.get(recipient=user, key="k").subject == "Hello"


def test_worker_delivers_html_and_text_parts(celery_worker, smtp_sink, committed):
    user = UserFactory()
    outbox_enqueue(drafts=[_draft(user)])
    (received,) = smtp_sink.wait_for(user.email, kind="test")
    assert received.message["Subject"] == "Hello" and received.message["X-Test"] == "yes"
    assert received.text.strip() == "plain body" and received.html.strip() == "<p>html body</p>"
    row = _wait_row(OutboxEmail.objects.get(recipient=user, kind="test").pk, "sent")
    assert row.attempts == 1 and row.sent_at is not None
    assert received.message["Message-ID"] == outbox_message_id(row)


def test_temporary_failure_is_retried_and_delivered_once(celery_worker, smtp_sink, committed):
    user = UserFactory()
    smtp_sink.fail_next(user.email, 451)
    outbox_enqueue(drafts=[_draft(user)])
    row = _wait_row(OutboxEmail.objects.get(recipient=user, kind="test").pk, "sent")
    assert (user.email, 451) in smtp_sink.refusals
    assert row.attempts == 2 and "451" in row.last_error
    assert len(smtp_sink.to(user.email, kind="test")) == 1


def test_permanent_failure_is_marked_failed_and_not_retried(celery_worker, smtp_sink, committed):
    user, later = UserFactory(), UserFactory()
    smtp_sink.fail_next(user.email, 550, 550, 550)
    outbox_enqueue(drafts=[_draft(user)])
    row = _wait_row(OutboxEmail.objects.get(recipient=user, kind="test").pk, "failed")
    assert row.attempts == 1 and "550" in row.last_error
    # The sender keeps running (another email gets through after it) without touching the failed row.
    outbox_enqueue(drafts=[_draft(later)])
    smtp_sink.wait_for(later.email, kind="test")
    send_task_and_wait_for_another(smtp_sink)
    assert [r for r in smtp_sink.refusals if r[0] == user.email] == [(user.email, 550)]
    assert OutboxEmail.objects.get(pk=row.pk).attempts == 1
    assert smtp_sink.to(user.email, kind="test") == []


def send_task_and_wait_for_another(smtp_sink) -> None:
    """Let at least one more full sender pass happen (proved by one more delivery)."""
    from notifications.tasks import outbox_send_task

    probe = UserFactory()
    outbox_enqueue(drafts=[_draft(probe)])
    send_task(outbox_send_task)
    smtp_sink.wait_for(probe.email, kind="test")


def test_temporary_failures_stop_after_max_attempts(celery_worker, smtp_sink, committed):
    user = UserFactory()
    smtp_sink.fail_next(user.email, *([451] * 10))
    outbox_enqueue(drafts=[_draft(user)])
    row = _wait_row(OutboxEmail.objects.get(recipient=user, kind="test").pk, "failed", timeout=30)
    assert row.attempts == 4  # OUTBOX_MAX_ATTEMPTS of the test worker
    assert len([r for r in smtp_sink.refusals if r[0] == user.email]) == 4


def test_connection_refused_is_temporary(committed):
    """In-process sender against a port nobody listens on: retried later, not failed."""
    user = UserFactory()
    port = free_port()
    mailers = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": port, "timeout": 2},
        }
    }
    # Queued and sent in one transaction, so the session's worker never sees the row pending.
    with transaction.atomic():
        outbox_enqueue(drafts=[_draft(user)])
        row = OutboxEmail.objects.get(recipient=user, kind="test")
        OutboxEmail.objects.filter(pk=row.pk).update(next_attempt_at="2000-01-01T00:00:00Z")  # first in line
        with override_settings(MAILERS=mailers, OUTBOX_RETRY_SECONDS=60):
            report = outbox_send(limit=1)
    row.refresh_from_db()
    assert report.retried == 1 and row.status == "pending" and row.attempts == 1
    assert "Connection" in row.last_error or "refused" in row.last_error.lower()
    assert (row.next_attempt_at - timezone.now()).total_seconds() >= 55


@pytest.mark.slow
def test_two_senders_never_send_one_row_twice(smtp_sink, committed):
    """Claims use FOR UPDATE SKIP LOCKED: concurrent senders split the rows."""
    users = [UserFactory() for _ in range(12)]
    from tests.support.smtp import smtp_url

    host, port = smtp_url().removeprefix("smtp://").split(":")
    mailers = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": host, "port": int(port), "timeout": 5},
        }
    }
    outbox_enqueue(drafts=[_draft(u) for u in users])

    def sender():
        try:
            with override_settings(MAILERS=mailers):
                outbox_send(limit=50)
        finally:
            connection.close()

    threads = [threading.Thread(target=sender) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for row in OutboxEmail.objects.filter(recipient__in=users):
        _wait_row(row.pk, "sent")  # a row is marked sent in the transaction after its SMTP transfer
    for u in users:
        assert len(smtp_sink.to(u.email, kind="test")) == 1


def _pending(recipient, quoted) -> OutboxEmail:
    return OutboxEmail.objects.create(
        recipient=recipient,
        to_address=recipient.email,
        kind="mention",
        key=uuid.uuid4().hex,
        subject="s",
        text_body=f"{quoted.username} said hello",
        html_body=f"<p>{quoted.username} said hello</p>",
        language="en",
        next_attempt_at=timezone.now(),
        quoted_user_ids=[quoted.pk],
    )


def test_erasing_al_cancels_mail_quoting_al_and_not_mail_quoting_alice(db):
    suffix = uuid.uuid4().hex[:6]
    al = UserFactory(username=f"al{suffix}")
    alice = UserFactory(username=f"al{suffix}ice")  # al's name is in every email quoting alice
    bob = UserFactory()
    quoting_alice, quoting_al, to_al = _pending(bob, alice), _pending(bob, al), _pending(al, alice)
    call_command("erase_user", al.username, stdout=open(os.devnull, "w"))
    statuses = {row.pk: (row.status, row.last_error) for row in OutboxEmail.objects.filter(recipient__in=[al, bob])}
    assert statuses[quoting_alice.pk] == ("pending", "")
    assert statuses[quoting_al.pk] == ("failed", "erased")
    assert statuses[to_al.pk] == ("failed", "erased")
    assert outbox_cancel(user_id=alice.pk) == 1  # by id: the one left pending
