"""Handshakes batched: many sockets' joins and replays answered by a few queries (real PostgreSQL)."""

import asyncio
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chat.errors import ChatError
from chat.joins import sockets_replay
from chat.models import Membership, Room
from chat.revocation import Grant, sockets_grant
from chat.services import RoomAccess, message_post, room_join
from chat.threads import Batcher
from scripts.support.sessions import signed_in_cookies
from tests.factories import UserFactory


def key_of(cookie: str) -> str:
    return cookie.removeprefix("sessionid=")


def test_many_handshakes_cost_the_queries_of_one(committed):
    keys = [key_of(c) for c in signed_in_cookies(f"join{uuid.uuid4().hex[:6]}-", 40)]
    public, private = f"pub-{uuid.uuid4().hex[:8]}", f"priv-{uuid.uuid4().hex[:8]}"
    owner = UserFactory()
    room_join(user=owner, name=private)
    Room.objects.filter(name=private).update(is_private=True)
    member = Membership.objects.get(room__name=private, user=owner)
    requests = [(key, public) for key in keys] + [(keys[0], private), (None, public), (keys[1], "bad name!")]
    sockets_grant(requests[:1])  # the room exists from here on: no creation in the measured batch
    with CaptureQueriesContext(connection) as queries:
        results = sockets_grant(requests)
    # sessions with their users, rooms, private memberships, one insert of new memberships
    assert len(queries) <= 4, [q["sql"][:80] for q in queries]
    accesses = [g.access for g in results[:40] if isinstance(g, Grant)]
    assert len(accesses) == 40 and all(isinstance(a, RoomAccess) and a.name == public for a in accesses)
    assert len({a.user_id for a in accesses}) == 40
    assert Membership.objects.filter(room__name=public).count() == 40
    refusals = [r.code for r in results[40:] if isinstance(r, ChatError)]
    assert refusals == ["forbidden", "unauthenticated", "invalid_request"]
    assert member.pk  # the private room's member is untouched


def test_batched_replays_are_each_sockets_own_slice(committed):
    user = UserFactory()
    rooms = [room_join(user=user, name=f"rep-{uuid.uuid4().hex[:8]}") for _ in range(2)]
    for access in rooms:
        for n in range(30):
            message_post(access=access, text=f"{access.name} {n}", client_id=None)
    requests = [(rooms[0], None, 5), (rooms[0], 25, 50), (rooms[1], 28, 50), (rooms[1], 99, 3), (rooms[1], 0, 50)]
    with CaptureQueriesContext(connection) as queries:
        replays = sockets_replay(requests)
    # heads, then per room one events read and one corrections read
    assert len(queries) <= 5
    seqs = [[int(f.split('"seq": ')[1].split(",")[0]) for f in r.frames] for r in replays]
    assert seqs == [list(range(26, 31)), list(range(26, 31)), [29, 30], [28, 29, 30], list(range(1, 31))]
    assert [r.reset for r in replays] == [False, False, False, True, False]
    assert all(r.last_seq == 30 for r in replays)


async def test_calls_waiting_while_a_batch_runs_go_together_in_the_next():
    batches: list[list[int]] = []

    def double(items: list[int]) -> list[int | ChatError]:
        batches.append(items)
        return [ChatError("invalid_request", "odd") if i % 2 else i * 2 for i in items]

    batcher = Batcher(double, backlog=1000)

    async def one(i: int):
        try:
            return await batcher.submit(i)
        except ChatError as exc:
            return exc.code

    results = await asyncio.gather(*(one(i) for i in range(100)))
    assert results == [i * 2 if i % 2 == 0 else "invalid_request" for i in range(100)]
    assert sorted(i for b in batches for i in b) == list(range(100))
    assert len(batches) <= 3  # the first alone, then everyone who queued behind it


async def test_a_full_backlog_is_refused_not_queued():
    import threading

    from chat.threads import Overloaded

    release = threading.Event()

    def held(items: list[int]) -> list[int]:
        release.wait(10)
        return items

    batcher = Batcher(held, backlog=2)
    running = [asyncio.create_task(batcher.submit(i)) for i in range(2)]
    await asyncio.sleep(0.1)  # the first batch is in the pool, held
    waiting = [asyncio.create_task(batcher.submit(i)) for i in range(2, 4)]
    await asyncio.sleep(0.1)
    try:
        await batcher.submit(4)
    except Overloaded:
        refused = True
    else:
        refused = False
    release.set()
    assert await asyncio.gather(*running, *waiting) == [0, 1, 2, 3]
    assert refused


@pytest.fixture
def redis_url_named(settings) -> str:
    return settings.REDIS_URL.split("?")[0] + "?client_name=chat-pool-test"


async def test_the_redis_pool_is_bounded_and_callers_wait(settings, redis_url_named):
    """200 rate checks at once through a pool of 2 connections: none fails, all counted."""
    import redis.asyncio as aioredis

    from chat import ratelimit

    settings.REDIS_URL = redis_url_named
    settings.REDIS_MAX_CONNECTIONS = 2
    settings.CHAT_RATE_LIMIT = "1000/60s"
    user_id = uuid.uuid4().int % 10**9
    seen = aioredis.Redis.from_url(redis_url_named.split("?")[0])
    peak = 0

    async def watch():
        nonlocal peak
        while True:
            clients = await seen.client_list()
            peak = max(peak, sum(c.get("name") == "chat-pool-test" for c in clients))
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    results = await asyncio.gather(*(ratelimit.allow(user_id) for _ in range(200)))
    watcher.cancel()
    assert all(results)
    keys = await seen.keys(f"chat:rate:{user_id}:*")
    assert sum([int(await seen.get(k)) for k in keys]) == 200  # every call reached Redis
    assert 1 <= peak <= 2
    await seen.aclose()
