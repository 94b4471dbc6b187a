"""Celery adapters of the event store: run a projection, send the email outbox.

Both are idempotent (checkpoints; outbox rows claimed with SKIP LOCKED), so they
are acknowledged late and requeued if their worker process dies.
"""

from celery import shared_task

from .outbox import outbox_send
from .projections import projection_run


@shared_task(name="events.projection_run", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def projection_run_task(name: str) -> int:
    """Apply a projection until it is caught up (bounded per run)."""
    return projection_run(name=name, max_batches=100).events


@shared_task(name="events.outbox_send", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def outbox_send_task() -> int:
    """Send the due emails of the outbox."""
    return outbox_send().sent
