"""Celery adapter of the outbox sender.

Idempotent (rows claimed with SKIP LOCKED, the outcome recorded in the same
transaction), so it is acknowledged late and requeued if its worker process dies.
"""

from celery import shared_task

from .outbox import outbox_send


@shared_task(name="notifications.outbox_send", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def outbox_send_task() -> int:
    """Send the due emails of the outbox."""
    return outbox_send().sent
