"""A room's per-process fan-out puts out-of-order broadcasts back in order, and
reads a missing event from the database once for all its sockets (real PostgreSQL)."""

import asyncio
import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.layers import InMemoryChannelLayer

from chat import hub as hub_module
from chat.hub import Room
from chat.layer import EVENT
from chat.services import message_post, room_join


class Recorder:
    """A socket that records what the room offers it."""

    def __init__(self, access) -> None:
        self.access = access
        self.last_sent = 0
        self.watched_head = None
        self.offered: list[tuple[int, str]] = []

    def offer(self, seq: int, frame: bytes) -> None:
        self.offered.append((seq, frame.decode()))

    def chat_presence(self, frame: bytes) -> None:  # pragma: no cover - no presence here
        pass

    async def deliver(self, frames) -> None:  # pragma: no cover - the room never calls it
        raise AssertionError("the room delivers through offer() only")


@pytest.fixture
def reads(monkeypatch):
    """Every database read of missing events the room makes, as (after, upto)."""
    calls: list[tuple[int, int]] = []
    real = hub_module.room_frames

    def counting(*, access, after, upto):
        calls.append((after, upto))
        return real(access=access, after=after, upto=upto)

    monkeypatch.setattr(hub_module, "room_frames", counting)
    return calls


async def room_with_posts(user, count: int):
    """A room holding `count` committed messages, and their live frames by seq."""
    access = await sync_to_async(room_join)(user=user, name=f"hub-{uuid.uuid4().hex[:10]}")
    frames = {}
    for i in range(count):
        posted = await sync_to_async(message_post)(access=access, text=f"m{i}", client_id=None)
        frames[posted.seq] = posted.frame
    return access, frames


async def subscribed(access, sockets: int):
    layer = InMemoryChannelLayer()
    room = Room(layer, access)
    recorders = [Recorder(access) for _ in range(sockets)]
    room.sockets.update(recorders)
    await room.subscribe()
    return layer, room, recorders


async def until(predicate, timeout: float = 3.0) -> None:
    end = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < end, "timed out"
        await asyncio.sleep(0.01)


async def test_out_of_order_broadcasts_reach_sockets_in_order_without_a_read(make_user, reads):
    user, _ = await sync_to_async(make_user)()
    access, frames = await room_with_posts(user, 4)
    layer, room, recorders = await subscribed(access, 3)
    try:
        for seq in (1, 3, 4, 2):
            await layer.send(room.channel, {"type": EVENT, "seq": seq, "frame": frames[seq]})
        await until(lambda: all(len(r.offered) == 4 for r in recorders))
        for r in recorders:
            assert r.offered == [(seq, frames[seq]) for seq in (1, 2, 3, 4)]
        assert reads == []
    finally:
        await room.unsubscribe()


async def test_a_lost_broadcast_is_read_once_for_every_socket_of_the_room(make_user, reads):
    user, _ = await sync_to_async(make_user)()
    access, frames = await room_with_posts(user, 5)
    layer, room, recorders = await subscribed(access, 3)
    try:
        for seq in (1, 2, 4, 5):  # 3 is lost
            await layer.send(room.channel, {"type": EVENT, "seq": seq, "frame": frames[seq]})
        await until(lambda: all(len(r.offered) == 5 for r in recorders))
        for r in recorders:
            assert [seq for seq, _ in r.offered] == [1, 2, 3, 4, 5]
            assert r.offered[2] == (3, frames[3])  # read from the log, rendered alike
        assert reads == [(2, 3)]
        # The lost broadcast turning up late is still offered; sockets drop it by seq.
        await layer.send(room.channel, {"type": EVENT, "seq": 3, "frame": frames[3]})
        await until(lambda: all(len(r.offered) == 6 for r in recorders))
        assert reads == [(2, 3)]
    finally:
        await room.unsubscribe()
