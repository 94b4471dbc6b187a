"""Per-process fan-out of room events to the sockets of this process.

Each process subscribes ONCE per room to the room's channel-layer group (with a
channel of its own) and hands every broadcast to its local sockets directly,
instead of one subscription, one queue and one dispatch per socket. A socket
whose next expected seq is the broadcast's gets it at once; any other case goes
through the socket's own ordered `deliver`, which drops duplicates and fills
gaps from the database.

Broadcasts of one room can arrive out of order (two senders commit in one order
and publish in the other, or publish from two processes). The room puts them
back in order before its sockets see them: an event ahead of the next expected
seq is held until the missing one arrives, or for REORDER_WAIT at most; then
the room reads what is still missing from the database once, for all its
sockets, instead of each socket filling the same gap.

The channel layer is at-most-once: a lost broadcast shows as a jump in `seq` at
the next event, but the last event of a burst has no successor to reveal its
loss. So every CHAT_HEAD_CHECK_SECONDS the hub reads the heads of its rooms in
one query; a socket still behind a head seen one tick earlier is sent the
missing events from the database, read once per room.
"""

import asyncio
import logging
from typing import Any, Protocol

from channels.layers import BaseChannelLayer
from django.conf import settings

from config import metrics
from events.selectors import stream_heads

from .layer import EVENT, PRESENCE
from .services import RoomAccess, room_frames
from .threads import db, per_loop

logger = logging.getLogger(__name__)

# How long a room holds an early event for the one before it (seconds).
REORDER_WAIT = 0.05


class Socket(Protocol):
    access: RoomAccess | None
    last_sent: int
    # The head the hub saw on its previous tick, or None.
    watched_head: int | None

    def offer(self, seq: int, frame: str | bytes) -> None: ...

    def chat_presence(self, frame: bytes) -> None: ...

    async def deliver(self, frames: list[tuple[int, str]]) -> None: ...


class Room:
    """The sockets of one room in this process and the subscription they share."""

    def __init__(self, layer: BaseChannelLayer, access: RoomAccess) -> None:
        self.layer = layer
        self.access = access
        self.sockets: set[Socket] = set()
        self.channel: str | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.task: asyncio.Task[None] | None = None
        # The highest seq offered in order, the events held ahead of it, and when
        # the oldest of those stops waiting.
        self.cursor: int | None = None
        self.held: dict[int, str] = {}
        self.deadline = 0.0
        # Set while the room has no socket: when it fires, the room unsubscribes.
        self.linger: asyncio.TimerHandle | None = None
        # The head at the last check, and whether every socket had it then (the
        # next check skips the room while that holds: idle rooms cost no work).
        self.checked_head: int | None = None
        self.caught_up = False

    async def subscribe(self) -> None:
        try:
            self.channel = await self.layer.new_channel()
            await self.layer.group_add(self.access.group, self.channel)
            self.task = asyncio.create_task(self._receive(self.channel))
            self.ready.set_result(None)
        except BaseException as exc:
            self.ready.set_exception(exc)
            raise

    async def unsubscribe(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.channel is not None:
            await self.layer.group_discard(self.access.group, self.channel)

    async def _receive(self, channel: str) -> None:
        while True:
            try:
                if self.held:
                    timeout = self.deadline - asyncio.get_running_loop().time()
                    message = await asyncio.wait_for(self.layer.receive(channel), max(timeout, 0))
                else:
                    message = await self.layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except TimeoutError:
                await self._fill()
                continue
            except Exception:
                logger.warning("room subscription interrupted room=%s", self.access.name, exc_info=True)
                await asyncio.sleep(0.5)
                continue
            try:
                if message.get("type") == EVENT:
                    await self._event(message["seq"], message["frame"])
                else:
                    await self._forward(message)
            except Exception:
                # One bad socket or message must not leave the room deaf.
                logger.exception("room fan-out failed room=%s type=%s", self.access.name, message.get("type"))

    async def _event(self, seq: int, frame: str) -> None:
        if self.cursor is None or seq <= self.cursor:
            # The room's first event, or one older than the cursor: each socket
            # sends or drops it by its own last seq.
            self.cursor = max(seq, self.cursor or 0)
            await self._offer(seq, frame)
        elif seq == self.cursor + 1:
            await self._offer(seq, frame)
            self.cursor = seq
            await self._release()
        else:
            if not self.held:
                self.deadline = asyncio.get_running_loop().time() + REORDER_WAIT
            self.held[seq] = frame

    async def _release(self) -> None:
        """Offer the held events that follow the cursor without a gap."""
        assert self.cursor is not None
        while (frame := self.held.pop(self.cursor + 1, None)) is not None:
            self.cursor += 1
            await self._offer(self.cursor, frame)
        if self.held:
            self.deadline = asyncio.get_running_loop().time() + REORDER_WAIT

    async def _fill(self) -> None:
        """The event before the held ones did not arrive: read the gap once."""
        assert self.cursor is not None
        upto = min(self.held) - 1
        metrics.gap_filled(kind="room", room=self.access.name, after=self.cursor, upto=upto)
        try:
            missing = await db(room_frames)(access=self.access, after=self.cursor, upto=upto)
        except Exception:
            logger.warning("gap fill failed room=%s; sockets fill it themselves", self.access.name, exc_info=True)
            missing = []
        for seq, frame in missing:
            await self._offer(seq, frame)
        # Past the gap even if the read failed: a socket still behind fills its own.
        self.cursor = upto
        await self._release()

    async def _offer(self, seq: int, frame: str) -> None:
        payload = frame.encode()  # once per event, not once per socket
        metrics.frames_delivered(len(self.sockets))
        for sock in list(self.sockets):
            # Returns without suspending: a socket that must wait for a gap fill
            # does so in a task of its own.
            sock.offer(seq, payload)

    async def _forward(self, message: dict[str, Any]) -> None:
        """Any other room message (presence) goes to each socket, encoded once."""
        if message.get("type") != PRESENCE:
            logger.warning("no handler for room message type %s", message.get("type"))
            return
        payload = message["frame"].encode()
        for sock in list(self.sockets):
            sock.chat_presence(payload)


class Hub:
    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.rooms: dict[int, Room] = {}
        # Room name -> stream id of the rooms in `rooms`.
        self.names: dict[str, int] = {}
        # Sockets of this process past the admission check (CHAT_MAX_SOCKETS).
        self.open_sockets = 0
        self.watch: asyncio.Task[None] | None = None

    async def join(self, layer: BaseChannelLayer, sock: Socket, access: RoomAccess) -> None:
        """Register a socket; returns once this process receives the room's broadcasts."""
        sock.watched_head = None
        room = self.rooms.get(access.stream_id)
        if room is None:
            room = self.rooms[access.stream_id] = Room(layer, access)
            self.names[access.name] = access.stream_id
            room.sockets.add(sock)
            try:
                await room.subscribe()
            except BaseException:
                room.sockets.discard(sock)
                self._forget(room)
                raise
        else:
            self._keep(room)
            room.sockets.add(sock)
            room.caught_up = False
            await asyncio.shield(room.ready)
        if self.watch is None or self.watch.done():
            self.watch = asyncio.create_task(self._watch())

    def attach(self, name: str, sock: Socket) -> RoomAccess | None:
        """Register a socket in a room this process already receives, found by its
        (normalised) name: the room's broadcasts reach the socket from now on, so its
        replay may be read in the same database call as its rights. None when the
        room is not live here (the socket then goes through `join`)."""
        stream_id = self.names.get(name)
        room = self.rooms.get(stream_id) if stream_id is not None else None
        if room is None or not room.ready.done() or room.ready.cancelled() or room.ready.exception() is not None:
            return None
        self._keep(room)
        sock.watched_head = None
        room.sockets.add(sock)
        room.caught_up = False
        return room.access

    async def leave(self, sock: Socket, access: RoomAccess) -> None:
        """Unregister a socket. A room left empty stays subscribed for
        CHAT_ROOM_LINGER_SECONDS, so a reconnect (a page reload, a deploy's storm)
        finds it live and joins with one database call."""
        room = self.rooms.get(access.stream_id)
        if room is None:
            return
        room.sockets.discard(sock)
        if room.sockets or room.linger is not None:
            return
        linger = settings.CHAT_ROOM_LINGER_SECONDS
        if linger > 0:
            room.linger = asyncio.get_running_loop().call_later(linger, self._expire, room)
        elif self._forget(room):
            await room.unsubscribe()

    def _keep(self, room: Room) -> None:
        if room.linger is not None:
            room.linger.cancel()
            room.linger = None

    def _expire(self, room: Room) -> None:
        room.linger = None
        if not room.sockets and self._forget(room):
            task = asyncio.create_task(room.unsubscribe())
            _unsubscribing.add(task)
            task.add_done_callback(_unsubscribing.discard)

    def _forget(self, room: Room) -> bool:
        """Drop an empty room from the hub; False if it is not this hub's current one."""
        if self.rooms.get(room.access.stream_id) is not room:
            return False
        del self.rooms[room.access.stream_id]
        if self.names.get(room.access.name) == room.access.stream_id:
            del self.names[room.access.name]
        return True

    async def _watch(self) -> None:
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
        heads = await db(stream_heads)(stream_ids=list(self.rooms))
        for stream_id, head in heads.items():
            room = self.rooms.get(stream_id)
            if room is None or (room.caught_up and head == room.checked_head):
                continue  # every socket had this head at the last tick: nothing to look at
            room.checked_head = head
            room.caught_up = True
            behind = []
            for sock in list(room.sockets):
                seen, sock.watched_head = sock.watched_head, head
                if sock.access is None or sock.last_sent < head:
                    room.caught_up = False
                if sock.access is not None and seen is not None and sock.last_sent < seen:
                    behind.append((sock, seen))
            if behind:
                await self._catch_up(room.access, behind)

    async def _catch_up(self, access: RoomAccess, behind: list[tuple[Socket, int]]) -> None:
        after = min(sock.last_sent for sock, _ in behind)
        upto = max(seen for _, seen in behind)
        metrics.gap_filled(kind="head_check", room=access.name, after=after, upto=upto, log=False)
        logger.info(
            "delivering lost broadcasts room=%s seq=%s..%s sockets=%s", access.name, after + 1, upto, len(behind)
        )
        frames = await db(room_frames)(access=access, after=after, upto=upto)
        for sock, seen in behind:
            await sock.deliver([f for f in frames if f[0] <= seen])


# Strong references to unsubscriptions until they finish (the loop keeps only weak ones).
_unsubscribing: set[asyncio.Task[None]] = set()

# The hub of the running event loop (one per server process).
hub = per_loop(lambda: Hub(settings.CHAT_HEAD_CHECK_SECONDS))
