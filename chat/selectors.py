"""Reads of a room's messages: the current version of messages, and the auditors' timeline.

Every reader that shows message text to a member — replay, gap fill, scrollback,
emails — goes through these, so an edited message shows its latest text and a
redacted or erased one shows none. The timeline shows auditors every version.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from events.models import Event

from .events import (
    CORRECTIONS,
    MESSAGE_EDITED,
    MESSAGE_POSTED,
    MESSAGE_REDACTED,
    Current,
    event_data,
    is_erased,
    message_payload,
    render_frame,
)
from .models import MessageState


def message_states(*, stream_id: int, seqs: Iterable[int]) -> dict[int, Current]:
    """The corrected messages among `seqs` of a stream; one indexed query, none for no seqs."""
    wanted = set(seqs)
    if not wanted:
        return {}
    rows = MessageState.objects.filter(stream_id=stream_id, seq__in=wanted).values_list(
        "seq", "text", "edit_count", "redacted_at"
    )
    return {
        seq: Current(text=text, edited=edit_count > 0, redacted=redacted_at is not None)
        for seq, text, edit_count, redacted_at in rows
    }


def _message_seq(event: Event) -> int | None:
    """The seq of the posted message an event shows (itself, or an edit's target)."""
    if event.type == MESSAGE_POSTED:
        return event.seq
    if event.type in CORRECTIONS:
        target = event_data(event).get("target_seq")
        return target if isinstance(target, int) else None
    return None


def _currents(stream_id: int, events: list[Event]) -> list[Current | None]:
    seqs = [_message_seq(e) for e in events]
    states = message_states(stream_id=stream_id, seqs=[s for s in seqs if s is not None])
    return [states.get(s) if s is not None else None for s in seqs]


def events_render(*, stream_id: int, events: list[Event], room: str, replay: bool) -> list[tuple[int, str]]:
    """(seq, frame) of each event with the current version of the messages it shows."""
    currents = _currents(stream_id, events)
    return [
        (e.seq, render_frame(e, room=room, replay=replay, current=c)) for e, c in zip(events, currents, strict=True)
    ]


def events_payloads(*, stream_id: int, events: list[Event], room: str) -> list[dict[str, Any]]:
    """The scrollback API's shape of each event, with the current version of messages."""
    currents = _currents(stream_id, events)
    return [message_payload(e, room=room, current=c) for e, c in zip(events, currents, strict=True)]


def message_texts(*, stream_id: int, seqs: Iterable[int]) -> dict[int, str | None]:
    """For emails and digests: {seq: current text, or None when redacted or erased}
    of the posted messages among `seqs` (seqs that are not posted messages are left out)."""
    wanted = set(seqs)
    if not wanted:
        return {}
    states = message_states(stream_id=stream_id, seqs=wanted)
    posted = Event.objects.filter(stream_id=stream_id, seq__in=wanted, type=MESSAGE_POSTED).values_list(
        "seq", "type", "schema_version", "data"
    )
    texts: dict[int, str | None] = {}
    for seq, type_, version, data in posted:
        state = states.get(seq)
        event = Event(type=type_, schema_version=version, data=data)
        current = event_data(event)
        if is_erased(current) or (state is not None and state.redacted):
            texts[seq] = None
        elif state is not None and state.edited:
            texts[seq] = state.text
        else:
            texts[seq] = str(current.get("message", ""))
    return texts


@dataclass
class Version:
    text: str
    by: str
    at: datetime
    seq: int


@dataclass
class TimelineEntry:
    """One message as an auditor sees it: every version, and its redaction."""

    seq: int
    author: str
    at: datetime
    versions: list[Version] = field(default_factory=list)
    redacted_by: str | None = None
    redacted_at: datetime | None = None
    reason: str = ""
    erased: bool = False

    @property
    def text(self) -> str:
        return self.versions[-1].text if self.versions else ""

    @property
    def edited(self) -> bool:
        return len(self.versions) > 1


@dataclass
class Timeline:
    entries: list[TimelineEntry]
    events: int
    others: list[Event]


def room_timeline(*, stream_id: int, as_of: datetime | None) -> Timeline:
    """Replay a room's events with created_at <= as_of (all when None) into messages
    with their versions and redactions: the room exactly as it was at that moment."""
    qs = Event.objects.filter(stream_id=stream_id).select_related("actor").order_by("seq")
    if as_of is not None:
        qs = qs.filter(created_at__lte=as_of)
    entries: dict[int, TimelineEntry] = {}
    others: list[Event] = []
    count = 0
    for event in qs.iterator(chunk_size=2000):
        count += 1
        data = event_data(event)
        who = event.actor.username if event.actor is not None else "(system)"
        if event.type == MESSAGE_POSTED:
            entry = TimelineEntry(seq=event.seq, author=who, at=event.created_at, erased=is_erased(data))
            entry.versions.append(
                Version(text=str(data.get("message", "")), by=who, at=event.created_at, seq=event.seq)
            )
            entries[event.seq] = entry
            continue
        target = entries.get(data.get("target_seq", -1))
        if event.type == MESSAGE_EDITED and target is not None:
            target.erased = target.erased or is_erased(data)
            target.versions.append(
                Version(text=str(data.get("message", "")), by=who, at=event.created_at, seq=event.seq)
            )
        elif event.type == MESSAGE_REDACTED and target is not None:
            target.redacted_by, target.redacted_at = who, event.created_at
            target.reason = str(data.get("reason", ""))
        else:
            others.append(event)
    return Timeline(entries=list(entries.values()), events=count, others=others)
