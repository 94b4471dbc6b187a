"""Presence on a real Redis: one entry per (user, process), one frame per change
(coalesced), O(1) Redis work per join, expiry of a dead process's entries."""

import asyncio
import json
import time
import uuid

import pytest
import redis.asyncio as aioredis

from chat.presence import member_encode, presence, presence_key
from chat.services import RoomAccess


class RecordingLayer:
    """Stands in for the channel layer: records what would be broadcast."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict]] = []
        self.arrived: asyncio.Queue[dict] = asyncio.Queue()

    async def group_send(self, group: str, message: dict) -> None:
        self.sent.append((group, message))
        self.arrived.put_nowait(json.loads(message["frame"]))

    def users(self) -> list[list[str]]:
        return [json.loads(m["frame"])["users"] for _, m in self.sent]

    async def next(self) -> dict:
        async with asyncio.timeout(5):
            return await self.arrived.get()


def access_for(room_id: int, username: str) -> RoomAccess:
    return RoomAccess(
        room_id=room_id, name=f"room{room_id}", stream_id=1, is_private=False, user_id=1, username=username
    )


@pytest.fixture
def room_id() -> int:
    return uuid.uuid4().int % 10**12


@pytest.fixture
async def redis(settings):
    client = aioredis.Redis.from_url(settings.REDIS_URL)
    yield client
    await client.aclose()


async def test_join_and_leave_broadcast_only_changes(room_id, settings):
    settings.CHAT_PRESENCE_COALESCE_SECONDS = 0
    layer, here = RecordingLayer(), presence()
    alice, bob = access_for(room_id, "alice"), access_for(room_id, "bob")
    assert here.join(layer=layer, access=alice) is None  # the coming frame tells alice too
    assert await layer.next() == {"type": "presence", "room": alice.name, "users": ["alice"], "count": 1}
    here.join(layer=layer, access=bob)
    assert (await layer.next())["users"] == ["alice", "bob"]
    # A second tab changes nothing: no frame, and the tab gets the last one at once.
    own = here.join(layer=layer, access=bob)
    assert json.loads(own)["users"] == ["alice", "bob"]
    here.leave(access=bob)  # one tab left: still here
    here.leave(access=bob)
    assert (await layer.next())["users"] == ["alice"]
    assert layer.users() == [["alice"], ["alice", "bob"], ["alice"]]
    assert {g for g, _ in layer.sent} == {alice.group}
    assert {m["type"] for _, m in layer.sent} == {"chat.presence"}
    here.leave(access=alice)
    assert (await layer.next())["users"] == []


async def test_entries_of_a_dead_process_expire_and_the_room_hears_it(room_id, settings, redis):
    settings.CHAT_PRESENCE_TTL_SECONDS = 0.6
    settings.CHAT_PRESENCE_REFRESH_SECONDS = 0.1
    settings.CHAT_PRESENCE_COALESCE_SECONDS = 0
    # Another process's entry that nobody renews: that process died.
    await redis.zadd(presence_key(room_id), {member_encode(username="ghost", process="dead:1:x"): time.time() + 0.6})
    layer, here = RecordingLayer(), presence()
    alice = access_for(room_id, "alice")
    here.join(layer=layer, access=alice)
    assert (await layer.next())["users"] == ["alice", "ghost"]
    assert (await layer.next())["users"] == ["alice"]
    # alice's own entry was renewed all along.
    assert await redis.zcard(presence_key(room_id)) == 1
    here.leave(access=alice)


async def test_a_burst_of_changes_goes_out_as_one_frame_with_the_final_list(room_id, settings):
    settings.CHAT_PRESENCE_COALESCE_SECONDS = 0.2
    layer, here = RecordingLayer(), presence()
    names = [f"user{n}" for n in range(5)]
    for name in names:
        here.join(layer=layer, access=access_for(room_id, name))
    here.leave(access=access_for(room_id, "user0"))
    assert (await layer.next())["users"] == names[1:]
    assert len(layer.sent) == 1
    # A later change gets a frame of its own.
    here.join(layer=layer, access=access_for(room_id, "late"))
    assert (await layer.next())["users"] == sorted([*names[1:], "late"])
    for name in [*names[1:], "late"]:
        here.leave(access=access_for(room_id, name))
    assert (await layer.next())["users"] == []
    assert len(layer.sent) == 3


async def test_a_big_room_is_a_bounded_list_with_a_count_and_o1_redis_work_per_join(room_id, settings, redis):
    settings.CHAT_PRESENCE_COALESCE_SECONDS = 0.05
    settings.CHAT_PRESENCE_LIST_MAX = 20
    layer, here = RecordingLayer(), presence()
    names = sorted(f"user{n:04}" for n in range(2000))
    before = await redis.info("commandstats")
    for name in names:
        here.join(layer=layer, access=access_for(room_id, name))
        here.join(layer=layer, access=access_for(room_id, name))  # and a second tab each
    frame = await layer.next()
    after = await redis.info("commandstats")
    assert frame["count"] == 2000 and frame["users"] == names[:20]
    assert len(layer.sent) == 1  # 4,000 joins, one frame
    # The whole burst cost one ZADD and one read of the set, not one per join.
    calls = {
        cmd: after.get(f"cmdstat_{cmd}", {}).get("calls", 0) - before.get(f"cmdstat_{cmd}", {}).get("calls", 0)
        for cmd in ("zadd", "zrangebyscore")
    }
    assert calls == {"zadd": 1, "zrangebyscore": 1}
    assert await redis.zcard(presence_key(room_id)) == 2000
    for name in names:
        here.leave(access=access_for(room_id, name))
        here.leave(access=access_for(room_id, name))
    assert (await layer.next())["count"] == 0


async def test_the_refresh_is_one_round_trip_for_all_rooms(settings, redis):
    settings.CHAT_PRESENCE_COALESCE_SECONDS = 0
    settings.CHAT_PRESENCE_REFRESH_SECONDS = 0.3
    layer, here = RecordingLayer(), presence()
    rooms = [uuid.uuid4().int % 10**12 for _ in range(50)]
    for room in rooms:
        for n in range(20):
            here.join(layer=layer, access=access_for(room, f"u{n}"))
    for _ in rooms:
        await layer.next()
    scores = await redis.zrange(presence_key(rooms[0]), 0, -1, withscores=True)
    await asyncio.sleep(0.5)  # one refresh period (and a bit)
    renewed = await redis.zrange(presence_key(rooms[0]), 0, -1, withscores=True)
    assert len(renewed) == 20 and all(new > old for (_, old), (_, new) in zip(scores, renewed, strict=True))
    for room in rooms:
        for n in range(20):
            here.leave(access=access_for(room, f"u{n}"))


async def test_the_set_does_not_outlive_its_sockets(room_id, settings, redis):
    settings.CHAT_PRESENCE_COALESCE_SECONDS = 0
    layer, here = RecordingLayer(), presence()
    alice = access_for(room_id, "alice")
    here.join(layer=layer, access=alice)
    await layer.next()
    ttl = await redis.ttl(presence_key(room_id))
    assert 0 < ttl <= int(settings.CHAT_PRESENCE_TTL_SECONDS * 2) + 1
    here.leave(access=alice)
    await layer.next()
    assert await redis.zcard(presence_key(room_id)) == 0
    assert room_id not in here.rooms


async def test_redis_down_skips_presence_without_failing(room_id, settings, caplog):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.CHAT_PRESENCE_COALESCE_SECONDS = 0
    layer, here = RecordingLayer(), presence()
    for name in ("alice", "bob", "carol"):
        assert here.join(layer=layer, access=access_for(room_id, name)) is None
        await asyncio.sleep(0.05)
    for name in ("alice", "bob", "carol"):
        here.leave(access=access_for(room_id, name))
    await asyncio.sleep(0.1)
    assert layer.sent == []
    # Logged once for the outage, not once per change.
    assert len([r for r in caplog.records if "Redis unavailable" in r.getMessage()]) == 1
