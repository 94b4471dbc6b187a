"""The event store: streams and their immutable, ordered events.

Rows are appended only by `events.services.event_append`; PostgreSQL triggers
(migration 0002) refuse UPDATE, DELETE and TRUNCATE of events.
"""

import uuid

from django.conf import settings
from django.db import models


class Stream(models.Model):
    """One ordered sequence of events (a room, the blog). `head` is its last seq."""

    key = models.CharField(max_length=200, unique=True)
    head = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.key


class Event(models.Model):
    """An immutable fact. `id` is the global position; `seq` the place in its stream."""

    id = models.BigAutoField(primary_key=True)
    stream = models.ForeignKey(Stream, on_delete=models.PROTECT, related_name="events")
    seq = models.BigIntegerField()
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    type = models.CharField(max_length=100)
    schema_version = models.PositiveSmallIntegerField(default=1)
    data = models.JSONField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    client_id = models.CharField(max_length=64, null=True, blank=True)
    created_at = models.DateTimeField()
    # The writing transaction's id (pg_current_xact_id), filled in by the
    # database: projections read below the oldest running transaction so a
    # late commit is never skipped (ARCHITECTURE.md, Projections).
    txid = models.BigIntegerField(editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["stream", "seq"], name="event_stream_seq_unique"),
            models.UniqueConstraint(
                fields=["stream", "actor", "client_id"],
                condition=models.Q(client_id__isnull=False),
                name="event_idempotency_key_unique",
            ),
        ]
        indexes = [models.Index(fields=["txid", "id"], name="event_txid_id_idx")]
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.stream_id}#{self.seq} {self.type}"
