"""The one write path of the event store: `event_append`.

Per-stream `seq` is gapless from 1: the head row of the stream is bumped and the
event inserted in one statement, so the row lock serialises writers of a stream
and a failed insert rolls the bump back with it.
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


_INSERT = """
WITH head AS (
    UPDATE events_stream SET head = head + 1 WHERE id = %s RETURNING head
)
INSERT INTO events_event (stream_id, seq, uuid, type, schema_version, data, actor_id, client_id, created_at)
SELECT %s, head.head, gen_random_uuid(), %s, %s, %s::jsonb, %s, %s, clock_timestamp() FROM head
RETURNING id, seq, uuid, created_at, txid
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
                cursor.execute(_INSERT, [stream_id, stream_id, type, schema.version, payload, actor_id, client_id])
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
        event_id, seq, event_uuid, created_at, txid = row
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
        )
        return Appended(event=event, duplicate=False)


def _by_key(stream_id: int, actor_id: int | None, client_id: str) -> Event | None:
    return Event.objects.filter(stream_id=stream_id, actor_id=actor_id, client_id=client_id).first()


def _duplicate(existing: Event, type: str, data: dict[str, Any]) -> Appended:
    if existing.type != type or existing.data != data:
        raise IdempotencyConflict("This client_id was already used for a different message.")
    return Appended(event=existing, duplicate=True)
