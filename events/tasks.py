"""Celery adapter of the event store: run a projection.

Idempotent (checkpoints), so it is acknowledged late and requeued if its worker
process dies.
"""

from celery import shared_task

from .projections import projection_run


@shared_task(name="events.projection_run", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def projection_run_task(name: str) -> int:
    """Apply a projection until it is caught up (bounded per run)."""
    return projection_run(name=name, max_batches=100).events
