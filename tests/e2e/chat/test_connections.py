"""The connection path against a real daphne: big rooms, slow clients, a full process."""

import asyncio
import json
import socket
import time
import uuid

import pytest
import websockets

from scripts.support.sessions import signed_in_cookies
from tests.support.ws import ChatClient

pytestmark = pytest.mark.e2e


def new_room() -> str:
    return f"conn-{uuid.uuid4().hex[:10]}"


def forget_presence(room: str) -> None:
    """Room ids restart with each test database; Redis outlives it (and a killed
    server's entries live on until their TTL)."""
    import redis
    from django.conf import settings

    from chat.presence import presence_key
    from chat.services import room_join
    from tests.factories import UserFactory

    access = room_join(user=UserFactory(), name=room)
    redis.Redis.from_url(settings.REDIS_URL).delete(presence_key(access.room_id))


class Listener:
    """One socket of a storm: its replay, then every frame it gets, by type."""

    def __init__(self, client: ChatClient) -> None:
        self.client = client
        self.messages: list[str] = []
        self.presence: list[dict] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.client.ws:
            frame = json.loads(raw)
            if frame["type"] == "chat.message":
                self.messages.append(frame["message"])
            elif frame["type"] == "presence":
                self.presence.append(frame)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_two_thousand_sockets_in_one_room_get_one_broadcast_and_few_presence_frames(start_server, committed):
    server = start_server(CHAT_PRESENCE_LIST_MAX="50")
    cookies = signed_in_cookies(f"storm{uuid.uuid4().hex[:6]}-", 500)
    room = new_room()
    forget_presence(room)

    async def scenario():
        gate = asyncio.Semaphore(200)

        async def join(cookie: str) -> Listener:
            async with gate:
                client = await ChatClient.connect(server.ws, room, cookie=cookie, ping_interval=None)
                await client.history(timeout=60)
                return Listener(client)

        # 500 users with four tabs each, 200 connecting at any moment.
        listeners = await asyncio.gather(*(join(cookies[i % 500]) for i in range(2000)))
        await asyncio.sleep(3)  # the last presence frames settle
        await listeners[0].client.send({"message": "to all two thousand"})
        await asyncio.sleep(5)  # far more than the broadcast needs
        for listener in listeners:
            assert listener.messages == ["to all two thousand"]
            # 2,000 joins made a handful of presence frames per socket, not one per join.
            assert len(listener.presence) <= 15, len(listener.presence)
        last = listeners[0].presence[-1]
        assert last["count"] == 500 and len(last["users"]) == 50

        for listener in listeners:
            await listener.client.close()

    asyncio.run(scenario())


@pytest.mark.timeout(120)
def test_a_client_that_stops_reading_is_closed_with_4008_and_the_room_keeps_its_pace(start_server, make_user):
    server = start_server(CHAT_SEND_QUEUE_BYTES=str(256 * 1024), CHAT_PRESENCE_COALESCE_SECONDS="0.05")
    (_, writer_cookie), (_, reader_cookie), (slow_user, slow_cookie) = make_user(), make_user(), make_user()
    room = new_room()
    text = "x" * 3900

    async def scenario():
        writer = await ChatClient.connect(server.ws, room, cookie=writer_cookie)
        reader = await ChatClient.connect(server.ws, room, cookie=reader_cookie)
        await writer.history()
        await reader.history()
        # The stuck client: a tiny receive buffer, and it does not read.
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: the window stays small
        raw.connect(("127.0.0.1", server.port))
        slow = await websockets.connect(
            f"{server.ws}/ws/chat/{room}/",
            sock=raw,
            additional_headers={"Origin": server.http, "Cookie": slow_cookie},
            max_queue=1,
            max_size=2**22,
            ping_interval=None,
        )
        delays: list[float] = []
        sent_at: dict[int, float] = {}
        slow_here, slow_gone, caught_up = asyncio.Event(), asyncio.Event(), asyncio.Event()

        async def read_all():
            while True:
                frame = await reader.recv(timeout=20)
                if frame["type"] == "chat.message":
                    delays.append(time.perf_counter() - sent_at[int(frame["message"].split()[0])])
                    if slow_gone.is_set() and len(delays) == len(sent_at):
                        caught_up.set()
                elif frame["type"] == "presence":
                    # The server lets the room know when it closes the stuck socket.
                    if slow_user.username in frame["users"]:
                        slow_here.set()
                    elif slow_here.is_set():
                        slow_gone.set()

        reading = asyncio.create_task(read_all())
        async with asyncio.timeout(10):
            await slow_here.wait()
        posted = 0
        while not slow_gone.is_set():
            assert posted < 5000, "the stuck socket was never closed"
            sent_at[posted] = time.perf_counter()
            await writer.post(f"{posted} {text}")
            posted += 1
        if len(delays) < posted:
            async with asyncio.timeout(10):
                await caught_up.wait()
        reading.cancel()
        # The healthy reader got everything, promptly, while the other socket was stuck.
        delays.sort()
        assert delays[int(len(delays) * 0.99)] < 1.0, delays[-5:]
        # The stuck client reads again: what the server had queued, then the close.
        received = 0
        try:
            async with asyncio.timeout(20):
                async for _ in slow:
                    received += 1
        except websockets.ConnectionClosed:
            pass  # the close frame was read; the server then drops the connection
        assert slow.close_code == 4008, (slow.close_code, received)
        assert "since=" in slow.close_reason
        assert received < posted  # the server stopped queueing for it
        await writer.close()
        await reader.close()

    asyncio.run(scenario())


def test_past_the_socket_limit_a_new_socket_is_refused_with_4503_and_a_retry_hint(start_server, make_user):
    server = start_server(CHAT_MAX_SOCKETS="3", CHAT_RETRY_AFTER_SECONDS="7")
    (_, cookie) = make_user()
    room = new_room()

    async def scenario():
        open_ = [await ChatClient.connect(server.ws, room, cookie=cookie) for _ in range(3)]
        for client in open_:
            await client.history()
        refused = await ChatClient.connect(server.ws, room, cookie=cookie)
        error = await refused.recv()
        assert error["type"] == "error" and error["code"] == "unavailable" and error["retry_after"] == 7
        assert "try again in about 7 seconds" in error["detail"]
        with pytest.raises(websockets.ConnectionClosed):
            await refused.recv()
        assert refused.close_code == 4503
        # A place frees up: the next socket is let in.
        await open_[0].close()
        await asyncio.sleep(0.3)
        again = await ChatClient.connect(server.ws, room, cookie=cookie)
        _, end = await again.history()
        assert end["type"] == "history.end"
        for client in [*open_[1:], again]:
            await client.close()

    asyncio.run(scenario())


@pytest.mark.timeout(120)
def test_a_resume_storm_gets_exactly_what_each_socket_missed(start_server, make_user):
    from chat.services import message_post, room_join

    server = start_server()
    user, cookie = make_user()
    room = new_room()
    access = room_join(user=user, name=room)
    for n in range(300):
        message_post(access=access, text=f"m{n}", client_id=None)

    async def scenario():
        since = [(i * 7) % 300 for i in range(400)]

        async def resume(s: int) -> list[int]:
            client = await ChatClient.connect(server.ws, room, cookie=cookie, query=f"since={s}")
            frames, end = await client.history(timeout=60)
            await client.close()
            assert end["last_seq"] == 300 and end["truncated"] is False and end["reset"] is False
            return [f["seq"] for f in frames]

        got = await asyncio.gather(*(resume(s) for s in since))
        for s, seqs in zip(since, got, strict=True):
            assert seqs == list(range(s + 1, 301))

    asyncio.run(scenario())
