"""Presence on a real Redis: entries per socket, one frame per change, expiry."""

import asyncio
import json
import uuid

import pytest
import redis.asyncio as aioredis

from chat.presence import presence_join, presence_keep, presence_key, presence_leave
from chat.services import RoomAccess


class RecordingLayer:
    """Stands in for the channel layer: records what would be broadcast."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict]] = []
        self.arrived: asyncio.Queue[list[str]] = asyncio.Queue()

    async def group_send(self, group: str, message: dict) -> None:
        self.sent.append((group, message))
        self.arrived.put_nowait(json.loads(message["frame"])["users"])

    def users(self) -> list[list[str]]:
        return [json.loads(m["frame"])["users"] for _, m in self.sent]


def access_for(room_id: int, username: str) -> RoomAccess:
    return RoomAccess(
        room_id=room_id, name=f"room{room_id}", stream_id=1, is_private=False, user_id=1, username=username
    )


@pytest.fixture
def room_id() -> int:
    return uuid.uuid4().int % 10**12


async def test_join_and_leave_broadcast_only_changes(room_id, settings):
    settings.CHAT_PRESENCE_COALESCE_SECONDS = 0
    layer = RecordingLayer()
    alice, bob = access_for(room_id, "alice"), access_for(room_id, "bob")
    own = await presence_join(layer=layer, access=alice, channel="c1")
    assert json.loads(own) == {"type": "presence", "room": alice.name, "users": ["alice"]}
    await presence_join(layer=layer, access=bob, channel="c2")
    await presence_join(layer=layer, access=bob, channel="c3")  # a second tab: no change
    await presence_leave(layer=layer, access=bob, channel="c2")  # one tab left: still here
    await presence_leave(layer=layer, access=bob, channel="c3")
    assert layer.users() == [["alice"], ["alice", "bob"], ["alice"]]
    assert {g for g, _ in layer.sent} == {alice.group}
    assert {m["type"] for _, m in layer.sent} == {"chat.presence"}
    await presence_leave(layer=layer, access=alice, channel="c1")


async def test_entries_of_a_dead_process_expire_and_the_room_hears_it(room_id, settings):
    settings.CHAT_PRESENCE_TTL_SECONDS = 0.6
    settings.CHAT_PRESENCE_REFRESH_SECONDS = 0.1
    settings.CHAT_PRESENCE_COALESCE_SECONDS = 0
    layer = RecordingLayer()
    alice, ghost = access_for(room_id, "alice"), access_for(room_id, "ghost")
    await presence_join(layer=layer, access=ghost, channel="dead")  # never refreshed, never left
    await presence_join(layer=layer, access=alice, channel="live")
    keeper = asyncio.create_task(presence_keep(layer=layer, access=alice, channel="live"))
    try:
        async with asyncio.timeout(5):
            while await layer.arrived.get() != ["alice"]:
                pass
    finally:
        keeper.cancel()
    assert layer.users() == [["ghost"], ["alice", "ghost"], ["alice"]]
    await presence_leave(layer=layer, access=alice, channel="live")


async def test_a_burst_of_changes_goes_out_as_one_frame_with_the_final_list(room_id, settings):
    settings.CHAT_PRESENCE_COALESCE_SECONDS = 0.2
    layer = RecordingLayer()
    names = [f"user{n}" for n in range(5)]
    for name in names:
        await presence_join(layer=layer, access=access_for(room_id, name), channel=f"c-{name}")
    await presence_leave(layer=layer, access=access_for(room_id, "user0"), channel="c-user0")
    async with asyncio.timeout(5):
        first = await layer.arrived.get()
    assert first == names[1:]
    assert layer.sent and len(layer.sent) == 1
    # A later change gets a frame of its own.
    await presence_join(layer=layer, access=access_for(room_id, "late"), channel="c-late")
    async with asyncio.timeout(5):
        assert await layer.arrived.get() == sorted([*names[1:], "late"])
    for name in [*names[1:], "late"]:
        await presence_leave(layer=layer, access=access_for(room_id, name), channel=f"c-{name}")
    async with asyncio.timeout(5):
        assert await layer.arrived.get() == []
    assert len(layer.sent) == 3


async def test_the_set_does_not_outlive_its_sockets(room_id, settings):
    settings.CHAT_PRESENCE_COALESCE_SECONDS = 0
    layer = RecordingLayer()
    alice = access_for(room_id, "alice")
    await presence_join(layer=layer, access=alice, channel="c1")
    client = aioredis.Redis.from_url(settings.REDIS_URL)
    try:
        ttl = await client.ttl(presence_key(room_id))
        assert 0 < ttl <= int(settings.CHAT_PRESENCE_TTL_SECONDS * 2) + 1
        await presence_leave(layer=layer, access=alice, channel="c1")
        assert await client.zcard(presence_key(room_id)) == 0
    finally:
        await client.aclose()


async def test_redis_down_skips_presence_without_failing(room_id, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    layer = RecordingLayer()
    assert await presence_join(layer=layer, access=access_for(room_id, "alice"), channel="c1") is None
    await presence_leave(layer=layer, access=access_for(room_id, "alice"), channel="c1")
    assert layer.sent == []
