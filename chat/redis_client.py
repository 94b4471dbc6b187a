"""The asyncio Redis client of the running event loop, shared by the rate limit
and presence: one bounded pool per server process (REDIS_URL).

The pool holds at most REDIS_MAX_CONNECTIONS connections; a caller that finds
them all busy waits up to REDIS_POOL_TIMEOUT seconds for one (redis-py's
blocking pool) instead of failing, so a burst of sockets queues for Redis rather
than opening a connection each.
"""

import asyncio
import weakref

import redis.asyncio as aioredis
from django.conf import settings

_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis]" = weakref.WeakKeyDictionary()


def redis_client() -> aioredis.Redis:
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.REDIS_URL,
            max_connections=settings.REDIS_MAX_CONNECTIONS,
            timeout=settings.REDIS_POOL_TIMEOUT,
        )
        client = _clients[loop] = aioredis.Redis(connection_pool=pool)
    return client
