"""A WebSocket client speaking PROTOCOL.md, for tests."""

import asyncio
import json
from ssl import SSLContext
from typing import Any
from urllib.parse import quote

import websockets


class ChatClient:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        # Frames read past while waiting for something else (an ack), kept for later reads.
        self.backlog: list[dict[str, Any]] = []

    @classmethod
    async def connect(
        cls,
        base: str,
        room: str,
        *,
        cookie: str | None = None,
        query: str = "",
        origin: str | None = None,
        ssl: SSLContext | None = None,
        ping_interval: float | None = 20,
    ):
        """`base` is ws://host:port or wss://host:port (with `ssl`, the context trusting its
        certificate). `ping_interval=None` never pings, as browsers never do."""
        headers = {"Origin": origin if origin is not None else base.replace("ws", "http", 1)}
        if cookie:
            headers["Cookie"] = cookie
        url = f"{base}/ws/chat/{quote(room)}/" + (f"?{query}" if query else "")
        ws = await websockets.connect(
            url, additional_headers=headers, open_timeout=10, max_size=2**22, ssl=ssl, ping_interval=ping_interval
        )
        return cls(ws)

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        if self.backlog:
            return self.backlog.pop(0)
        return await self._recv_wire(timeout)

    async def _recv_wire(self, timeout: float) -> dict[str, Any]:
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))

    async def send(self, frame: Any) -> None:
        await self.ws.send(frame if isinstance(frame, str | bytes) else json.dumps(frame))

    async def history(self, timeout: float = 10.0) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Frames up to and including history.end."""
        frames = []
        while True:
            frame = await self.recv(timeout)
            if frame["type"] == "history.end":
                return frames, frame
            frames.append(frame)

    async def until(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:
        """The next frame of a type, skipping others."""
        while True:
            frame = await self.recv(timeout)
            if frame["type"] == kind:
                return frame

    async def post(self, message: str, client_id: str | None = None) -> dict[str, Any]:
        """Send a message and return its ack (or error); other frames are kept for later reads."""
        frame: dict[str, Any] = {"type": "chat.message", "message": message}
        if client_id is not None:
            frame["client_id"] = client_id
        return await self.command(frame)

    async def command(self, frame: dict[str, Any]) -> dict[str, Any]:
        """Send any command frame and return its ack (or error); other frames are kept for later reads."""
        await self.send(frame)
        while True:
            reply = await self._recv_wire(5.0)
            if reply["type"] in ("ack", "error"):
                return reply
            self.backlog.append(reply)

    async def events(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The next `count` event frames, skipping acks."""
        out: list[dict[str, Any]] = []
        while len(out) < count:
            frame = await self.recv(timeout)
            if frame["type"] == "chat.message":
                out.append(frame)
        return out

    async def close(self) -> None:
        await self.ws.close()

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code


async def refused_then_alive(base: str, room: str, *, cookie: str, frame: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """On a fresh socket: the error a bad frame gets, then the reply to a good
    message sent after it (an ack when the socket stayed open and usable)."""
    c = await ChatClient.connect(base, room, cookie=cookie)
    await c.history()
    await c.send(frame)
    error = await c.until("error")
    ack = await c.post("still alive")
    await c.close()
    return error, ack


async def sent_and_seen(
    base: str, room: str, *, sender: str, watcher: str, frame: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two sockets in a room (cookies `sender` and `watcher`): the sender's ack
    for `frame`, and the event frame the watcher received for it."""
    a = await ChatClient.connect(base, room, cookie=sender)
    b = await ChatClient.connect(base, room, cookie=watcher)
    await a.history()
    await b.history()
    await a.send(frame)
    ack = await a.until("ack")
    seen = (await b.events(1))[0]
    await a.close()
    await b.close()
    return ack, seen
