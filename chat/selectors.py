"""Read side of message corrections: the current version of messages.

Every reader that shows message text to a person — replay, gap fill, scrollback,
emails, digests — goes through these, so an edited message shows its latest text
and a redacted or erased one shows none.
"""

from collections.abc import Iterable
from typing import Any

from events.models import Event

from .events import CORRECTIONS, MESSAGE_POSTED, Current, event_data, is_erased, message_payload, render_frame
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
