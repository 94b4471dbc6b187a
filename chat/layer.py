"""The chat's channel-layer contract: group names, message types, and the sends.

Every group_send of the chat goes through here:

- `room_group(room_id)` (`chat.room.<id>`, from the id, never from the Unicode
  name) hears `EVENT` messages, `{"type", "seq", "frame"}`: a committed event
  of the room and its rendered frame (`broadcast`, or `broadcast_on_commit` from
  inside a transaction), and `PRESENCE` messages, `{"type", "frame"}`: the
  room's presence frame (`presence_send`). Each process's hub subscribes once
  per room (chat.hub) and hands both to its sockets.
- `CONTROL_GROUP` hears `REVOKE` messages (`revoke_send`): rights that went, for
  every process to close the affected sockets (chat.revocation, chat.guard).

Payloads are JSON primitives only (channels_redis packs them with msgpack).
"""

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import BaseChannelLayer, get_channel_layer
from django.db import transaction

from config import metrics

logger = logging.getLogger(__name__)

EVENT = "chat.event"
PRESENCE = "chat.presence"
CONTROL_GROUP = "chat.control"
REVOKE = "chat.revoke"


def room_group(room_id: int) -> str:
    return f"chat.room.{room_id}"


async def broadcast(*, room_id: int, seq: int, frame: str, layer: BaseChannelLayer | None = None) -> None:
    """Send a committed event of a room to every process that has sockets in it.
    A failure is logged, not raised: the event is committed, and sockets fill the
    gap from the database (chat.hub's head check)."""
    try:
        await (layer or get_channel_layer()).group_send(
            room_group(room_id), {"type": EVENT, "seq": seq, "frame": frame}
        )
    except Exception:
        metrics.broadcast_failed()
        logger.warning("broadcast failed room_id=%s seq=%s", room_id, seq, exc_info=True, extra={"seq": seq})


def broadcast_on_commit(*, room_id: int, seq: int, frame: str) -> None:
    """`broadcast` once the current transaction commits (never from inside it)."""
    transaction.on_commit(lambda: async_to_sync(broadcast)(room_id=room_id, seq=seq, frame=frame))


async def presence_send(*, room_id: int, frame: str, layer: BaseChannelLayer) -> None:
    """Send a room's presence frame; the caller handles a failure (presence is advisory)."""
    await layer.group_send(room_group(room_id), {"type": PRESENCE, "frame": frame})


def revoke_send(message: dict[str, Any]) -> None:
    """Tell every process that rights went (sync, after the commit); logged, not raised."""
    try:
        async_to_sync(get_channel_layer().group_send)(CONTROL_GROUP, {"type": REVOKE, **message})
    except Exception:
        logger.warning("revocation broadcast failed %s", message, exc_info=True)
