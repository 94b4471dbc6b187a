"""Who is in a room now, shared by every server process through Redis.

Per room, one sorted set `chat:presence:<room_id>` with one member per (user,
process), `[username, process id]` in JSON, scored by the time it expires. A
process counts its own sockets per room and user; Redis hears of a user only
when the user's first socket in this process enters the room or the last one
leaves, so a join or a leave costs O(1) and nothing when another tab of the same
user is already here. Every CHAT_PRESENCE_REFRESH_SECONDS the process renews its
members of all its rooms in one pipelined round trip (one ZADD per room): O(rooms)
per period, whatever the number of sockets. Members not renewed for
CHAT_PRESENCE_TTL_SECONDS belong to a process that died: they are pruned and the
room is told.

The room hears `{"type": "presence", "room": R, "users": [...], "count": N}`:
`count` distinct users are present, `users` are the first CHAT_PRESENCE_LIST_MAX
of them in sorted order. Changes are coalesced per process and room: at most one
frame per CHAT_PRESENCE_COALESCE_SECONDS, and in a big room at most one per
(local sockets / PRESENCE_DELIVERIES_PER_SECOND) seconds, capped at 10 s, so a
storm of a thousand joins is a handful of frames per socket. A socket whose user
is already present gets the room's last frame at once. Presence is advisory: when
Redis cannot be reached it is skipped (logged once per outage) and chat goes on.
"""

import asyncio
import json
import logging
import os
import secrets
import socket
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

import redis.asyncio as aioredis
from django.conf import settings

from .layer import presence_send
from .redis_client import redis_client
from .services import RoomAccess
from .threads import per_loop

logger = logging.getLogger(__name__)

# A room's presence frames reach at most about this many local sockets per second.
PRESENCE_DELIVERIES_PER_SECOND = 1000
MAX_INTERVAL = 10.0

PROCESS_ID = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
_ERRORS = (aioredis.RedisError, OSError)


def presence_key(room_id: int) -> str:
    return f"chat:presence:{room_id}"


def member_encode(*, username: str, process: str = PROCESS_ID) -> str:
    return json.dumps([username, process], ensure_ascii=False)


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


def presence_frame(*, room: str, users: list[str], limit: int | None = None) -> str:
    limit = settings.CHAT_PRESENCE_LIST_MAX if limit is None else limit
    return json.dumps(
        {"type": "presence", "room": room, "users": users[:limit], "count": len(users)}, ensure_ascii=False
    )


class RoomPresence:
    """This process's sockets in one room, by user, and what Redis has not heard yet."""

    def __init__(self, access: RoomAccess, layer: Any) -> None:
        self.access = access
        self.layer = layer
        self.sockets = 0
        self.users: Counter[str] = Counter()
        self.added: set[str] = set()
        self.removed: set[str] = set()
        self.frame: str | None = None
        self.flush: asyncio.Task[None] | None = None
        self.flushed_at = 0.0


class Presence:
    def __init__(self) -> None:
        self.rooms: dict[int, RoomPresence] = {}
        self.keeper: asyncio.Task[None] | None = None
        self.failing = False

    def join(self, *, layer: Any, access: RoomAccess) -> str | None:
        """Count a socket in; returns the room's last frame when its user was already
        here (else the coming frame tells it, with everyone else)."""
        room = self.rooms.get(access.room_id)
        if room is None:
            room = self.rooms[access.room_id] = RoomPresence(access, layer)
        room.sockets += 1
        room.users[access.username] += 1
        if self.keeper is None or self.keeper.done():
            self.keeper = asyncio.create_task(self._keep())
        if room.users[access.username] > 1 and room.frame is not None:
            return room.frame
        room.removed.discard(access.username)
        room.added.add(access.username)
        self._schedule(room)
        return None

    def leave(self, *, access: RoomAccess) -> None:
        room = self.rooms.get(access.room_id)
        if room is None:
            return
        room.sockets -= 1
        room.users[access.username] -= 1
        if room.users[access.username] <= 0:
            del room.users[access.username]
            room.added.discard(access.username)
            room.removed.add(access.username)
            self._schedule(room)

    def _schedule(self, room: RoomPresence) -> None:
        if room.flush is not None:
            return
        coalesce = settings.CHAT_PRESENCE_COALESCE_SECONDS
        interval = max(coalesce, min(MAX_INTERVAL, room.sockets / PRESENCE_DELIVERIES_PER_SECOND))
        wait = max(coalesce, room.flushed_at + interval - time.monotonic())
        room.flush = asyncio.create_task(self._flush_later(room, wait))

    async def _flush_later(self, room: RoomPresence, wait: float) -> None:
        if wait > 0:
            await asyncio.sleep(wait)
        # From here on, a change schedules a flush of its own.
        room.flush = None
        added, removed = room.added, room.removed
        room.added, room.removed = set(), set()
        room.flushed_at = time.monotonic()
        key = presence_key(room.access.room_id)
        now = time.time()
        ttl = settings.CHAT_PRESENCE_TTL_SECONDS
        try:
            async with redis_client().pipeline(transaction=True) as pipe:
                if added:
                    pipe.zadd(key, {member_encode(username=u): now + ttl for u in added})
                if removed:
                    pipe.zrem(key, *(member_encode(username=u) for u in removed))
                pipe.zremrangebyscore(key, "-inf", now)
                pipe.zrangebyscore(key, now, "+inf")
                # The whole set goes away once nobody has renewed it for a while.
                pipe.expire(key, int(ttl * 2) + 1)
                results = await pipe.execute()
            room.frame = presence_frame(room=room.access.name, users=users_from_members(results[-2]))
            await presence_send(room_id=room.access.room_id, frame=room.frame, layer=room.layer)
            self._recovered()
        except _ERRORS:
            self._failed("presence update")
        if room.sockets <= 0 and room.flush is None and self.rooms.get(room.access.room_id) is room:
            del self.rooms[room.access.room_id]

    async def _keep(self) -> None:
        """Renew this process's members of every room; tell a room whose dead members were pruned."""
        while self.rooms:
            await asyncio.sleep(settings.CHAT_PRESENCE_REFRESH_SECONDS)
            rooms = [room for room in self.rooms.values() if room.users]
            if not rooms:
                continue
            now = time.time()
            ttl = settings.CHAT_PRESENCE_TTL_SECONDS
            try:
                async with redis_client().pipeline(transaction=False) as pipe:
                    for room in rooms:
                        key = presence_key(room.access.room_id)
                        pipe.zadd(key, {member_encode(username=u): now + ttl for u in room.users})
                        pipe.zremrangebyscore(key, "-inf", now)
                        pipe.expire(key, int(ttl * 2) + 1)
                    results = await pipe.execute()
                self._recovered()
            except _ERRORS:
                self._failed("presence refresh")
                continue
            for i, room in enumerate(rooms):
                if results[3 * i + 1]:
                    self._schedule(room)

    def _failed(self, what: str) -> None:
        if not self.failing:
            logger.warning("%s skipped: Redis unavailable (logged once until it recovers)", what, exc_info=True)
        self.failing = True

    def _recovered(self) -> None:
        if self.failing:
            logger.info("presence: Redis reachable again")
        self.failing = False


# The presence of the running event loop (one per server process).
presence = per_loop(Presence)
