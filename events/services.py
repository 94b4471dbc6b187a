"""The one write path of the event store: `event_append`, and `actor_erase`, the
one change to stored data (GDPR erasure).

Per-stream `seq` is gapless from 1: the head row of the stream is bumped and the
event inserted in one statement, so the row lock serialises writers of a stream
and a failed insert rolls the bump back with it. The same statement computes the
event's content hash and its link in the stream's hash chain (events.verify).
"""

import json
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import psycopg
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from config import metrics

from .models import Event, Stream
from .schemas import SchemaError, erasure_types, event_type, personal_text_types

# The stream that holds the erasure records: events.verify reads it through the
# (stream, seq) index, not a table scan.
ERASURE_STREAM = "audit:erasure"


class IdempotencyConflict(Exception):
    """The idempotency key was used before for different content."""


@dataclass(frozen=True)
class Appended:
    event: Event
    duplicate: bool


class StreamClosed(Exception):
    """The stream was closed: it takes amendments only."""


# One statement, one round trip (outside a transaction it is its own): lock the
# stream's head row unless the stream is closed (amendments excepted) or the
# idempotency key was used before, then take the time (after the lock, so
# created_at grows with seq), hash the data's canonical jsonb text and chain it
# to the head's hash, bump head and head_hash, insert the event. The row lock
# serialises the writers of a stream, so the chain never forks, and a writer
# that waited for it sees the stream's latest `closed` and head.
_INSERT = """
WITH locked AS (
    SELECT id, head, head_hash FROM events_stream
    WHERE id = %(stream)s AND (NOT closed OR %(amendment)s)
      AND NOT EXISTS (
          SELECT 1 FROM events_event e
          WHERE %(client)s::text IS NOT NULL AND e.stream_id = %(stream)s
            AND e.actor_id IS NOT DISTINCT FROM %(actor)s::bigint AND e.client_id = %(client)s::text
      )
    FOR UPDATE
), input AS (
    SELECT l.id, l.head + 1 AS seq, l.head_hash AS prev, clock_timestamp() AS ts, d.data,
           sha256(convert_to(d.data::text, 'UTF8')) AS content_hash
    FROM locked l, (SELECT %(data)s::jsonb AS data) d
), hashed AS (
    SELECT i.*, events_chain_hash(i.prev, i.seq, %(type)s::text, %(version)s::integer, %(actor)s::bigint,
                                  %(client)s::text, i.ts, i.content_hash) AS hash
    FROM input i
), head AS (
    UPDATE events_stream s SET head = h.seq, head_hash = h.hash, closed = s.closed OR %(close)s
    FROM hashed h WHERE s.id = h.id
    RETURNING h.seq, h.ts, h.data, h.content_hash, h.hash
)
INSERT INTO events_event (stream_id, seq, uuid, type, schema_version, data, actor_id, client_id, created_at,
                          content_hash, hash)
SELECT %(stream)s, head.seq, gen_random_uuid(), %(type)s, %(version)s, head.data, %(actor)s, %(client)s, head.ts,
       head.content_hash, head.hash
FROM head
RETURNING id, seq, uuid, created_at, txid, content_hash, hash
"""


def stream_create(*, key: str) -> Stream:
    stream, _ = Stream.objects.get_or_create(key=key)
    return stream


def event_append(
    *,
    stream_id: int,
    type: str,
    data: dict[str, Any],
    actor_id: int | None,
    client_id: str | None = None,
    close: bool = False,
    amendment: bool = False,
) -> Appended:
    """Append one event; with a client_id, at most once per (stream, actor, client_id).

    Resending the same key with the same content returns the original event
    (`duplicate=True`); the same key with other content raises IdempotencyConflict.
    `close=True` closes the stream with this event; a closed stream refuses
    further events (StreamClosed) except `amendment=True` ones.
    """
    schema = event_type(type)
    data = schema.validate(data)
    params = {
        "stream": stream_id,
        "type": type,
        "version": schema.version,
        "data": json.dumps(data, ensure_ascii=False),
        "actor": actor_id,
        "client": client_id,
        "close": close,
        "amendment": amendment,
    }
    connection = transaction.get_connection()
    started = time.perf_counter()
    try:
        # Inside the caller's transaction, a savepoint keeps it usable after a lost
        # race on the key; outside one, the statement commits alone.
        with transaction.atomic() if connection.in_atomic_block else nullcontext():
            row = _execute(connection, params)
    except IntegrityError:
        # A concurrent append with the same key committed first.
        existing = _by_key(stream_id, actor_id, client_id)
        if existing is None:
            raise
        return _duplicate(existing, type, data)
    if row is None:
        # Nothing inserted: the key was used before, or the stream is closed or missing.
        existing = _by_key(stream_id, actor_id, client_id)
        if existing is not None:
            return _duplicate(existing, type, data)
        if Stream.objects.filter(id=stream_id).exists():
            raise StreamClosed("This stream is closed.")
        raise Stream.DoesNotExist(f"No stream with id {stream_id}.")
    metrics.event_appended(type=type, seconds=time.perf_counter() - started)
    event_id, seq, event_uuid, created_at, txid, content_hash, chain_hash = row
    event = Event(
        id=event_id,
        stream_id=stream_id,
        seq=seq,
        uuid=event_uuid,
        type=type,
        schema_version=schema.version,
        data=data,
        actor_id=actor_id,
        client_id=client_id,
        created_at=created_at,
        txid=txid,
        content_hash=bytes(content_hash),
        hash=bytes(chain_hash),
    )
    return Appended(event=event, duplicate=False)


@dataclass(frozen=True)
class Erased:
    event: Event  # the erasure record
    events_scrubbed: int


def actor_erase(*, actor_id: int, erasure_type: str) -> Erased:
    """Erase the text an actor wrote: append the erasure record, then scrub it.

    `erasure_type` is a type registered with `records_erasure`; it is appended
    to the `audit:erasure` stream with data `{"user_id": actor_id}`. Then the
    data of the actor's events of every type registered with `personal_text`
    is replaced by its erased form (`{"erased": true}`, keeping `target_seq`)
    through the database function `events_erase_texts` (events migration 0008), the
    one UPDATE the immutability trigger lets through. Content hashes are kept,
    so the chain still verifies, and events.verify accepts those rows because
    the record names their actor. One transaction; events of other types, and
    other actors' events, are untouched.
    """
    if erasure_type not in erasure_types():
        raise SchemaError(f"{erasure_type!r} is not a registered erasure type.")
    with transaction.atomic():
        stream = stream_create(key=ERASURE_STREAM)
        record = event_append(stream_id=stream.pk, type=erasure_type, data={"user_id": actor_id}, actor_id=None)
        with transaction.get_connection().cursor() as cursor:
            cursor.execute("SELECT events_erase_texts(%s, %s::text[])", [actor_id, personal_text_types()])
            row = cursor.fetchone()
    return Erased(event=record.event, events_scrubbed=int(row[0]) if row else 0)


def _execute(connection: BaseDatabaseWrapper, params: dict[str, Any]) -> tuple[Any, ...] | None:
    """Run the append statement with server-side parameters, prepared once per
    pooled connection (settings.EVENTS_PREPARED_STATEMENTS): planning it costs
    more than running it. Preparing stays off for every other query of the
    connection: psycopg would otherwise remember the text of the last hundred
    client-bound queries (megabytes, for a batch of rendered emails)."""
    connection.ensure_connection()
    raw = connection.connection
    prepare = settings.EVENTS_PREPARED_STATEMENTS
    with connection.wrap_database_errors, psycopg.Cursor(raw) as cursor:
        if prepare:
            raw.prepare_threshold = 0
        try:
            cursor.execute(_INSERT, params, prepare=prepare)
        finally:
            raw.prepare_threshold = None
        return cursor.fetchone()


def _by_key(stream_id: int, actor_id: int | None, client_id: str | None) -> Event | None:
    if client_id is None:
        return None
    return Event.objects.filter(stream_id=stream_id, actor_id=actor_id, client_id=client_id).first()


def _duplicate(existing: Event, type: str, data: dict[str, Any]) -> Appended:
    if existing.type != type or existing.data != data:
        raise IdempotencyConflict("This client_id was already used for a different message.")
    return Appended(event=existing, duplicate=True)
