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
    # The chain hash of the event at `head` (32 zero bytes for an empty stream),
    # bumped with `head` in the append statement (migration 0004).
    head_hash = models.BinaryField(default=bytes(32), editable=False)
    # A closed stream takes no new events except amendments (redactions,
    # erasures): set by the append of the event that closes it.
    closed = models.BooleanField(default=False)
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
    # sha256 of the data's canonical jsonb text, and the chain hash over the
    # previous event's hash, this event's fields and content_hash (events.verify).
    # Both computed by the database in the append statement.
    content_hash = models.BinaryField(editable=False)
    hash = models.BinaryField(editable=False)

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


class ProjectionCheckpoint(models.Model):
    """How far a projection has read the log: the (txid, id) of the last event it applied.

    Written in the same transaction as the projection's output, and locked
    (SELECT … FOR UPDATE) while a batch is applied, so two runners never apply
    the same batch.
    """

    name = models.CharField(max_length=100, unique=True)
    last_txid = models.BigIntegerField(default=0)
    last_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} @ ({self.last_txid}, {self.last_id})"
