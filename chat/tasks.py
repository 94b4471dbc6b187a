"""Celery adapters of the chat's email: flush due mentions, send the daily digest.

Both are idempotent (locked notices; outbox keys), so they are acknowledged late
and requeued if their worker process dies. When they queued email they ask the
outbox sender to run now rather than at its next beat.
"""

from datetime import date, timedelta

from celery import shared_task
from django.utils import timezone

from notifications.tasks import outbox_send_task

from .digest import digest_send
from .mentions import mentions_flush


@shared_task(name="chat.mentions_flush", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def mentions_flush_task() -> int:
    emails = mentions_flush().emails
    if emails:
        outbox_send_task.delay_on_commit()
    return emails


@shared_task(name="chat.digest_send", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def digest_send_task(day: str | None = None) -> int:
    """The digest of `day` (ISO date; default: yesterday in TIME_ZONE)."""
    when = date.fromisoformat(day) if day else timezone.localdate() - timedelta(days=1)
    queued = digest_send(day=when).queued
    if queued:
        outbox_send_task.delay_on_commit()
    return queued
