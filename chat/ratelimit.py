"""Per-user send rate, shared by every server process through Redis.

A fixed window of CHAT_RATE_LIMIT (`<n>/<secs>s`); when Redis cannot be reached
the limit is not enforced rather than refusing every message.

`post_verdict` also checks, in the same script and round trip, that the socket's
rights were not revoked since its join (chat.revocation writes the keys), so a
post between a revocation and the socket's close is refused without a query.
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

# KEYS: the rate key, then chat.revocation.Grant.keys(): revoked session, user's
# proof, revoked membership, room made private. ARGV: window, the socket's user
# proof, 1 if it joined a private room. A refusal does not count against the rate.
_CHECK = """
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
local proof = redis.call('GET', KEYS[3])
if proof and proof ~= ARGV[2] then return -1 end
if ARGV[3] == '1' then
  if redis.call('EXISTS', KEYS[4]) == 1 then return -2 end
elseif redis.call('EXISTS', KEYS[5]) == 1 then return -3 end
local n = redis.call('INCR', KEYS[1]) if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end return n
"""
_CHECK_SHA = hashlib.sha1(_CHECK.encode()).hexdigest()
# post_verdict's answers besides a count.
_REFUSALS = {-1: "unauthenticated", -2: "forbidden", -3: "private"}


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
    return await _run(_COUNT, _COUNT_SHA, user_id, [], []) == "ok"


async def post_verdict(user_id: int, *, keys: list[str], proof: str, private: bool) -> str:
    """One post by a socket: "ok", "rate_limited", or why its rights are gone:
    "unauthenticated", "forbidden", or "private" (its room became private since
    its join: check the membership in the database)."""
    return await _run(_CHECK, _CHECK_SHA, user_id, keys, [proof, "1" if private else "0"])


async def _run(script: str, sha: str, user_id: int, keys: list[str], args: list[str]) -> str:
    limit, seconds = parse_rate(settings.CHAT_RATE_LIMIT)
    window = int(time.time() // seconds)
    rate_key = f"chat:rate:{user_id}:{window}"
    client = redis_client()
    try:
        try:
            count = await client.evalsha(sha, 1 + len(keys), rate_key, *keys, int(seconds) + 1, *args)
        except NoScriptError:  # first use since Redis started: load it
            count = await client.eval(script, 1 + len(keys), rate_key, *keys, int(seconds) + 1, *args)
    except (aioredis.RedisError, OSError):
        logger.warning("rate limit and revocations not enforced: Redis unavailable", extra={"user_id": user_id})
        return "ok"
    count = int(count)
    if count < 0:
        return _REFUSALS[count]
    return "ok" if count <= limit else "rate_limited"
