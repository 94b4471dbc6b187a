"""Per-user send rate, shared by every server process through Redis.

A fixed window of CHAT_RATE_LIMIT (`<n>/<secs>s`); when Redis cannot be reached
the limit is not enforced rather than refusing every message.
"""

import functools
import hashlib
import logging
import time

import redis.asyncio as aioredis
from django.conf import settings
from redis.exceptions import NoScriptError

from .redis_client import redis_client

logger = logging.getLogger(__name__)

# Count and, on the window's first message, set the expiry: one command, atomic.
_COUNT = "local n = redis.call('INCR', KEYS[1]) if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end return n"
_COUNT_SHA = hashlib.sha1(_COUNT.encode()).hexdigest()


@functools.cache
def parse_rate(spec: str) -> tuple[int, float]:
    """'20/10s' -> (20, 10.0)."""
    count, _, window = spec.partition("/")
    seconds = float(window.removesuffix("s") or 1)
    if int(count) < 1 or seconds <= 0:
        raise ValueError(f"CHAT_RATE_LIMIT must look like '20/10s', not {spec!r}")
    return int(count), seconds


async def allow(user_id: int) -> bool:
    """Count one message for the user; False when it is over the rate."""
    limit, seconds = parse_rate(settings.CHAT_RATE_LIMIT)
    window = int(time.time() // seconds)
    key = f"chat:rate:{user_id}:{window}"
    client = redis_client()
    try:
        try:
            count = await client.evalsha(_COUNT_SHA, 1, key, int(seconds) + 1)
        except NoScriptError:  # first use since Redis started: load it
            count = await client.eval(_COUNT, 1, key, int(seconds) + 1)
    except (aioredis.RedisError, OSError):
        logger.warning("rate limit not enforced: Redis unavailable", extra={"user_id": user_id})
        return True
    return int(count) <= limit
