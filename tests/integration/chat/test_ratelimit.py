"""The per-user send rate on a real Redis: counted per window, shared, expiring."""

import uuid

import redis.asyncio as aioredis

from chat import ratelimit
from tests.support.ratewindow import afresh_window, window_of


async def test_counts_per_user_refuses_over_the_rate_and_expires_the_window(settings):
    settings.CHAT_RATE_LIMIT = "3/30s"
    user_id, other = (uuid.uuid4().int % 10**12 for _ in range(2))
    client = aioredis.Redis.from_url(settings.REDIS_URL)
    try:
        await client.script_flush()  # the first call must load the script itself
        # The four counts fall in one window: they start with at least 5 s of it left.
        window = await afresh_window(30, need=5)
        assert [await ratelimit.allow(user_id) for _ in range(4)] == [True, True, True, False]
        assert await ratelimit.allow(other)  # another user's count is apart
        assert window_of(30) == window, "the test itself took longer than 5 s"
        keys = [key async for key in client.scan_iter(f"chat:rate:{user_id}:*")]
        assert len(keys) == 1
        assert int(await client.get(keys[0])) == 4
        assert 0 < await client.ttl(keys[0]) <= 31
    finally:
        await client.aclose()


async def test_without_redis_the_limit_is_not_enforced(settings):
    settings.CHAT_RATE_LIMIT = "1/30s"
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    user_id = uuid.uuid4().int % 10**12
    assert [await ratelimit.allow(user_id) for _ in range(3)] == [True, True, True]
