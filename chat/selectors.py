"""Reads of a room's messages: frames and scrollback with each message's current
version, the current text of messages for emails, and the auditors' timeline.

Every reader that shows message text goes through chat.messages' rule: members
(replay, gap fill, scrollback, mention emails) see an edited message's latest
text and nothing of a redacted or erased one; auditors (the timeline) see every
version and the redaction, but never an erased text (the log no longer has it).
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Q

from events.models import Event

from .events import (
    CORRECTIONS,
    MESSAGE_EDITED,
    MESSAGE_POSTED,
    MESSAGE_REDACTED,
    event_data,
    message_payload,
    render_frame,
)
from .messages import Corrected, CurrentText, corrected_from_row, current_text
from .models import MessageState


def _by_stream(messages: Iterable[tuple[int, int]]) -> Q | None:
    """A filter on (stream_id, seq) pairs: one indexed range per stream."""
    seqs: dict[int, set[int]] = {}
    for stream_id, seq in messages:
        seqs.setdefault(stream_id, set()).add(seq)
    if not seqs:
        return None
    where = Q()
    for stream_id, wanted in seqs.items():
        where |= Q(stream_id=stream_id, seq__in=wanted)
    return where


def message_states(*, messages: Iterable[tuple[int, int]]) -> dict[tuple[int, int], Corrected]:
    """The corrected messages among (stream_id, seq) pairs; one indexed query, none for no pairs."""
    where = _by_stream(messages)
    if where is None:
        return {}
    rows = MessageState.objects.filter(where).values_list("stream_id", "seq", "text", "edit_count", "redacted_at")
    found = {
        (stream_id, seq): corrected_from_row(text, edit_count, redacted_at)
        for stream_id, seq, text, edit_count, redacted_at in rows
    }
    return {key: corrected for key, corrected in found.items() if corrected is not None}


def current_texts(*, messages: Iterable[tuple[int, int]]) -> dict[tuple[int, int], CurrentText]:
    """The current text of the posted messages among (stream_id, seq) pairs, in two
    queries; pairs that are not posted messages are left out."""
    wanted = set(messages)
    where = _by_stream(wanted)
    if where is None:
        return {}
    states = message_states(messages=wanted)
    posted = Event.objects.filter(where, type=MESSAGE_POSTED).only(
        "stream", "seq", "type", "schema_version", "data", "actor"
    )
    return {
        (e.stream_id, e.seq): current_text(
            seq=e.seq, author_id=e.actor_id, data=event_data(e), corrected=states.get((e.stream_id, e.seq))
        )
        for e in posted
        if (e.stream_id, e.seq) in wanted
    }


def _message_seq(event: Event) -> int | None:
    """The seq of the posted message an event shows (itself, or an edit's target)."""
    if event.type == MESSAGE_POSTED:
        return event.seq
    if event.type in CORRECTIONS:
        target = event_data(event).get("target_seq")
        return target if isinstance(target, int) else None
    return None


def _currents(stream_id: int, events: list[Event]) -> list[Corrected | None]:
    seqs = [_message_seq(e) for e in events]
    states = message_states(messages=[(stream_id, s) for s in seqs if s is not None])
    return [states.get((stream_id, s)) if s is not None else None for s in seqs]


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
    data: dict[str, Any]
    versions: list[Version] = field(default_factory=list)
    redacted_by: str | None = None
    redacted_at: datetime | None = None
    reason: str = ""

    @property
    def current(self) -> CurrentText:
        """What a member of the room saw of the message at the timeline's moment."""
        corrected = Corrected(text=self.text, edited=len(self.versions) > 1, redacted=self.redacted_at is not None)
        return current_text(seq=self.seq, author_id=None, data=self.data, corrected=corrected)

    @property
    def text(self) -> str:
        """The latest version, redacted or not (auditors see it)."""
        return self.versions[-1].text if self.versions else ""

    @property
    def edited(self) -> bool:
        return self.current.edited

    @property
    def erased(self) -> bool:
        return self.current.erased


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
            entry = TimelineEntry(seq=event.seq, author=who, at=event.created_at, data=data)
            entry.versions.append(
                Version(text=str(data.get("message", "")), by=who, at=event.created_at, seq=event.seq)
            )
            entries[event.seq] = entry
            continue
        target = entries.get(data.get("target_seq", -1))
        if event.type == MESSAGE_EDITED and target is not None:
            target.versions.append(
                Version(text=str(data.get("message", "")), by=who, at=event.created_at, seq=event.seq)
            )
        elif event.type == MESSAGE_REDACTED and target is not None:
            target.redacted_by, target.redacted_at = who, event.created_at
            target.reason = str(data.get("reason", ""))
        else:
            others.append(event)
    return Timeline(entries=list(entries.values()), events=count, others=others)
