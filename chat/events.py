"""The chat's event types and how an event is rendered for clients.

One definition validates input, is stored, and is rendered: the socket frame,
the scrollback API and (later) emails all use `message_payload`.
"""

import json
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from events.models import Event
from events.schemas import Data, EventType, register, upcast, validate_text

MESSAGE_POSTED = "chat.message.posted"


def _validate_message_posted(data: Data) -> Data:
    text = validate_text(data.get("message"), field_name="message", max_chars=settings.CHAT_MESSAGE_MAX_CHARS)
    return {"message": text}


register(EventType(name=MESSAGE_POSTED, version=1, validate=_validate_message_posted))

# The wire type of each event type (PROTOCOL.md).
WIRE_TYPES = {MESSAGE_POSTED: "chat.message"}


def iso_utc(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def message_payload(event: Event, *, room: str, username: str | None = None) -> dict[str, Any]:
    """The client-facing shape of an event (without the `replay` flag)."""
    data = upcast(event.type, event.schema_version, event.data)
    if username is None:
        username = event.actor.username if event.actor is not None else ""
    return {
        "type": WIRE_TYPES.get(event.type, event.type),
        "room": room,
        "seq": event.seq,
        "id": str(event.uuid),
        "username": username,
        "message": data.get("message", ""),
        "ts": iso_utc(event.created_at),
        "client_id": event.client_id,
    }


def render_frame(event: Event, *, room: str, replay: bool, username: str | None = None) -> str:
    """The JSON text frame of an event, encoded once and sent as is to every socket."""
    payload = message_payload(event, room=room, username=username)
    payload["replay"] = replay
    return json.dumps(payload, ensure_ascii=False)
