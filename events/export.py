"""Streamed exports of the event log (CSV, JSON Lines) for auditors.

Rows come from a server-side cursor (`.iterator(chunk_size=…)`) and leave as
chunks of a few hundred rows, so a million events export in bounded memory.
Under ASGI the chunks are pulled through an async iterator on the request's
thread (Django would otherwise read a sync iterator into a list first).
"""

import csv
import io
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC
from typing import Any

from asgiref.sync import sync_to_async
from django.db.models import QuerySet

from .models import Event

FIELDS = [
    "position",
    "stream",
    "seq",
    "uuid",
    "type",
    "schema_version",
    "actor",
    "client_id",
    "created_at",
    "data",
    "content_hash",
    "hash",
]
_COLUMNS = [
    "id",
    "stream__key",
    "seq",
    "uuid",
    "type",
    "schema_version",
    "actor__username",
    "client_id",
    "created_at",
    "data",
    "content_hash",
    "hash",
]
CURSOR_CHUNK = 2000
ROWS_PER_CHUNK = 500
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/jsonl; charset=utf-8"}


def _records(qs: QuerySet[Event]) -> Iterator[dict[str, Any]]:
    rows = qs.order_by("id").values_list(*_COLUMNS).iterator(chunk_size=CURSOR_CHUNK)
    for row in rows:
        record = dict(zip(FIELDS, row, strict=True))
        record["uuid"] = str(record["uuid"])
        record["created_at"] = record["created_at"].astimezone(UTC).isoformat()
        record["content_hash"] = bytes(record["content_hash"]).hex()
        record["hash"] = bytes(record["hash"]).hex()
        yield record


def export_chunks(qs: QuerySet[Event], fmt: str) -> Iterator[bytes]:
    """The export as byte chunks; `fmt` is "csv" or "jsonl"."""
    buffer = io.StringIO()
    writer = csv.writer(buffer) if fmt == "csv" else None
    if writer is not None:
        writer.writerow(FIELDS)
    pending = 0
    for record in _records(qs):
        if writer is not None:
            record["data"] = json.dumps(record["data"], ensure_ascii=False)
            writer.writerow([record[f] if record[f] is not None else "" for f in FIELDS])
        else:
            buffer.write(json.dumps(record, ensure_ascii=False))
            buffer.write("\n")
        pending += 1
        if pending >= ROWS_PER_CHUNK:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    if buffer.tell():
        yield buffer.getvalue().encode("utf-8")


async def export_chunks_async(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Pull each chunk on the request's sync thread, where its cursor lives."""

    def pull() -> bytes | None:
        return next(chunks, None)

    step = sync_to_async(pull, thread_sensitive=True)
    while True:
        chunk = await step()
        if chunk is None:
            return
        yield chunk
