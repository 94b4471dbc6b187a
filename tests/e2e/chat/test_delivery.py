"""Delivery guarantees with real servers: race-free join, gap fill, scale-out,
durability across SIGKILL, idempotency under concurrency, database outage."""

import asyncio
import time
import uuid

import pytest

from chat.models import Room
from events.models import Event
from tests.support.tcpproxy import TcpProxy
from tests.support.ws import ChatClient

pytestmark = pytest.mark.e2e


def run(coro):
    return asyncio.run(coro)


def new_room() -> str:
    return f"room-{uuid.uuid4().hex[:10]}"


def room_seqs(name: str) -> list[int]:
    room = Room.objects.get(name=name)
    return list(Event.objects.filter(stream_id=room.stream_id).order_by("seq").values_list("seq", flat=True))


async def collect_until(client: ChatClient, last_seq: int, timeout: float = 20.0) -> list[int]:
    """Seqs of the event frames a socket receives (replay included) up to last_seq."""
    seqs: list[int] = []
    async with asyncio.timeout(timeout):
        while not seqs or seqs[-1] < last_seq:
            frame = await client.recv(timeout)
            if frame["type"] == "chat.message":
                seqs.append(frame["seq"])
    return seqs


def assert_contiguous(seqs: list[int], last: int) -> None:
    assert seqs, "no events received"
    assert seqs == list(range(seqs[0], last + 1)), f"gap, duplicate or reorder in {seqs}"


def test_race_free_join_with_four_writers(server, make_user):
    """4 writers x 100 messages; readers join mid-stream; every reader sees a
    contiguous run of seqs ending at 400, and the log holds exactly 1..400."""
    room = new_room()
    writers = [make_user()[1] for _ in range(4)]
    reader_cookies = [make_user()[1] for _ in range(3)]

    async def writer(cookie: str, n: int) -> list[int]:
        c = await ChatClient.connect(server.ws, room, cookie=cookie)
        await c.history()
        for i in range(100):
            await c.send({"type": "chat.message", "message": f"w{n}-{i}", "client_id": f"{n}-{i}"})
        acks = []
        while len(acks) < 100:
            frame = await c.recv(20)
            if frame["type"] == "ack":
                acks.append(frame["seq"])
            assert frame["type"] != "error", frame
        await c.close()
        return acks

    async def reader(cookie: str, delay: float) -> list[int]:
        await asyncio.sleep(delay)
        c = await ChatClient.connect(server.ws, room, cookie=cookie)
        seqs = await collect_until(c, 400)
        await c.close()
        return seqs

    async def scenario():
        first = await ChatClient.connect(server.ws, room, cookie=reader_cookies[0])  # creates the room
        await first.history()
        results = await asyncio.gather(
            collect_until(first, 400),
            *(reader(cookie, delay) for cookie, delay in zip(reader_cookies[1:], (0.05, 0.3), strict=True)),
            *(writer(cookie, n) for n, cookie in enumerate(writers)),
        )
        await first.close()
        return results

    results = run(scenario())
    readers, acks = results[:3], results[3:]
    for seqs in readers:
        assert_contiguous(seqs, 400)
    assert readers[0][0] == 1
    assert sorted(s for a in acks for s in a) == list(range(1, 401))
    assert room_seqs(room) == list(range(1, 401))


def test_lost_broadcasts_are_filled_from_the_database(start_server, make_user):
    """Every 7th group message is dropped by the layer, including the last one."""
    lossy = start_server(CHAT_CHANNEL_LAYER="tests.support.lossy_layer.LossyLayer")
    room = new_room()
    (_, w_cookie), (_, r1), (_, r2) = make_user(), make_user(), make_user()

    async def scenario():
        readers = [await ChatClient.connect(lossy.ws, room, cookie=c) for c in (r1, r2)]
        for r in readers:
            await r.history()
        w = await ChatClient.connect(lossy.ws, room, cookie=w_cookie)
        await w.history()
        for i in range(21):
            ack = await w.post(f"m{i}")
            assert ack["type"] == "ack"
        last_acked = time.monotonic()
        got = await asyncio.gather(*(collect_until(r, 21, timeout=5) for r in readers))
        last_delay = time.monotonic() - last_acked
        for c in [*readers, w]:
            await c.close()
        return got, last_delay

    got, last_delay = run(scenario())
    for seqs in got:
        assert seqs == list(range(1, 22))
    # The last event's broadcast was lost and no later event reveals it: the
    # head check still delivers it within about a second.
    assert last_delay < 1.5
    log = lossy.log.read_text()
    assert log.count("LOSSY LAYER DROPPED") == 3  # seq 7, 14 and 21 really were lost


def test_scale_out_two_processes_one_redis(server, start_server, make_user):
    other = start_server()
    room = new_room()
    (_, a), (_, b) = make_user(), make_user()

    async def scenario():
        on_first = await ChatClient.connect(server.ws, room, cookie=a)
        on_second = await ChatClient.connect(other.ws, room, cookie=b)
        await on_first.history()
        await on_second.history()
        for i in range(10):
            await on_second.post(f"from second {i}")
            await on_first.post(f"from first {i}")
        got_first = await collect_until(on_first, 20)
        got_second = await collect_until(on_second, 20)
        await on_first.close()
        await on_second.close()
        return got_first, got_second

    got_first, got_second = run(scenario())
    assert got_first == list(range(1, 21))
    assert got_second == list(range(1, 21))


def test_acked_messages_survive_sigkill(start_server, make_user):
    srv = start_server()
    room = new_room()
    _, cookie = make_user()

    async def before():
        c = await ChatClient.connect(srv.ws, room, cookie=cookie)
        await c.history()
        acks = [await c.post(f"durable {i}", client_id=f"d{i}") for i in range(10)]
        return acks

    acks = run(before())
    assert all(a["type"] == "ack" for a in acks)
    srv.kill()
    srv.start()

    async def after():
        c = await ChatClient.connect(srv.ws, room, cookie=cookie, query="since=0")
        frames, end = await c.history()
        await c.close()
        return frames, end

    frames, end = run(after())
    assert [f["seq"] for f in frames] == [a["seq"] for a in acks]
    assert [f["message"] for f in frames] == [f"durable {i}" for i in range(10)]
    assert [f["client_id"] for f in frames] == [f"d{i}" for i in range(10)]


def test_same_client_id_from_three_sockets_at_once(server, make_user):
    room = new_room()
    _, cookie = make_user()

    async def scenario():
        sockets = [await ChatClient.connect(server.ws, room, cookie=cookie) for _ in range(3)]
        for s in sockets:
            await s.history()
        frame = {"type": "chat.message", "message": "only once", "client_id": "same-key"}
        await asyncio.gather(*(s.send(frame) for s in sockets))
        acks = await asyncio.gather(*(s.until("ack") for s in sockets))
        for s in sockets:
            await s.close()
        return acks

    acks = run(scenario())
    assert len({(a["seq"], a["id"], a["client_id"]) for a in acks}) == 1
    assert sorted(a["duplicate"] for a in acks) == [False, True, True]
    assert room_seqs(room) == [1]


def test_database_outage_gives_unavailable_and_resend_succeeds(start_server, make_user, db_settings):
    proxy = TcpProxy(db_settings["HOST"], int(db_settings["PORT"])).start()
    try:
        srv = start_server(DATABASE_URL=_via(db_settings, proxy.port), DATABASE_POOL_TIMEOUT="2")
        room = new_room()
        _, cookie = make_user()

        async def scenario():
            c = await ChatClient.connect(srv.ws, room, cookie=cookie)
            await c.history()
            proxy.cut()
            refused = await c.post("during the outage", client_id="o1")
            proxy.restore()
            retried = await c.post("during the outage", client_id="o1")
            await c.close()
            return refused, retried

        refused, retried = run(scenario())
    finally:
        proxy.stop()
    assert refused["type"] == "error" and refused["code"] == "unavailable" and refused["client_id"] == "o1"
    assert retried["type"] == "ack" and retried["seq"] == 1 and retried["duplicate"] is False
    assert room_seqs(room) == [1]


def _via(db: dict, port: int) -> str:
    return f"postgres://{db['USER']}:{db['PASSWORD']}@127.0.0.1:{port}/{db['NAME']}"
