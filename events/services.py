"""The one write path of the event store: `event_append`.

Per-stream `seq` is gapless from 1: the head row of the stream is bumped and the
event inserted in one statement, so the row lock serialises writers of a stream
and a failed insert rolls the bump back with it. The same statement computes the
event's content hash and its link in the stream's hash chain (events.verify).
"""

import json
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from .models import Event, Stream
from .schemas import event_type


class IdempotencyConflict(Exception):
    """The idempotency key was used before for different content."""


@dataclass(frozen=True)
class Appended:
    event: Event
    duplicate: bool


# One statement, one round trip: lock the stream's head row, then take the time
# (after the lock, so created_at grows with seq), hash the data's canonical jsonb
# text and chain it to the head's hash, bump head and head_hash, insert the event.
# The row lock serialises the writers of a stream, so the chain never forks.
_INSERT = """
WITH locked AS (
    SELECT id, head, head_hash FROM events_stream WHERE id = %(stream)s FOR UPDATE
), input AS (
    SELECT l.id, l.head + 1 AS seq, l.head_hash AS prev, clock_timestamp() AS ts, d.data,
           sha256(convert_to(d.data::text, 'UTF8')) AS content_hash
    FROM locked l, (SELECT %(data)s::jsonb AS data) d
), hashed AS (
    SELECT i.*, events_chain_hash(i.prev, i.seq, %(type)s::text, %(version)s::integer, %(actor)s::bigint,
                                  %(client)s::text, i.ts, i.content_hash) AS hash
    FROM input i
), head AS (
    UPDATE events_stream s SET head = h.seq, head_hash = h.hash FROM hashed h WHERE s.id = h.id
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
) -> Appended:
    """Append one event; with a client_id, at most once per (stream, actor, client_id).

    Resending the same key with the same content returns the original event
    (`duplicate=True`); the same key with other content raises IdempotencyConflict.
    """
    schema = event_type(type)
    data = schema.validate(data)
    with transaction.atomic():
        if client_id is not None:
            existing = _by_key(stream_id, actor_id, client_id)
            if existing is not None:
                return _duplicate(existing, type, data)
        try:
            with transaction.atomic(), transaction.get_connection().cursor() as cursor:
                payload = json.dumps(data, ensure_ascii=False)
                params = {
                    "stream": stream_id,
                    "type": type,
                    "version": schema.version,
                    "data": payload,
                    "actor": actor_id,
                    "client": client_id,
                }
                cursor.execute(_INSERT, params)
                row = cursor.fetchone()
        except IntegrityError:
            # A concurrent append with the same key committed first.
            if client_id is None:
                raise
            existing = _by_key(stream_id, actor_id, client_id)
            if existing is None:
                raise
            return _duplicate(existing, type, data)
        if row is None:
            raise Stream.DoesNotExist(f"No stream with id {stream_id}.")
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


def _by_key(stream_id: int, actor_id: int | None, client_id: str) -> Event | None:
    return Event.objects.filter(stream_id=stream_id, actor_id=actor_id, client_id=client_id).first()


def _duplicate(existing: Event, type: str, data: dict[str, Any]) -> Appended:
    if existing.type != type or existing.data != data:
        raise IdempotencyConflict("This client_id was already used for a different message.")
    return Appended(event=existing, duplicate=True)
