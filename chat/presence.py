"""Who is in a room now, shared by every server process through Redis.

One sorted set per room, `chat:presence:<room_id>`: one member per open socket
(username + channel name, so a second tab of the same user is its own entry)
scored by the time it expires. Each socket refreshes its entry every
CHAT_PRESENCE_REFRESH_SECONDS; an entry older than CHAT_PRESENCE_TTL_SECONDS
belongs to a socket whose process died, and is ignored and pruned.

The room hears a `presence` frame only when its set of usernames changes (a
join, a leave, or the expiry of a dead process's entries), never per refresh:
`{"type": "presence", "room": R, "users": [sorted usernames]}`. Changes within
CHAT_PRESENCE_COALESCE_SECONDS in one process go out as one frame carrying the
list as it is then, so a burst of joins is not a frame per join per socket.
Presence is advisory: when Redis cannot be reached it is skipped, and chat
delivery goes on.
"""

import asyncio
import json
import logging
import time
import weakref
from collections.abc import Iterable
from typing import Any

import redis.asyncio as aioredis
from django.conf import settings

from .redis_client import redis_client
from .services import RoomAccess

logger = logging.getLogger(__name__)

# The channel-layer message type; ChatConsumer.chat_presence sends its frame on.
MESSAGE_TYPE = "chat.presence"

_ERRORS = (aioredis.RedisError, OSError)
# Per event loop: the rooms whose presence broadcast is scheduled.
_scheduled: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, asyncio.Task[None]]]" = (
    weakref.WeakKeyDictionary()
)
# Strong references to scheduled broadcasts until they finish (the loop keeps only weak ones).
_running: "set[asyncio.Task[None]]" = set()


def presence_key(room_id: int) -> str:
    return f"chat:presence:{room_id}"


def member_encode(*, username: str, channel: str) -> str:
    return json.dumps([username, channel], ensure_ascii=False)


def users_from_members(members: Iterable[object]) -> list[str]:
    """The sorted distinct usernames of the live members."""
    names = set()
    for member in members:
        text = member.decode() if isinstance(member, bytes) else str(member)
        try:
            names.add(str(json.loads(text)[0]))
        except (ValueError, IndexError, TypeError):
            continue
    return sorted(names)


def presence_frame(*, room: str, users: list[str]) -> str:
    return json.dumps({"type": "presence", "room": room, "users": users}, ensure_ascii=False)


async def _update(access: RoomAccess, channel: str, *, present: bool) -> tuple[list[str], list[str], int]:
    """Add (refresh) or remove one socket's entry and prune expired ones, atomically.

    Returns the usernames before and after, and how many expired entries were pruned."""
    now = time.time()
    ttl = settings.CHAT_PRESENCE_TTL_SECONDS
    key = presence_key(access.room_id)
    member = member_encode(username=access.username, channel=channel)
    async with redis_client().pipeline(transaction=True) as pipe:
        # "Before" includes expired entries: the room may still be showing them.
        pipe.zrange(key, 0, -1)
        pipe.zremrangebyscore(key, "-inf", now)
        if present:
            pipe.zadd(key, {member: now + ttl})
        else:
            pipe.zrem(key, member)
        pipe.zrangebyscore(key, now, "+inf")
        # The whole set goes away once nobody has refreshed it for a while.
        pipe.expire(key, int(ttl * 2) + 1)
        before, pruned, _, after, _ = await pipe.execute()
    return users_from_members(before), users_from_members(after), int(pruned)


async def _live_users(room_id: int) -> list[str]:
    return users_from_members(await redis_client().zrangebyscore(presence_key(room_id), time.time(), "+inf"))


async def _broadcast(layer: Any, access: RoomAccess, users: list[str]) -> None:
    frame = presence_frame(room=access.name, users=users)
    await layer.group_send(access.group, {"type": MESSAGE_TYPE, "frame": frame})


async def _announce(layer: Any, access: RoomAccess, users: list[str]) -> None:
    """Tell the room its users changed: now, or once for all changes in the coalescing window."""
    delay = settings.CHAT_PRESENCE_COALESCE_SECONDS
    if delay <= 0:
        await _broadcast(layer, access, users)
        return
    loop = asyncio.get_running_loop()
    scheduled = _scheduled.setdefault(loop, {})
    if access.room_id not in scheduled:
        task = loop.create_task(_announce_later(layer, access, delay, scheduled))
        scheduled[access.room_id] = task
        _running.add(task)
        task.add_done_callback(_running.discard)


async def _announce_later(
    layer: Any, access: RoomAccess, delay: float, scheduled: dict[int, "asyncio.Task[None]"]
) -> None:
    await asyncio.sleep(delay)
    # Unscheduled before reading: a change from now on schedules a frame of its own.
    scheduled.pop(access.room_id, None)
    try:
        await _broadcast(layer, access, await _live_users(access.room_id))
    except _ERRORS:
        logger.warning("presence broadcast skipped: Redis unavailable room=%s", access.name)


async def presence_join(*, layer: Any, access: RoomAccess, channel: str) -> str | None:
    """Record a socket as present; tell the room if its users changed.

    Returns the frame for the joining socket itself (None when Redis is down)."""
    try:
        before, after, _ = await _update(access, channel, present=True)
        if before != after:
            await _announce(layer, access, after)
    except _ERRORS:
        logger.warning("presence join skipped: Redis unavailable room=%s", access.name, exc_info=True)
        return None
    return presence_frame(room=access.name, users=after)


async def presence_leave(*, layer: Any, access: RoomAccess, channel: str) -> None:
    """Remove a socket's entry; tell the room if its users changed."""
    try:
        before, after, _ = await _update(access, channel, present=False)
        if before != after:
            await _announce(layer, access, after)
    except _ERRORS:
        logger.warning("presence leave skipped: Redis unavailable room=%s", access.name, exc_info=True)


async def presence_keep(*, layer: Any, access: RoomAccess, channel: str) -> None:
    """Refresh a socket's entry until cancelled. Whoever prunes the entries of a
    dead process tells the room (the prune is atomic, so only one socket does)."""
    while True:
        await asyncio.sleep(settings.CHAT_PRESENCE_REFRESH_SECONDS)
        try:
            before, after, pruned = await _update(access, channel, present=True)
            if pruned and before != after:
                await _announce(layer, access, after)
        except _ERRORS:
            logger.warning("presence refresh skipped: Redis unavailable room=%s", access.name)
