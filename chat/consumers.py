"""The room socket: parse, one service call, format (PROTOCOL.md).

Delivery per socket is ordered, gapless and duplicate-free: `last_sent` is the
highest seq this socket was sent; a live event at or below it is dropped, one
beyond `last_sent + 1` first pulls the missing events from the database.

A socket costs one task and one small object: it has no channel-layer channel
of its own (room broadcasts reach it through the process's hub, chat.hub), no
background task, and its handshake's queries are shared with the sockets
joining at the same moment (chat.joins).

Its rights are those read at the join (a chat.revocation Grant) until they go:
the process's chat.guard then closes it (`revoke`), and each post first checks
the Grant's proof in Redis, in the rate limit's round trip (chat.ratelimit).
"""

import asyncio
import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from autobahn.exception import Disconnected
from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import DatabaseError
from redis.exceptions import RedisError

from config import metrics
from config.logs import log_bind

from . import protocol, ratelimit
from .connection import connection_of, queued_bytes, release_handshake, send_text, share_protocol_options
from .errors import ChatError
from .guard import guard
from .hub import hub
from .joins import joins
from .layer import broadcast
from .presence import presence
from .revocation import NO_LONGER_SIGNED_IN, NOT_MEMBER, Grant
from .services import (
    RoomAccess,
    message_edit,
    message_post,
    message_redact,
    read_mark,
    room_frames,
    room_name_normalize,
)
from .threads import Overloaded, db

logger = logging.getLogger(__name__)

# Close codes of the connection path (README's protocol table).
TOO_SLOW = 4008
UNAVAILABLE = 4503
# Seconds a too-slow client has to read up to the close frame before it is dropped.
SLOW_CLOSE_GRACE = 10


class ChatConsumer(AsyncWebsocketConsumer):
    groups: list[str] = []  # never joined: the hub subscribes once per room for all its sockets

    def __init__(self, room: str = "", session_key: str | None = None) -> None:
        # Every attribute is set here, so CPython keeps them inline in the object
        # instead of a dict of their own (a few hundred bytes per idle socket).
        # The path's room segment, as sent (validated at the join), and the session cookie (chat.routing).
        self.room_segment = room
        self.session_key = session_key
        self.scope: dict[str, Any] = {}
        self.channel_layer: Any = None
        self.base_send: Any = None
        self.access: RoomAccess | None = None
        self.last_sent = 0
        self.watched_head: int | None = None
        self.early: list[tuple[int, str]] | None = None
        self.hub_access: RoomAccess | None = None
        self.lock: asyncio.Lock | None = None
        # daphne's protocol object of this connection (None under another server).
        self.connection: Any = None
        self.counted = False
        self.closing = False
        # What the join allowed, while chat.guard has this socket indexed.
        self.grant: Grant | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Channels' consumer loop without its per-socket channel and its second
        waiting task: this socket hears only its client (and the hub calls it)."""
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.base_send = send
        self.connection = connection_of(send)
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass

    async def connect(self) -> None:
        metrics.socket_connecting(room=self.room_segment)
        await self.accept()
        if self.connection is not None:
            release_handshake(self.connection, self.scope)
            share_protocol_options(self.connection)
        room_hub = hub()
        if room_hub.open_sockets >= settings.CHAT_MAX_SOCKETS:
            await self.refuse_busy("This server is full")
            return
        room_hub.open_sockets += 1
        self.counted = True
        try:
            params = protocol.parse_join(self.scope.get("query_string", b""))
            name = room_name_normalize(self.room_segment.removesuffix("/"))
            key = self.session_key
            # Receive the room's broadcasts before the replay is read: an event committed
            # in between arrives live and is either sent or dropped by seq, never lost.
            self.early = []
            self.hub_access = room_hub.attach(name, self)
            if self.hub_access is not None:
                # The room is live in this process: rights and replay in one database call.
                grant, replay = await self.admitted(
                    lambda: joins().enter.submit((key, name, params.since, params.history))
                )
                access = grant.access
            else:
                access = (await self.admitted(lambda: joins().access.submit((key, name)))).access
                await room_hub.join(self.channel_layer, self, access)
                self.hub_access = access
                if self.closing:  # revoked meanwhile (chat.guard)
                    return
                replay = await joins().replay.submit((access, params.since, params.history))
        except ChatError as exc:
            await self.leave_hub()
            if exc.user_id is not None:
                log_bind(user_id=exc.user_id)
            await self.refuse(exc)
            return
        except Overloaded:
            await self.leave_hub()
            await self.refuse_busy("Too many sockets are joining at once")
            return
        except (DatabaseError, RedisError, OSError):
            logger.exception("join failed: database or Redis unavailable")
            await self.leave_hub()
            await self.refuse_busy("The chat is unavailable")
            return
        for frame in replay.frames:
            self.push(frame)
        if self.closing:
            return
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
        present = presence().join(layer=self.channel_layer, access=access)
        if present is not None:
            self.push(present)

    async def admitted(self, read: Callable[[], Awaitable[Any]]) -> Any:
        """Read this socket's rights with `read` (a batched call answering a Grant, or a
        tuple that starts with one) and enter the process's revocation index; read
        again if a revocation heard meanwhile may concern them."""
        process_guard = guard()
        await process_guard.subscribe(self.channel_layer)
        loop = asyncio.get_running_loop()
        while True:
            since = loop.time()
            result = await read()
            if process_guard.admit(self, result[0] if isinstance(result, tuple) else result, since=since):
                return result

    async def regrant(self) -> Grant:
        """Rights read again (chat.guard, at the session's expiry): a Grant, or ChatError."""
        assert self.grant is not None
        return await joins().access.submit((self.session_key, self.grant.access.name))

    def revoke(self, error: ChatError) -> None:
        """The rights are gone (chat.guard): nothing more is taken or sent but an
        error frame, then the close (4401 or 4403)."""
        if self.closing:
            return
        self.closing = True
        task = asyncio.create_task(self._revoked(error))
        _pending.add(task)
        task.add_done_callback(_pending.discard)

    async def _revoked(self, error: ChatError) -> None:
        room = self.grant.access if self.grant is not None else None
        logger.info(
            "closing a socket whose rights went room=%s user=%s code=%s",
            room and room.name,
            room and room.user_id,
            error.code,
        )
        await self.leave_room()
        await self.refuse(error)

    async def disconnect(self, code: int) -> None:
        await self.leave_room()
        if self.counted:
            self.counted = False
            hub().open_sockets -= 1

    async def leave_room(self) -> None:
        if self.access is not None:
            metrics.socket_closed()
            presence().leave(access=self.access)
            self.access = None
        await self.leave_hub()

    async def leave_hub(self) -> None:
        guard().discard(self)
        if self.hub_access is not None:
            access, self.hub_access = self.hub_access, None
            await hub().leave(self, access)

    async def refuse(self, exc: ChatError, code: int | None = None) -> None:
        metrics.socket_refused(code=exc.code, close_code=code or exc.close_code or 4400)
        await self.send_json(exc.as_frame())
        await self.close(code=code or exc.close_code or 4400)

    async def refuse_busy(self, reason: str) -> None:
        """4503 with a retry hint: the client backs off with jitter and comes back."""
        retry = settings.CHAT_RETRY_AFTER_SECONDS
        error = ChatError("unavailable", f"{reason}; try again in about {retry} seconds.", retry_after=retry)
        await self.refuse(error, code=UNAVAILABLE)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        access = self.access
        if access is None or self.closing:
            return
        command: protocol.Post | protocol.Read | protocol.Edit | protocol.Redact | None = None
        try:
            command = protocol.parse_frame(text_data, bytes_data)
            if isinstance(command, protocol.Read):
                await db(read_mark)(access=access, seq=command.seq)
                return
            verdict = await self.post_verdict(access)
            if verdict in ("unauthenticated", "forbidden"):
                detail = NO_LONGER_SIGNED_IN if verdict == "unauthenticated" else NOT_MEMBER
                self.revoke(ChatError(verdict, detail, client_id=command.client_id))
                return
            if verdict == "private":
                # The room became private since the join: from now on message_post
                # checks the membership, and the proof checks its revocation.
                self.access = access = dataclasses.replace(access, is_private=True)
            if verdict == "rate_limited":
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
            client_id = command.client_id if command is not None and not isinstance(command, protocol.Read) else None
            await self.send_json(
                ChatError(
                    "unavailable",
                    "The message could not be saved; resend it with the same client_id.",
                    client_id=client_id,
                ).as_frame()
            )
            return
        if not posted.duplicate:
            await broadcast(room_id=access.room_id, seq=posted.seq, frame=posted.frame, layer=self.channel_layer)
        await self.send_json(
            {
                "type": "ack",
                "client_id": posted.client_id,
                "seq": posted.seq,
                "id": posted.id,
                "duplicate": posted.duplicate,
            }
        )

    async def post_verdict(self, access: RoomAccess) -> str:
        """The rate limit and the proof that this socket's rights were not revoked, in one Redis call."""
        grant = self.grant
        if grant is None:
            return "ok" if await ratelimit.allow(access.user_id) else "rate_limited"
        return await ratelimit.post_verdict(
            access.user_id, keys=grant.keys(), proof=grant.proof, private=access.is_private
        )

    def offer(self, seq: int, frame: str | bytes) -> None:
        """A live event from this process's room subscription (chat.hub). Returns
        without suspending: a socket that must fill a gap does so in a task."""
        if self.access is None:
            if self.early is not None:  # still sending the replay
                self.early.append((seq, frame.decode() if isinstance(frame, bytes) else frame))
            return
        if seq <= self.last_sent:
            return
        if seq == self.last_sent + 1 and (self.lock is None or not self.lock.locked()):
            self.last_sent = seq
            self.push(frame)
            return
        # Out of order or a gap: the ordered path, which may read the database.
        text = frame.decode() if isinstance(frame, bytes) else frame
        task = asyncio.create_task(self.deliver([(seq, text)]))
        _pending.add(task)
        task.add_done_callback(_pending.discard)

    def push(self, frame: str | bytes) -> None:
        """Queue one text frame for the client now. Under daphne it goes straight to
        the connection's protocol (no coroutine, no per-socket encode when the hub
        passes bytes); past CHAT_SEND_QUEUE_BYTES unread, the socket is closed."""
        connection = self.connection
        if connection is None:  # another ASGI server: its own send, in order
            text = frame.decode() if isinstance(frame, bytes) else frame
            task = asyncio.create_task(self.send(text_data=text))
            _pending.add(task)
            task.add_done_callback(_pending.discard)
            return
        try:
            queued = send_text(connection, frame if isinstance(frame, bytes) else frame.encode())
        except Disconnected:
            return  # the client went away: nothing to deliver to
        if queued > settings.CHAT_SEND_QUEUE_BYTES and not self.closing:
            task = asyncio.create_task(self.too_slow())
            _pending.add(task)
            task.add_done_callback(_pending.discard)

    def chat_presence(self, frame: bytes) -> None:
        """Who is in the room now, pre-rendered by chat.presence: pushed as is."""
        if self.access is not None:
            self.push(frame)

    async def deliver(self, frames: list[tuple[int, str]]) -> None:
        """Send frames in seq order, filling any gap before them from the database."""
        access = self.access
        if access is None:
            return
        if self.lock is None:
            self.lock = asyncio.Lock()
        async with self.lock:
            for seq, frame in frames:
                if seq <= self.last_sent or self.access is None:
                    continue
                if seq > self.last_sent + 1:
                    metrics.gap_filled(kind="socket", room=access.name, after=self.last_sent, upto=seq - 1)
                    missing = await db(room_frames)(access=access, after=self.last_sent, upto=seq - 1)
                    for missing_seq, missing_frame in missing:
                        if missing_seq > self.last_sent:
                            self.push(missing_frame)
                            self.last_sent = missing_seq
                self.push(frame)
                self.last_sent = seq

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch, without its per-message `aclose_old_connections()`:
        that is a thread hop for every frame delivered to every socket, and this
        consumer touches the database only through chat.threads, which already
        closes connections around each call."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def send_json(self, content: dict[str, Any]) -> None:
        self.push(json.dumps(content, ensure_ascii=False))

    async def send(self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False) -> None:
        try:
            await super().send(text_data=text_data, bytes_data=bytes_data, close=close)
        except Disconnected:
            # The client went away while we were sending: nothing to deliver to.
            pass

    async def too_slow(self) -> None:
        """The client stopped reading: stop queueing for it and close with 4008. It
        resumes with `since=` like after any drop; the server keeps no backlog."""
        room = self.access or self.hub_access
        if self.closing or room is None:
            return
        self.closing = True
        logger.warning(
            "closing a socket that does not read room=%s user=%s queued_bytes=%s",
            room.name,
            room.user_id,
            queued_bytes(self.connection),
        )
        await self.leave_room()
        # The close frame queues behind what the client did not read: a client that
        # reads again within SLOW_CLOSE_GRACE sees it; one that does not is dropped.
        self.connection.closeHandshakeTimeout = SLOW_CLOSE_GRACE
        self.connection.sendClose(code=TOO_SLOW, reason="too slow: reconnect with since=")


# Strong references to sockets' gap fills until they finish (the loop keeps only weak ones).
_pending: set[asyncio.Task[None]] = set()


class UnknownPathConsumer(AsyncWebsocketConsumer):
    """Any other WebSocket path: a clear refusal instead of a handshake error."""

    async def connect(self) -> None:
        metrics.socket_connecting(room=None)
        await self.accept()
        metrics.socket_refused(code="invalid_request", close_code=4400)
        error = ChatError("invalid_request", "There is no WebSocket endpoint at this path; use /ws/chat/<room>/.")
        await self.send(text_data=json.dumps(error.as_frame()))
        await self.close(code=4400)
