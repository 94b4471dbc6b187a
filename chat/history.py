"""Corrections and room lifecycle: edit, redact, archive — each a new event in
the room's stream, never a change to an old one — and the auditors' timeline.

Each service runs one transaction that locks the room's stream row first (the
same lock the append takes), checks, appends through events.services and writes
the chat.MessageState read model, so the read path and the log never disagree
and two corrections of one message are applied in seq order.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import transaction

from events.models import Event, Stream
from events.services import event_append

from .errors import ChatError
from .events import (
    MESSAGE_EDITED,
    MESSAGE_POSTED,
    MESSAGE_REDACTED,
    ROOM_ARCHIVED,
    event_data,
    is_erased,
    render_frame,
)
from .layer import broadcast_on_commit
from .models import Membership, MessageState, Room
from .services import Posted, RoomAccess, posted_from, room_append

logger = logging.getLogger(__name__)


def _lock_room(access: RoomAccess, client_id: str | None) -> Room:
    Stream.objects.select_for_update().filter(pk=access.stream_id).values_list("pk").get()
    room = Room.objects.get(pk=access.room_id)
    if room.is_private and not Membership.objects.filter(room=room, user_id=access.user_id).exists():
        raise ChatError("forbidden", "You are no longer a member of this room.", client_id=client_id)
    return room


def _target(access: RoomAccess, target_seq: int, client_id: str | None) -> Event:
    event = (
        Event.objects.filter(stream_id=access.stream_id, seq=target_seq, type=MESSAGE_POSTED)
        .only("id", "seq", "type", "actor_id", "created_at")
        .first()
    )
    if event is None:
        raise ChatError("invalid_message", f"No message with seq {target_seq} in this room.", client_id=client_id)
    return event


def message_edit(*, access: RoomAccess, target_seq: int, text: object, client_id: str | None) -> Posted:
    """Append chat.message.edited: only the author edits, never a redacted message,
    never in an archived room."""
    with transaction.atomic():
        room = _lock_room(access, client_id)
        if room.is_archived:
            raise ChatError("forbidden", "This room is archived.", client_id=client_id)
        target = _target(access, target_seq, client_id)
        if target.actor_id != access.user_id:
            raise ChatError("forbidden", "Only the author may edit a message.", client_id=client_id)
        state = MessageState.objects.filter(stream_id=access.stream_id, seq=target_seq).first()
        if state is not None and state.redacted_at is not None:
            raise ChatError("forbidden", "This message was redacted and cannot be edited.", client_id=client_id)
        appended = room_append(
            access=access, type=MESSAGE_EDITED, data={"target_seq": target_seq, "message": text}, client_id=client_id
        )
        if not appended.duplicate:
            event = appended.event
            state = state or MessageState(stream_id=access.stream_id, seq=target_seq, author_id=target.actor_id)
            state.text = str(event.data["message"])
            state.edited_at = event.created_at
            state.edit_count += 1
            state.save()
    return posted_from(access=access, appended=appended, client_id=client_id)


def _may_redact(access: RoomAccess, target: Event) -> bool:
    if target.actor_id == access.user_id:
        return True
    if Membership.objects.filter(room_id=access.room_id, user_id=access.user_id, is_moderator=True).exists():
        return True
    return get_user_model().objects.filter(pk=access.user_id, is_staff=True, is_active=True).exists()


def message_redact(*, access: RoomAccess, target_seq: int, reason: object, client_id: str | None) -> Posted:
    """Append chat.message.redacted: the author, a moderator of the room or staff.
    Allowed in an archived room too (moderation must stay possible)."""
    with transaction.atomic():
        _lock_room(access, client_id)
        target = _target(access, target_seq, client_id)
        if not _may_redact(access, target):
            raise ChatError(
                "forbidden", "Only the author, a moderator of this room or staff may redact it.", client_id=client_id
            )
        state = MessageState.objects.filter(stream_id=access.stream_id, seq=target_seq).first()
        if state is not None and state.redacted_at is not None:
            raise ChatError("forbidden", "This message is already redacted.", client_id=client_id)
        data = {"target_seq": target_seq, "reason": reason}
        appended = room_append(access=access, type=MESSAGE_REDACTED, data=data, client_id=client_id, amendment=True)
        if not appended.duplicate:
            state = state or MessageState(stream_id=access.stream_id, seq=target_seq, author_id=target.actor_id)
            state.text = ""  # the read model keeps no redacted text
            state.redacted_at = appended.event.created_at
            state.redacted_by_id = access.user_id
            state.save()
    return posted_from(access=access, appended=appended, client_id=client_id)


def room_archive(*, room_id: int, actor_id: int | None) -> int | None:
    """Append chat.room.archived and mark the room archived; the event's seq, or
    None when it already was. Live sockets get the event after the commit."""
    with transaction.atomic():
        room = Room.objects.select_for_update().get(pk=room_id)
        if room.is_archived:
            return None
        # Closing the stream makes the append statement refuse later messages.
        appended = event_append(stream_id=room.stream_id, type=ROOM_ARCHIVED, data={}, actor_id=actor_id, close=True)
        room.is_archived = True
        room.save(update_fields=["is_archived"])
        event = appended.event
        frame = render_frame(event, room=room.name, replay=False, username=None if actor_id else "")
        seq = event.seq
        broadcast_on_commit(room_id=room.pk, seq=seq, frame=frame)
    logger.info("room archived room=%s seq=%s by=%s", room.name, seq, actor_id)
    return seq


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
