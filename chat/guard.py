"""Per-process enforcement of revocations (chat.revocation) on this process's sockets.

One Guard per server process. It joins the channel-layer group `chat.control`
once (before any socket's rights are read, so no revocation committed after
that read goes unheard) and keeps an index of its sockets by session digest,
user id and room id, so a `chat.revoke` message closes exactly the affected
local sockets. A socket costs three set entries and one heap entry: no task, no
subscription of its own.

Expiry: one process-wide timer on a heap of the sockets' session expiries.
When it fires, the sockets whose session expired have their rights read again,
in one batch: a session that was extended is rescheduled (and its socket's
grant refreshed), any other is closed with 4401. This also re-checks every
socket at least once per SESSION_COOKIE_AGE.

A revocation that arrives while a socket is between reading its rights and
entering the index would miss it: the Guard remembers the revocations of the
last RECENT seconds, and `admit` refuses a socket one of them may concern (the
caller reads its rights again).
"""

import asyncio
import heapq
import itertools
import logging
import time
from collections import deque
from typing import Any, Protocol

from channels.layers import BaseChannelLayer

from .errors import ChatError
from .layer import CONTROL_GROUP, REVOKE
from .revocation import (
    ACCOUNT_CHANGED,
    EXPIRED,
    NOT_MEMBER,
    NOW_PRIVATE,
    SIGNED_OUT,
    Grant,
    room_members,
)
from .threads import db, per_loop

logger = logging.getLogger(__name__)

# Seconds a revocation is remembered for sockets still reading their rights.
RECENT = 30.0
# Seconds without a revocation after which the process joins chat.control again.
REJOIN = 3600.0


class Guarded(Protocol):
    grant: Grant | None

    def revoke(self, error: ChatError) -> None: ...

    async def regrant(self) -> Grant: ...


class Guard:
    def __init__(self) -> None:
        self.by_session: Index[str] = Index()
        self.by_user: Index[int] = Index()
        self.by_room: Index[int] = Index()
        self.sockets: set[Guarded] = set()
        self.ready: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None
        self.recent: deque[tuple[float, dict[str, Any]]] = deque()
        # (expires at, unix time; tie-break; socket): stale entries are skipped when popped.
        self.expiries: list[tuple[float, int, Guarded]] = []
        self.order = itertools.count()
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = 0.0

    async def subscribe(self, layer: BaseChannelLayer) -> None:
        """Returns once this process hears revocations (the first socket subscribes)."""
        if self.ready is None:
            ready = self.ready = asyncio.get_running_loop().create_future()
            try:
                channel = await layer.new_channel()
                await layer.group_add(CONTROL_GROUP, channel)
            except BaseException as exc:
                self.ready = None  # the next socket tries again
                ready.set_exception(exc)
                ready.exception()  # retrieved, whether or not another socket waits
                raise
            self.task = asyncio.create_task(self._receive(layer, channel))
            ready.set_result(None)
        await asyncio.shield(self.ready)

    async def _receive(self, layer: BaseChannelLayer, channel: str) -> None:
        while True:
            try:
                message = await asyncio.wait_for(layer.receive(channel), REJOIN)
            except asyncio.CancelledError:
                raise
            except TimeoutError:
                # channels-redis's core layer drops a group member after its group_expiry (a day).
                await _quietly(layer.group_add(CONTROL_GROUP, channel))
                continue
            except Exception:
                logger.warning("revocation subscription interrupted", exc_info=True)
                await asyncio.sleep(0.5)
                continue
            if message.get("type") != REVOKE:
                continue
            try:
                self.apply(message)
            except Exception:
                logger.exception("revocation failed %s", message)

    def admit(self, sock: Guarded, grant: Grant, *, since: float) -> bool:
        """Index a socket whose rights were read from `since` (loop time) on; False
        if a revocation heard since then may concern it: read them again."""
        now = asyncio.get_running_loop().time()
        while self.recent and self.recent[0][0] < now - RECENT:
            self.recent.popleft()
        for at, message in reversed(self.recent):  # newest first: only those since the read
            if at < since:
                break
            if _concerns(message, grant):
                return False
        sock.grant = grant
        self.sockets.add(sock)
        self.by_session.add(grant.session, sock)
        self.by_user.add(grant.access.user_id, sock)
        self.by_room.add(grant.access.room_id, sock)
        self._expire_at(sock, grant)
        return True

    def discard(self, sock: Guarded) -> None:
        grant = sock.grant
        if grant is None or sock not in self.sockets:
            return
        self.sockets.discard(sock)
        self.by_session.discard(grant.session, sock)
        self.by_user.discard(grant.access.user_id, sock)
        self.by_room.discard(grant.access.room_id, sock)
        # The heap keeps its entry until it is popped, or rebuilt when mostly stale.
        if len(self.expiries) > 2 * len(self.sockets) + 64:
            self.expiries = [e for e in self.expiries if e[2] in self.sockets]
            heapq.heapify(self.expiries)

    def apply(self, message: dict[str, Any]) -> None:
        """Close this process's sockets that a `chat.revoke` message concerns."""
        self.recent.append((asyncio.get_running_loop().time(), message))
        if "session" in message:
            for sock in self.by_session.get(message["session"]):
                sock.revoke(ChatError("unauthenticated", SIGNED_OUT))
        elif "proof" in message:
            for sock in self.by_user.get(message["user"]):
                if sock.grant is not None and sock.grant.proof != message["proof"]:
                    sock.revoke(ChatError("unauthenticated", ACCOUNT_CHANGED))
        elif "private" in message:
            room = self.by_room.get(message["room"])
            joined_public = [s for s in room if s.grant is not None and not s.grant.access.is_private]
            if joined_public:
                _spawn(self._privatized(message["room"], joined_public))
        elif "user" in message:
            for sock in self.by_user.get(message["user"]):
                if sock.grant is not None and sock.grant.access.room_id == message["room"]:
                    sock.revoke(ChatError("forbidden", NOT_MEMBER))

    async def _privatized(self, room_id: int, sockets: list[Guarded]) -> None:
        users = sorted({s.grant.access.user_id for s in sockets if s.grant})
        members = await db(room_members)(room_id=room_id, user_ids=users)
        for sock in sockets:
            if sock.grant is not None and sock.grant.access.user_id not in members:
                sock.revoke(ChatError("forbidden", NOW_PRIVATE))

    def _expire_at(self, sock: Guarded, grant: Grant) -> None:
        at = grant.expires.timestamp()
        heapq.heappush(self.expiries, (at, next(self.order), sock))
        if self.timer is None or at < self.timer_at:
            if self.timer is not None:
                self.timer.cancel()
            loop = asyncio.get_running_loop()
            self.timer_at = at
            self.timer = loop.call_at(loop.time() + max(at - time.time(), 0), self._expired)

    def _expired(self) -> None:
        self.timer = None
        now = time.time()
        due = []
        while self.expiries and self.expiries[0][0] <= now:
            at, _, sock = heapq.heappop(self.expiries)
            if sock in self.sockets and sock.grant is not None and sock.grant.expires.timestamp() == at:
                due.append(sock)
        if self.expiries:
            at = self.expiries[0][0]
            loop = asyncio.get_running_loop()
            self.timer_at = at
            self.timer = loop.call_at(loop.time() + max(at - now, 0), self._expired)
        if due:
            _spawn(self._recheck(due))

    async def _recheck(self, sockets: list[Guarded]) -> None:
        """Read the rights of sockets whose session passed its expiry (batched by chat.joins)."""
        results = await asyncio.gather(*(sock.regrant() for sock in sockets), return_exceptions=True)
        for sock, result in zip(sockets, results, strict=True):
            if sock not in self.sockets:
                continue
            if isinstance(result, Grant) and result.expires.timestamp() > time.time():
                self.discard(sock)
                self.admit(sock, result, since=asyncio.get_running_loop().time())
            elif isinstance(result, ChatError) and result.code == "forbidden":
                sock.revoke(result)
            elif isinstance(result, BaseException) and not isinstance(result, ChatError):
                # The database is unavailable: try again in a while rather than closing.
                logger.warning("session re-check failed; retrying", exc_info=result)
                if sock.grant is not None:
                    _spawn(self._retry(sock))
            else:
                sock.revoke(ChatError("unauthenticated", EXPIRED))

    async def _retry(self, sock: Guarded) -> None:
        await asyncio.sleep(5)
        if sock in self.sockets:
            await self._recheck([sock])


def _concerns(message: dict[str, Any], grant: Grant) -> bool:
    access = grant.access
    if "session" in message:
        return bool(message["session"] == grant.session)
    if "user" in message and message["user"] != access.user_id:
        return False
    if "proof" in message:
        return bool(message["proof"] != grant.proof)
    return bool(message.get("room") == access.room_id)


class Index[K]:
    """Sockets by a key. A key with one socket maps to it alone: most sessions and
    users have one socket in a process, and a set would cost 200 bytes each."""

    __slots__ = ("map",)

    def __init__(self) -> None:
        self.map: dict[K, Guarded | set[Guarded]] = {}

    def __bool__(self) -> bool:
        return bool(self.map)

    def add(self, key: K, sock: Guarded) -> None:
        found = self.map.get(key)
        if found is None:
            self.map[key] = sock
        elif isinstance(found, set):
            found.add(sock)
        elif found is not sock:
            self.map[key] = {found, sock}

    def discard(self, key: K, sock: Guarded) -> None:
        found = self.map.get(key)
        if found is sock:
            del self.map[key]
        elif isinstance(found, set):
            found.discard(sock)
            if len(found) == 1:
                self.map[key] = next(iter(found))

    def get(self, key: K) -> list[Guarded]:
        """A copy: the caller may close sockets (and so discard them) while it walks it."""
        found = self.map.get(key)
        if found is None:
            return []
        return list(found) if isinstance(found, set) else [found]


async def _quietly(coro: Any) -> None:
    try:
        await coro
    except Exception:
        logger.warning("could not join %s again; retrying later", CONTROL_GROUP, exc_info=True)


# Strong references to the guard's tasks until they finish.
_pending: set[asyncio.Task[None]] = set()


def _spawn(coro: Any) -> None:
    task = asyncio.create_task(coro)
    _pending.add(task)
    task.add_done_callback(_pending.discard)


# The guard of the running event loop (one per server process).
guard = per_loop(Guard)
