"""The projection runner: read the log after a checkpoint, apply, save the checkpoint.

A projection is any object with a `name` and an `apply(events)` method; the
ones that run are listed in settings.PROJECTIONS (name → dotted path), so this
module imports no app. Each batch is applied and its checkpoint written in ONE
transaction, with the checkpoint row locked, so a crash, a redelivered task or
a second runner never applies an event twice.

Why (txid, id) and not id alone: an event's id is taken when it is inserted but
becomes visible when its transaction commits, so a reader of "id > checkpoint"
can pass an id whose transaction commits later and never see it. Every event
stores its writing transaction's id (`txid`, a 64-bit pg_current_xact_id), and
the runner reads only events whose transaction is older than the oldest one
still running (`pg_snapshot_xmin`): all of those have committed or aborted, so
nothing can appear below the checkpoint afterwards (the Emmett approach).
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Protocol

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from .models import Event, ProjectionCheckpoint

logger = logging.getLogger(__name__)

_HORIZON = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
_BATCH = """
SELECT * FROM events_event
WHERE (txid, id) > (%s, %s) AND txid < %s
ORDER BY txid, id
LIMIT %s
"""


class Projection(Protocol):
    """Turns events into output rows. `apply` runs inside the runner's transaction
    and must be idempotent per event (unique keys + insert-or-ignore), so a
    rebuild from zero produces the same output and nothing twice."""

    name: str

    def apply(self, events: Sequence[Event]) -> None: ...


@dataclass(frozen=True)
class RunReport:
    name: str
    events: int
    batches: int


@dataclass(frozen=True)
class Lag:
    """How far a projection is behind the log: events after its checkpoint (at
    most LAG_COUNT_MAX are counted) and the age of the oldest of them."""

    name: str
    events: int
    seconds: float


# Counting stops here, so a scrape of a projection far behind stays cheap.
LAG_COUNT_MAX = 100_000
_LAG_COUNT = "SELECT count(*) FROM (SELECT 1 FROM events_event WHERE (txid, id) > (%s, %s) LIMIT %s) behind"
_LAG_OLDEST = "SELECT created_at FROM events_event WHERE (txid, id) > (%s, %s) ORDER BY txid, id LIMIT 1"


@cache
def _projection(path: str) -> Projection:
    factory = import_string(path)
    projection: Projection = factory()
    return projection


def projection_names() -> list[str]:
    return list(settings.PROJECTIONS)


def projection_get(*, name: str) -> Projection:
    try:
        path = settings.PROJECTIONS[name]
    except KeyError:
        raise LookupError(f"Unknown projection {name!r}; known: {', '.join(settings.PROJECTIONS)}.") from None
    return _projection(path)


def _checkpoint_locked(name: str) -> ProjectionCheckpoint:
    ProjectionCheckpoint.objects.bulk_create([ProjectionCheckpoint(name=name)], ignore_conflicts=True)
    return ProjectionCheckpoint.objects.select_for_update().get(name=name)


def projection_step(*, name: str, batch_size: int | None = None) -> int:
    """Apply one batch of `name`; return how many events it applied (0: caught up)."""
    projection = projection_get(name=name)
    size = batch_size or settings.PROJECTION_BATCH_SIZE
    with transaction.atomic():
        # First statement of the transaction: no transaction id of our own yet,
        # so the horizon is that of the other writers only.
        with connection.cursor() as cursor:
            cursor.execute(_HORIZON)
            horizon = cursor.fetchone()[0]
        checkpoint = _checkpoint_locked(name)
        events = list(Event.objects.raw(_BATCH, [checkpoint.last_txid, checkpoint.last_id, horizon, size]))
        if not events:
            return 0
        projection.apply(events)
        last = events[-1]
        checkpoint.last_txid, checkpoint.last_id = last.txid, last.id
        checkpoint.save(update_fields=["last_txid", "last_id", "updated_at"])
    logger.info("projection %s applied %d events up to (%d, %d)", name, len(events), last.txid, last.id)
    return len(events)


def projection_run(*, name: str, batch_size: int | None = None, max_batches: int | None = None) -> RunReport:
    """Apply batches until caught up (or `max_batches`, so one task never runs for ever)."""
    size = batch_size or settings.PROJECTION_BATCH_SIZE
    total = batches = 0
    while max_batches is None or batches < max_batches:
        applied = projection_step(name=name, batch_size=size)
        if applied:
            batches += 1
            total += applied
        if applied < size:
            break
    return RunReport(name=name, events=total, batches=batches)


def projection_rebuild(*, name: str, batch_size: int | None = None) -> RunReport:
    """Reset the checkpoint to zero and replay the whole log. Safe because every
    projection inserts its output with unique keys and ignores conflicts."""
    projection_get(name=name)
    with transaction.atomic():
        checkpoint = _checkpoint_locked(name)
        checkpoint.last_txid = checkpoint.last_id = 0
        checkpoint.save(update_fields=["last_txid", "last_id", "updated_at"])
    return projection_run(name=name, batch_size=batch_size)


def projection_lags() -> list[Lag]:
    """The lag of every configured projection (index range scans on (txid, id))."""
    checkpoints = {
        c.name: (c.last_txid, c.last_id) for c in ProjectionCheckpoint.objects.filter(name__in=settings.PROJECTIONS)
    }
    now = timezone.now()
    lags = []
    with connection.cursor() as cursor:
        for name in settings.PROJECTIONS:
            position = checkpoints.get(name, (0, 0))
            cursor.execute(_LAG_COUNT, [*position, LAG_COUNT_MAX])
            events = cursor.fetchone()[0]
            cursor.execute(_LAG_OLDEST, position)
            oldest = cursor.fetchone()
            seconds = max((now - oldest[0]).total_seconds(), 0.0) if oldest else 0.0
            lags.append(Lag(name=name, events=events, seconds=seconds))
    return lags
