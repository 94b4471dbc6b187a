"""Chat services: joining rooms, replay, posting and correcting messages,
archiving rooms, read markers.

Synchronous, keyword-only, transactional; the consumer, the views and the admin
call them (the consumer through `database_sync_to_async`), one call per action.

Corrections (edit, redact) and archiving are new events in the room's stream,
never a change to an old one. Each runs one transaction that locks the room's
stream row first (the same lock the append takes), checks, appends through
events.services and writes the chat.MessageState read model, so the read path
and the log never disagree and two corrections of one message are applied in
seq order.
"""

import logging
import re
import time
import unicodedata
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils.translation import gettext_noop

from config import metrics
from events import selectors as event_selectors
from events.models import Event, Stream
from events.schemas import SchemaError
from events.services import Appended, IdempotencyConflict, StreamClosed, event_append, stream_create

from .errors import ChatError
from .events import MESSAGE_EDITED, MESSAGE_POSTED, MESSAGE_REDACTED, ROOM_ARCHIVED, render_frame
from .layer import broadcast_on_commit, room_group
from .models import Membership, MessageState, Room
from .selectors import events_render

logger = logging.getLogger(__name__)

_ROOM_NAME = re.compile(r"[\w-]{1,64}")
# The rule above as a person reads it: in English on the wire (PROTOCOL.md), and
# marked for translation so that the pages show it in the reader's language.
ROOM_NAME_RULE = gettext_noop("A room name is 1 to 64 letters, digits, '_' or '-'.")


@dataclass(frozen=True)
class RoomAccess:
    """What a socket needs to know about its room, checked once at join."""

    room_id: int
    name: str
    stream_id: int
    is_private: bool
    user_id: int
    username: str

    @property
    def group(self) -> str:
        return room_group(self.room_id)


@dataclass(frozen=True)
class Replay:
    frames: list[str]
    last_seq: int
    truncated: bool
    reset: bool


@dataclass(frozen=True)
class Posted:
    seq: int
    id: str
    frame: str
    client_id: str | None
    duplicate: bool


def room_name_normalize(raw: str) -> str:
    """NFC-normalise a room name and check it: 1–64 letters, digits, `_` or `-`.
    Invisible and direction-changing characters (Unicode format characters, such
    as U+202E or U+200B) are refused by name: they make one room look like another."""
    name = unicodedata.normalize("NFC", raw)
    hidden = next((ch for ch in name[:65] if unicodedata.category(ch) == "Cf"), None)
    if hidden is not None:
        raise ChatError(
            "invalid_request",
            f"A room name may not contain invisible or direction-changing characters (U+{ord(hidden):04X}).",
        )
    if not _ROOM_NAME.fullmatch(name):
        raise ChatError("invalid_request", ROOM_NAME_RULE)
    return name


def room_join(*, user: AbstractBaseUser | AnonymousUser, name: str) -> RoomAccess:
    """Open a room for a user: a public room is created on first join and joining
    makes the user a member; a private room admits only its members."""
    (result,) = rooms_join(requests=[(user, name)])
    if isinstance(result, ChatError):
        raise result
    return result


def rooms_join(*, requests: list[tuple[AbstractBaseUser | AnonymousUser, str]]) -> list[RoomAccess | ChatError]:
    """`room_join` for many (user, room name) pairs at once, each answered on its own:
    one query for the rooms, one for private memberships and one insert for new
    public memberships, however many sockets join."""
    results: list[RoomAccess | ChatError | None] = [None] * len(requests)
    wanted: dict[int, tuple[AbstractBaseUser, str]] = {}
    for i, (user, raw) in enumerate(requests):
        try:
            name = room_name_normalize(raw)
            if not user.is_authenticated:
                raise ChatError("unauthenticated", "Sign in to join a room.")
        except ChatError as exc:
            results[i] = exc
            continue
        wanted[i] = (user, name)
    rooms = {room.name: room for room in Room.objects.filter(name__in={name for _, name in wanted.values()})}
    for user, name in wanted.values():
        if name not in rooms:
            rooms[name] = _room_create(name=name, user_id=user.pk)
    private = [room.pk for room in rooms.values() if room.is_private]
    members = set(
        Membership.objects.filter(room_id__in=private, user_id__in={u.pk for u, _ in wanted.values()}).values_list(
            "room_id", "user_id"
        )
        if private
        else ()
    )
    joined = set()
    for i, (user, name) in wanted.items():
        room = rooms[name]
        if room.is_private and (room.pk, user.pk) not in members:
            results[i] = ChatError("forbidden", "This room is private and you are not a member.", user_id=user.pk)
            continue
        if not room.is_private:
            joined.add((room.pk, user.pk))
        results[i] = RoomAccess(
            room_id=room.pk,
            name=room.name,
            stream_id=room.stream_id,
            is_private=room.is_private,
            user_id=user.pk,
            username=user.get_username(),
        )
    if joined:
        Membership.objects.bulk_create(
            [Membership(room_id=r, user_id=u) for r, u in sorted(joined)], ignore_conflicts=True
        )
    return [r for r in results if r is not None]


def room_readable(*, user: AbstractBaseUser | AnonymousUser, name: str) -> Room:
    """The room if the user may read it (without joining or creating it)."""
    name = room_name_normalize(name)
    if not user.is_authenticated:
        raise ChatError("unauthenticated", "Sign in to read this room.")
    room = Room.objects.filter(name=name).first()
    if room is None:
        raise ChatError("not_found", "There is no room with this name.")
    if room.is_private and not Membership.objects.filter(room=room, user_id=user.pk).exists():
        raise ChatError("forbidden", "This room is private and you are not a member.")
    return room


def _room_create(*, name: str, user_id: int) -> Room:
    try:
        with transaction.atomic():
            stream = stream_create(key=f"room:{name}")
            return Room.objects.create(name=name, stream=stream, created_by_id=user_id)
    except IntegrityError:
        # Another socket created it at the same moment.
        return Room.objects.get(name=name)


def room_replay(*, access: RoomAccess, since: int | None, limit: int) -> Replay:
    """The frames a socket gets on join: the last `limit` events, or those after `since`."""
    return rooms_replay(requests=[(access, since, limit)])[0]


def rooms_replay(*, requests: list[tuple[RoomAccess, int | None, int]]) -> list[Replay]:
    """`room_replay` for many sockets at once: one query for the heads, and per room
    one read and one rendering of the events any of its sockets needs (seq is
    gapless, so each socket's replay is a slice of its room's)."""
    started = time.perf_counter()
    heads = event_selectors.stream_heads(stream_ids=list({access.stream_id for access, _, _ in requests}))
    plans = []
    for access, since, limit in requests:
        head = heads[access.stream_id]
        truncated = reset = False
        if since is None or since > head:
            reset = since is not None
            after = max(head - max(limit, 0), 0)
        else:
            after = since
            if head - since > settings.CHAT_RESUME_MAX:
                truncated = True
                after = head - settings.CHAT_RESUME_MAX
        plans.append((access, after, head, truncated, reset))
    frames: dict[int, list[tuple[int, str]]] = {}
    for stream_id, head in heads.items():
        after = min(plan_after for access, plan_after, *_ in plans if access.stream_id == stream_id)
        if after < head:
            room = next(access.name for access, *_ in plans if access.stream_id == stream_id)
            events = event_selectors.events_after(stream_id=stream_id, after=after, upto=head)
            frames[stream_id] = events_render(stream_id=stream_id, events=events, room=room, replay=True)
    took = time.perf_counter() - started
    for _ in requests:  # each socket of the batch waited this long for its replay
        metrics.replay_read(seconds=took)
    return [
        Replay(
            frames=[frame for seq, frame in frames.get(access.stream_id, ()) if seq > after],
            last_seq=head,
            truncated=truncated,
            reset=reset,
        )
        for access, after, head, truncated, reset in plans
    ]


def room_frames(*, access: RoomAccess, after: int, upto: int) -> list[tuple[int, str]]:
    """Live frames for seq in (after, upto]: what a socket missed from the channel layer."""
    events = event_selectors.events_after(stream_id=access.stream_id, after=after, upto=upto)
    return events_render(stream_id=access.stream_id, events=events, room=access.name, replay=False)


def message_post(*, access: RoomAccess, text: object, client_id: str | None) -> Posted:
    """Append a message to the room's log; idempotent per (room, user, client_id)."""
    if access.is_private and not Membership.objects.filter(room_id=access.room_id, user_id=access.user_id).exists():
        raise ChatError("forbidden", "You are no longer a member of this room.", client_id=client_id)
    # One statement in autocommit: an archived room's stream is closed, so the
    # append itself refuses, race-free against room_archive.
    appended = room_append(access=access, type=MESSAGE_POSTED, data={"message": text}, client_id=client_id)
    return posted_from(access=access, appended=appended, client_id=client_id)


def room_append(
    *, access: RoomAccess, type: str, data: dict[str, Any], client_id: str | None, amendment: bool = False
) -> Appended:
    """Append an event by this socket's user to the room's log; the store's
    refusals become the protocol's error codes."""
    try:
        return event_append(
            stream_id=access.stream_id,
            type=type,
            data=data,
            actor_id=access.user_id,
            client_id=client_id,
            amendment=amendment,
        )
    except StreamClosed as exc:
        raise ChatError("forbidden", "This room is archived.", client_id=client_id) from exc
    except SchemaError as exc:
        raise ChatError("invalid_message", str(exc), client_id=client_id) from exc
    except IdempotencyConflict as exc:
        raise ChatError("conflict", str(exc), client_id=client_id) from exc


def posted_from(*, access: RoomAccess, appended: Appended, client_id: str | None) -> Posted:
    """What the sender is acked with and the room is sent, for an appended event."""
    event = appended.event
    return Posted(
        seq=event.seq,
        id=str(event.uuid),
        frame=render_frame(event, room=access.name, replay=False, username=access.username),
        client_id=client_id,
        duplicate=appended.duplicate,
    )


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


def read_mark(*, access: RoomAccess, seq: int) -> int:
    """Move the user's read marker forward to `seq` (never back, never past the head)."""
    head = event_selectors.stream_head(stream_id=access.stream_id)
    seq = min(seq, head)
    Membership.objects.filter(room_id=access.room_id, user_id=access.user_id).update(
        last_read_seq=Greatest(F("last_read_seq"), seq)
    )
    return seq
