"""The room socket: parse, one service call, format (PROTOCOL.md).

Delivery per socket is ordered, gapless and duplicate-free: `last_sent` is the
highest seq this socket was sent; a live event at or below it is dropped, one
beyond `last_sent + 1` first pulls the missing events from the database.
"""

import asyncio
import functools
import json
import logging
from typing import Any

from autobahn.exception import Disconnected
from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.db import DatabaseError
from redis.exceptions import RedisError

from config import metrics

from . import protocol, ratelimit
from .errors import ChatError
from .history import message_edit, message_redact
from .hub import hub
from .presence import presence_join, presence_keep, presence_leave
from .services import RoomAccess, message_post, read_mark, room_frames, room_join, room_replay

logger = logging.getLogger(__name__)


@functools.cache
def db(func: Any) -> Any:
    """Run a service in the thread pool with a pooled connection, not serialised
    through the single thread-sensitive executor (one wrapper per service)."""
    return database_sync_to_async(func, thread_sensitive=False)


class ChatConsumer(AsyncWebsocketConsumer):
    access: RoomAccess | None = None
    last_sent: int = 0
    watched_head: int | None = None
    early: list[tuple[int, str]] | None = None
    hub_access: RoomAccess | None = None
    presence_task: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        metrics.socket_connecting(scope=self.scope)
        await self.accept()
        try:
            params = protocol.parse_join(self.scope.get("query_string", b""))
            raw_name = self.scope["url_route"]["kwargs"]["room"].removesuffix("/")
            access = await db(room_join)(user=self.scope["user"], name=raw_name)
            self.lock = asyncio.Lock()
            self.pending: set[asyncio.Task[None]] = set()
            # Join the room's broadcasts before reading the replay: an event committed
            # in between arrives live and is either sent or dropped by seq, never lost.
            self.early = []
            await hub().join(self.channel_layer, self, access)
            self.hub_access = access
            replay = await db(room_replay)(access=access, since=params.since, limit=params.history)
        except ChatError as exc:
            await self.refuse(exc)
            return
        except (DatabaseError, RedisError, OSError):
            logger.exception("join failed: database or Redis unavailable")
            await self.leave_hub()
            await self.refuse(ChatError("unavailable", "The chat is unavailable; try again shortly."), code=4503)
            return
        for frame in replay.frames:
            await self.send(text_data=frame)
        self.last_sent = replay.last_seq
        await self.send_json(
            {
                "type": "history.end",
                "room": access.name,
                "last_seq": replay.last_seq,
                "count": len(replay.frames),
                "truncated": replay.truncated,
                "reset": replay.reset,
            }
        )
        self.access = access
        metrics.socket_accepted()
        # Broadcasts that arrived while the replay was read: sent or dropped by seq.
        early, self.early = self.early, None
        if early:
            await self.deliver(sorted(early))
        present = await presence_join(layer=self.channel_layer, access=access, channel=self.channel_name)
        if present is not None:
            await self.send(text_data=present)
        self.presence_task = asyncio.create_task(
            presence_keep(layer=self.channel_layer, access=access, channel=self.channel_name)
        )

    async def disconnect(self, code: int) -> None:
        if self.access is not None:
            metrics.socket_closed()
            if self.presence_task is not None:
                self.presence_task.cancel()
            await presence_leave(layer=self.channel_layer, access=self.access, channel=self.channel_name)
            self.access = None
        await self.leave_hub()

    async def leave_hub(self) -> None:
        if self.hub_access is not None:
            access, self.hub_access = self.hub_access, None
            await hub().leave(self, access)

    async def refuse(self, exc: ChatError, code: int | None = None) -> None:
        metrics.socket_refused(code=exc.code, close_code=code or exc.close_code or 4400)
        await self.send_json(exc.as_frame())
        await self.close(code=code or exc.close_code or 4400)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        access = self.access
        if access is None:
            return
        try:
            command = protocol.parse_frame(text_data, bytes_data)
            if isinstance(command, protocol.Read):
                await db(read_mark)(access=access, seq=command.seq)
                return
            if not await ratelimit.allow(access.user_id):
                raise ChatError(
                    "rate_limited",
                    "You are sending messages too fast; wait a moment and resend with the same client_id.",
                    client_id=command.client_id,
                )
            if isinstance(command, protocol.Edit):
                posted = await db(message_edit)(
                    access=access, target_seq=command.target_seq, text=command.text, client_id=command.client_id
                )
            elif isinstance(command, protocol.Redact):
                posted = await db(message_redact)(
                    access=access, target_seq=command.target_seq, reason=command.reason, client_id=command.client_id
                )
            else:
                posted = await db(message_post)(access=access, text=command.text, client_id=command.client_id)
        except ChatError as exc:
            metrics.frame_refused(code=exc.code)
            await self.send_json(exc.as_frame())
            return
        except DatabaseError:
            logger.exception("post failed: event store unavailable room=%s user=%s", access.name, access.user_id)
            client_id = getattr(locals().get("command"), "client_id", None)
            await self.send_json(
                ChatError(
                    "unavailable",
                    "The message could not be saved; resend it with the same client_id.",
                    client_id=client_id,
                ).as_frame()
            )
            return
        if not posted.duplicate:
            await self.broadcast(access, posted.seq, posted.frame)
        await self.send_json(
            {
                "type": "ack",
                "client_id": posted.client_id,
                "seq": posted.seq,
                "id": posted.id,
                "duplicate": posted.duplicate,
            }
        )

    async def broadcast(self, access: RoomAccess, seq: int, frame: str) -> None:
        try:
            await self.channel_layer.group_send(access.group, {"type": "chat.event", "seq": seq, "frame": frame})
        except Exception:
            metrics.broadcast_failed()
            # The event is committed; sockets will read it from the database.
            logger.warning("broadcast failed room=%s seq=%s", access.name, seq, exc_info=True, extra={"seq": seq})

    async def offer(self, seq: int, frame: str) -> None:
        """A live event from this process's room subscription (chat.hub)."""
        if self.access is None:
            if self.early is not None:  # still sending the replay
                self.early.append((seq, frame))
            return
        if seq <= self.last_sent:
            return
        if seq == self.last_sent + 1 and not self.lock.locked():
            self.last_sent = seq
            await self.send(text_data=frame)
            return
        # Out of order or a gap: the ordered path, which may read the database.
        task = asyncio.create_task(self.deliver([(seq, frame)]))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def chat_presence(self, message: dict[str, Any]) -> None:
        """Who is in the room now (chat.presence), pre-rendered: sent as is."""
        if self.access is not None:
            await self.send(text_data=message["frame"])

    async def deliver(self, frames: list[tuple[int, str]]) -> None:
        """Send frames in seq order, filling any gap before them from the database."""
        access = self.access
        if access is None:
            return
        async with self.lock:
            for seq, frame in frames:
                if seq <= self.last_sent:
                    continue
                if seq > self.last_sent + 1:
                    metrics.gap_filled(kind="socket", room=access.name, after=self.last_sent, upto=seq - 1)
                    missing = await db(room_frames)(access=access, after=self.last_sent, upto=seq - 1)
                    for missing_seq, missing_frame in missing:
                        if missing_seq > self.last_sent:
                            await self.send(text_data=missing_frame)
                            self.last_sent = missing_seq
                await self.send(text_data=frame)
                self.last_sent = seq

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch, without its per-message `aclose_old_connections()`:
        that is a thread hop for every frame delivered to every socket, and this
        consumer touches the database only through database_sync_to_async, which
        already closes connections around each call."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def send_json(self, content: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(content, ensure_ascii=False))

    async def send(self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False) -> None:
        try:
            if text_data is not None and not close:
                # Every delivered frame comes this way: straight to the server.
                await self.base_send({"type": "websocket.send", "text": text_data})
            else:
                await super().send(text_data=text_data, bytes_data=bytes_data, close=close)
        except Disconnected:
            # The client went away while we were sending: nothing to deliver to.
            pass


class UnknownPathConsumer(AsyncWebsocketConsumer):
    """Any other WebSocket path: a clear refusal instead of a handshake error."""

    async def connect(self) -> None:
        metrics.socket_connecting(scope=self.scope)
        await self.accept()
        metrics.socket_refused(code="invalid_request", close_code=4400)
        error = ChatError("invalid_request", "There is no WebSocket endpoint at this path; use /ws/chat/<room>/.")
        await self.send(text_data=json.dumps(error.as_frame()))
        await self.close(code=4400)
