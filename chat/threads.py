"""Where the sockets' database work runs: one sized thread pool, and batching.

`db(service)` runs a synchronous service in the process's database thread pool
(CHAT_DB_THREADS threads, each borrowing a pooled connection per call), not in
Channels' single thread-sensitive executor, which would queue every socket's
queries behind each other.

`Batcher` is group commit for reads: the calls submitted while one batch is in
the pool go together in the next, as one call of a service that takes a list.
Under a storm of joins a few queries serve hundreds of sockets; a lone join
waits for nothing.
"""

import asyncio
import functools
import threading
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings

from .errors import ChatError

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def db_executor() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=settings.CHAT_DB_THREADS, thread_name_prefix="chat-db")
        return _executor


@functools.cache
def db(func: Any) -> Any:
    """`func` as a coroutine function run in the database thread pool (one wrapper per service)."""
    return database_sync_to_async(func, thread_sensitive=False, executor=db_executor())


class Overloaded(Exception):
    """More calls are waiting than the batcher takes: the caller should come back later."""


class Batcher[T, R]:
    """Collects items and runs `func(items)` once per batch in the database pool.

    `func` returns one result per item, in order: a value, or a ChatError for
    that item alone. An exception raised by `func` fails the whole batch."""

    def __init__(self, func: Callable[[list[T]], Sequence[R | ChatError]], *, backlog: int) -> None:
        self.func = db(func)
        self.backlog = backlog
        self.waiting: list[tuple[T, asyncio.Future[R]]] = []
        self.running: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        if len(self.waiting) >= self.backlog:
            raise Overloaded
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self.waiting.append((item, future))
        if self.running is None:
            self.running = asyncio.create_task(self._run())
        return await future

    async def _run(self) -> None:
        try:
            while self.waiting:
                batch, self.waiting = self.waiting, []
                try:
                    results = await self.func([item for item, _ in batch])
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():  # the socket went away while it waited
                        continue
                    if isinstance(result, ChatError):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self.running = None


def per_loop[T](factory: Callable[[], T]) -> Callable[[], T]:
    """`factory()` made once per event loop (one per server process), forgotten with its loop."""
    made: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = weakref.WeakKeyDictionary()

    def get() -> T:
        loop = asyncio.get_running_loop()
        found = made.get(loop)
        if found is None:
            found = made[loop] = factory()
        return found

    return get
