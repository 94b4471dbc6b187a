"""Chat services: joining rooms, replay, posting messages, read markers.

Synchronous, keyword-only, transactional; the consumer and the views call them
through `database_sync_to_async`, one call per action.
"""

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Greatest

from events import selectors as event_selectors
from events.schemas import SchemaError
from events.services import Appended, IdempotencyConflict, StreamClosed, event_append, stream_create

from .errors import ChatError
from .events import MESSAGE_POSTED, render_frame
from .models import Membership, Room
from .selectors import events_render

_ROOM_NAME = re.compile(r"[\w-]{1,64}")


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
        return f"chat.room.{self.room_id}"


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
        raise ChatError(
            "invalid_request",
            "A room name is 1 to 64 letters, digits, '_' or '-'.",
        )
    return name


def room_join(*, user: AbstractBaseUser | AnonymousUser, name: str) -> RoomAccess:
    """Open a room for a user: a public room is created on first join and joining
    makes the user a member; a private room admits only its members."""
    name = room_name_normalize(name)
    if not user.is_authenticated:
        raise ChatError("unauthenticated", "Sign in to join a room.")
    room = Room.objects.filter(name=name).first()
    if room is None:
        room = _room_create(name=name, user_id=user.pk)
    if room.is_private:
        if not Membership.objects.filter(room=room, user_id=user.pk).exists():
            raise ChatError("forbidden", "This room is private and you are not a member.")
    else:
        Membership.objects.get_or_create(room=room, user_id=user.pk)
    return RoomAccess(
        room_id=room.pk,
        name=room.name,
        stream_id=room.stream_id,
        is_private=room.is_private,
        user_id=user.pk,
        username=user.get_username(),
    )


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
    head = event_selectors.stream_head(stream_id=access.stream_id)
    truncated = reset = False
    if since is None or since > head:
        reset = since is not None
        events = event_selectors.events_last(stream_id=access.stream_id, limit=limit, upto=head)
    else:
        after = since
        if head - since > settings.CHAT_RESUME_MAX:
            truncated = True
            after = head - settings.CHAT_RESUME_MAX
        events = event_selectors.events_after(stream_id=access.stream_id, after=after, upto=head)
    frames = [
        frame for _, frame in events_render(stream_id=access.stream_id, events=events, room=access.name, replay=True)
    ]
    return Replay(frames=frames, last_seq=head, truncated=truncated, reset=reset)


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


def read_mark(*, access: RoomAccess, seq: int) -> int:
    """Move the user's read marker forward to `seq` (never back, never past the head)."""
    head = event_selectors.stream_head(stream_id=access.stream_id)
    seq = min(seq, head)
    Membership.objects.filter(room_id=access.room_id, user_id=access.user_id).update(
        last_read_seq=Greatest(F("last_read_seq"), seq)
    )
    return seq
