"""The chat's event types, their schemas, and how an event is rendered for clients.

One definition validates input, is stored, and is rendered: the socket frames
(live, replay and gap fill) and the scrollback API all use `message_payload`.

Corrections are events of their own (`chat.message.edited`, `chat.message.redacted`)
with their own seq. Readers pass the `Corrected` state of the message an event
shows (its chat.MessageState row, read by chat.selectors); what the frame then
says follows the one rule of chat.messages, so a replayed message shows its
current version and a redacted or erased text is never rendered.
"""

import json
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from events.models import Event
from events.schemas import Data, EventType, SchemaError, register, upcast, validate_text

from .messages import Corrected, current_text, is_hidden

MESSAGE_POSTED = "chat.message.posted"
MESSAGE_EDITED = "chat.message.edited"
MESSAGE_REDACTED = "chat.message.redacted"
ROOM_ARCHIVED = "chat.room.archived"
USER_ERASED = "chat.user.erased"
REASON_MAX_CHARS = 500


def _validate_message_posted(data: Data) -> Data:
    text = validate_text(data.get("message"), field_name="message", max_chars=settings.CHAT_MESSAGE_MAX_CHARS)
    return {"message": text}


def validate_seq(value: object, *, field_name: str = "target_seq") -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise SchemaError(f"'{field_name}' must be a positive integer.")
    return value


def validate_reason(value: object) -> str:
    """Optional free text: absent or null is an empty reason."""
    if value is None:
        return ""
    return validate_text(value, field_name="reason", max_chars=REASON_MAX_CHARS, blank=True)


def _validate_message_edited(data: Data) -> Data:
    target = validate_seq(data.get("target_seq"))
    text = validate_text(data.get("message"), field_name="message", max_chars=settings.CHAT_MESSAGE_MAX_CHARS)
    return {"target_seq": target, "message": text}


def _validate_message_redacted(data: Data) -> Data:
    return {"target_seq": validate_seq(data.get("target_seq")), "reason": validate_reason(data.get("reason"))}


def _validate_room_archived(data: Data) -> Data:
    return {}


def _validate_user_erased(data: Data) -> Data:
    return {"user_id": validate_seq(data.get("user_id"), field_name="user_id")}


register(EventType(name=MESSAGE_POSTED, version=1, validate=_validate_message_posted, personal_text=True))
register(EventType(name=MESSAGE_EDITED, version=1, validate=_validate_message_edited, personal_text=True))
register(EventType(name=MESSAGE_REDACTED, version=1, validate=_validate_message_redacted, personal_text=True))
register(EventType(name=ROOM_ARCHIVED, version=1, validate=_validate_room_archived))
# Logs written before the registry hold this name: it stays chat's erasure record.
register(EventType(name=USER_ERASED, version=1, validate=_validate_user_erased, records_erasure=True))

# The wire type of each event type (PROTOCOL.md).
WIRE_TYPES = {MESSAGE_POSTED: "chat.message", MESSAGE_EDITED: "chat.edit", MESSAGE_REDACTED: "chat.redact"}
# Event types that point at a posted message of their room.
CORRECTIONS = (MESSAGE_EDITED, MESSAGE_REDACTED)


def iso_utc(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_data(event: Event) -> Data:
    return upcast(event.type, event.schema_version, event.data)


def message_payload(
    event: Event, *, room: str, username: str | None = None, current: Corrected | None = None
) -> dict[str, Any]:
    """The client-facing shape of an event (without the `replay` flag).

    `current` is the Corrected state of the message the event is about (the posted
    message itself, or the target of an edit; None when never corrected): a hidden
    message renders with an empty text, whatever the event holds.
    """
    data = event_data(event)
    if username is None:
        username = event.actor.username if event.actor is not None else ""
    payload: dict[str, Any] = {
        "type": WIRE_TYPES.get(event.type, event.type),
        "room": room,
        "seq": event.seq,
        "id": str(event.uuid),
        "username": username,
    }
    if event.type == MESSAGE_POSTED:
        shown = current_text(seq=event.seq, author_id=event.actor_id, data=data, corrected=current)
        if shown.edited:
            payload["edited"] = True
        payload["message"] = shown.text
        if shown.hidden:
            payload["redacted"] = True
    elif event.type == MESSAGE_EDITED:
        hidden = is_hidden(data, current)
        payload["target_seq"] = data.get("target_seq")
        payload["message"] = "" if hidden else data.get("message", "")
        if hidden:
            payload["redacted"] = True
    elif event.type == MESSAGE_REDACTED:
        payload["target_seq"] = data.get("target_seq")
    else:
        payload["message"] = data.get("message", "")
    payload["ts"] = iso_utc(event.created_at)
    payload["client_id"] = event.client_id
    return payload


def render_frame(
    event: Event, *, room: str, replay: bool, username: str | None = None, current: Corrected | None = None
) -> str:
    """The JSON text frame of an event, encoded once and sent as is to every socket."""
    payload = message_payload(event, room=room, username=username, current=current)
    payload["replay"] = replay
    return json.dumps(payload, ensure_ascii=False)
