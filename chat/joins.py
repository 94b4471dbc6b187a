"""The handshake's database work, batched across the sockets joining at once.

A socket's join is two reads: who it is and whether it may enter the room
(session, user, room, membership), then, once it receives the room's
broadcasts, its replay. Each goes through a Batcher: the sockets that arrive
while one batch is in the database pool share the next, so a reconnect storm
costs a few queries per batch instead of several per socket.
"""

import asyncio
import weakref
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AnonymousUser

from .auth import session_users
from .errors import ChatError
from .services import Replay, RoomAccess, rooms_join, rooms_replay
from .threads import Batcher


def sockets_join(requests: list[tuple[str | None, str]]) -> list[RoomAccess | ChatError]:
    """(session key, room name) of each socket -> its RoomAccess, or the refusal."""
    users = session_users(keys=[key for key, _ in requests if key])
    return rooms_join(requests=[(users.get(key or "") or AnonymousUser(), name) for key, name in requests])


def sockets_replay(requests: list[tuple[RoomAccess, int | None, int]]) -> list[Replay | ChatError]:
    return list(rooms_replay(requests=requests))


def sockets_enter(
    requests: list[tuple[str | None, str, int | None, int]],
) -> list[tuple[RoomAccess, Replay] | ChatError]:
    """Both reads in one call, for sockets already receiving their room's broadcasts
    (chat.hub's `attach`): (session key, room name, since, history) -> (access, replay)."""
    accesses = sockets_join([(key, name) for key, name, _, _ in requests])
    wanted: list[tuple[RoomAccess, int | None, int]] = []
    for access, (_, _, since, limit) in zip(accesses, requests, strict=True):
        if isinstance(access, RoomAccess):
            wanted.append((access, since, limit))
    replays = iter(rooms_replay(requests=wanted) if wanted else [])
    return [(access, next(replays)) if isinstance(access, RoomAccess) else access for access in accesses]


@dataclass
class Joins:
    access: Batcher[tuple[str | None, str], RoomAccess]
    replay: Batcher[tuple[RoomAccess, int | None, int], Replay]
    enter: Batcher[tuple[str | None, str, int | None, int], tuple[RoomAccess, Replay]]


_joins: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Joins]" = weakref.WeakKeyDictionary()


def joins() -> Joins:
    """The batchers of the running event loop (one per server process)."""
    loop = asyncio.get_running_loop()
    found = _joins.get(loop)
    if found is None:
        backlog = settings.CHAT_JOIN_BACKLOG
        found = _joins[loop] = Joins(
            access=Batcher(sockets_join, backlog=backlog),
            replay=Batcher(sockets_replay, backlog=backlog),
            enter=Batcher(sockets_enter, backlog=backlog),
        )
    return found
