"""Verification of the log's hash chains (`manage.py verify_log`, the room admin).

Recomputes, independently of the database's `events_chain_hash`, each event's
chain hash from the previous one and its fields, checks its `content_hash`
against its data (computed by PostgreSQL from the stored jsonb), that seqs run
1, 2, 3… without a gap, and that the stream's `head_hash` is the last link.

Data erased under GDPR (`events.services.actor_erase`) no longer matches its
content hash; such a row is accepted only when it has the erased form, its type
is registered as carrying personal text, and its actor's erasure is itself
recorded in the log (an event of a type registered as recording erasures, in
the erasure stream). The registry is events.schemas; apps fill it.
"""

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models.expressions import RawSQL

from .models import Event, Stream
from .schemas import erasure_types, personal_text_types
from .services import ERASURE_STREAM

ZERO_HASH = bytes(32)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
CHUNK = 5000


@dataclass(frozen=True)
class Break:
    stream_key: str
    seq: int
    what: str
    expected: str
    found: str

    def __str__(self) -> str:
        return f"{self.stream_key} seq {self.seq}: {self.what} — expected {self.expected}, found {self.found}"


@dataclass(frozen=True)
class Verdict:
    stream_key: str
    events: int
    broken: Break | None

    @property
    def ok(self) -> bool:
        return self.broken is None


def chain_hash(
    *,
    prev: bytes,
    seq: int,
    type: str,
    schema_version: int,
    actor_id: int | None,
    client_id: str | None,
    created_at: datetime,
    content_hash: bytes,
) -> bytes:
    """The link of one event; the same definition as SQL `events_chain_hash` (migration 0004)."""
    client = "-" if client_id is None else f"{len(client_id.encode('utf-8'))}:{client_id}"
    micros = (created_at - _EPOCH) // _MICRO
    fields = [str(seq), type, str(schema_version), "" if actor_id is None else str(actor_id), client]
    fields += [str(micros), content_hash.hex()]
    return hashlib.sha256(prev + "\n".join(fields).encode("utf-8")).digest()


def erased_actor_ids() -> set[int]:
    stream_id = Stream.objects.filter(key=ERASURE_STREAM).values_list("id", flat=True).first()
    if stream_id is None:
        return set()
    records = Event.objects.filter(stream_id=stream_id, type__in=erasure_types())
    ids = records.values_list("data__user_id", flat=True)
    return {int(i) for i in ids if i is not None}


def _is_erased_form(data: object) -> bool:
    return isinstance(data, dict) and data.get("erased") is True and set(data) <= {"erased", "target_seq"}


def _rows(stream_id: int) -> Iterator[tuple[Any, ...]]:
    # A server-side cursor: a stream of millions of events is read in chunks.
    qs = (
        Event.objects.filter(stream_id=stream_id)
        .order_by("seq")
        .annotate(actual_content_hash=RawSQL("sha256(convert_to(events_event.data::text, 'UTF8'))", []))
        .values_list(
            "seq",
            "type",
            "schema_version",
            "actor_id",
            "client_id",
            "created_at",
            "data",
            "content_hash",
            "hash",
            "actual_content_hash",
        )
    )
    return qs.iterator(chunk_size=CHUNK)


def stream_verify(
    *, stream: Stream, erased: set[int] | None = None, progress: Callable[[int], None] | None = None
) -> Verdict:
    """Walk one stream's chain; the first broken link, if any."""
    if erased is None:
        erased = erased_actor_ids()
    personal = set(personal_text_types())
    prev = ZERO_HASH
    count = 0
    key = stream.key
    for seq, type_, version, actor_id, client_id, created_at, data, content, found, actual in _rows(stream.pk):
        count += 1
        content, found, actual = bytes(content), bytes(found), bytes(actual)
        if seq != count:
            return Verdict(key, count, Break(key, count, "missing event", f"seq {count}", f"seq {seq}"))
        if actual != content and not (_is_erased_form(data) and type_ in personal and actor_id in erased):
            return Verdict(key, count, Break(key, seq, "content hash", content.hex(), actual.hex()))
        expected = chain_hash(
            prev=prev,
            seq=seq,
            type=type_,
            schema_version=version,
            actor_id=actor_id,
            client_id=client_id,
            created_at=created_at,
            content_hash=content,
        )
        if expected != found:
            return Verdict(key, count, Break(key, seq, "chain hash", expected.hex(), found.hex()))
        prev = found
        if progress is not None:
            progress(1)
    if count != stream.head:
        return Verdict(key, count, Break(key, count + 1, "missing event", f"head {stream.head}", f"{count} events"))
    if bytes(stream.head_hash) != prev:
        return Verdict(key, count, Break(key, count, "stream head hash", prev.hex(), bytes(stream.head_hash).hex()))
    return Verdict(key, count, None)


def log_verify(
    *, streams: list[Stream] | None = None, progress: Callable[[int], None] | None = None
) -> Iterator[Verdict]:
    """Verify streams one by one (all of them by default), yielding each verdict."""
    erased = erased_actor_ids()
    for stream in streams if streams is not None else Stream.objects.order_by("id").iterator():
        yield stream_verify(stream=stream, erased=erased, progress=progress)
