"""Per-process watch over the heads of the rooms that have sockets here.

The channel layer is at-most-once: a lost broadcast shows as a jump in `seq` at
the next event, but the last event of a burst has no successor to reveal its
loss. Every CHAT_HEAD_CHECK_SECONDS this watcher reads the heads of its rooms
in one query; a socket still behind a head seen one tick earlier is sent the
missing events from the database, read once per room.
"""

import asyncio
import logging
import weakref
from typing import Protocol

from channels.db import database_sync_to_async
from django.conf import settings

from events.selectors import stream_heads

from .services import RoomAccess, room_frames

logger = logging.getLogger(__name__)


class Subscriber(Protocol):
    access: RoomAccess
    last_sent: int
    # The head this watcher saw on its previous tick, or None.
    watched_head: int | None

    async def deliver(self, frames: list[tuple[int, str]]) -> None: ...


class HeadWatcher:
    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.rooms: dict[int, set[Subscriber]] = {}
        self.task: asyncio.Task[None] | None = None

    def add(self, sub: Subscriber) -> None:
        sub.watched_head = None
        self.rooms.setdefault(sub.access.stream_id, set()).add(sub)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

    def discard(self, sub: Subscriber) -> None:
        subs = self.rooms.get(sub.access.stream_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self.rooms[sub.access.stream_id]

    async def _run(self) -> None:
        failing = False
        while self.rooms:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
            except Exception:
                # Once per outage, not every tick.
                if not failing:
                    logger.exception("head check failed; retrying every %ss", self.interval)
                failing = True
            else:
                if failing:
                    logger.info("head check recovered")
                failing = False

    async def check(self) -> None:
        if not self.rooms:
            return
        heads = await database_sync_to_async(stream_heads, thread_sensitive=False)(stream_ids=list(self.rooms))
        for stream_id, head in heads.items():
            behind = []
            for sub in list(self.rooms.get(stream_id, ())):
                seen, sub.watched_head = sub.watched_head, head
                if seen is not None and sub.last_sent < seen:
                    behind.append((sub, seen))
            if behind:
                await self._catch_up(behind)

    async def _catch_up(self, behind: list[tuple[Subscriber, int]]) -> None:
        access = behind[0][0].access
        after = min(sub.last_sent for sub, _ in behind)
        upto = max(seen for _, seen in behind)
        logger.info(
            "delivering lost broadcasts room=%s seq=%s..%s sockets=%s", access.name, after + 1, upto, len(behind)
        )
        frames = await database_sync_to_async(room_frames, thread_sensitive=False)(
            access=access, after=after, upto=upto
        )
        for sub, seen in behind:
            await sub.deliver([f for f in frames if f[0] <= seen])


_watchers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, HeadWatcher]" = weakref.WeakKeyDictionary()


def watcher() -> HeadWatcher:
    """The watcher of the running event loop (one per server process)."""
    loop = asyncio.get_running_loop()
    found = _watchers.get(loop)
    if found is None:
        found = HeadWatcher(settings.CHAT_HEAD_CHECK_SECONDS)
        _watchers[loop] = found
    return found
