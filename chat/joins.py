"""The handshake's database work, batched across the sockets joining at once.

A socket's join is two reads: who it is and whether it may enter the room
(session, user, room, membership), then, once it receives the room's
broadcasts, its replay. Each goes through a Batcher: the sockets that arrive
while one batch is in the database pool share the next, so a reconnect storm
costs a few queries per batch instead of several per socket.
"""

from dataclasses import dataclass

from django.conf import settings

from .errors import ChatError
from .revocation import Grant, sockets_grant
from .services import Replay, RoomAccess, rooms_replay
from .threads import Batcher, per_loop


def sockets_replay(requests: list[tuple[RoomAccess, int | None, int]]) -> list[Replay | ChatError]:
    return list(rooms_replay(requests=requests))


def sockets_enter(
    requests: list[tuple[str | None, str, int | None, int]],
) -> list[tuple[Grant, Replay] | ChatError]:
    """Both reads in one call, for sockets already receiving their room's broadcasts
    (chat.hub's `attach`): (session key, room name, since, history) -> (grant, replay)."""
    grants = sockets_grant([(key, name) for key, name, _, _ in requests])
    wanted: list[tuple[RoomAccess, int | None, int]] = []
    for grant, (_, _, since, limit) in zip(grants, requests, strict=True):
        if isinstance(grant, Grant):
            wanted.append((grant.access, since, limit))
    replays = iter(rooms_replay(requests=wanted) if wanted else [])
    return [(grant, next(replays)) if isinstance(grant, Grant) else grant for grant in grants]


@dataclass
class Joins:
    # (session key, room name) -> what the socket may do, and the proof it still may (chat.revocation).
    access: Batcher[tuple[str | None, str], Grant]
    replay: Batcher[tuple[RoomAccess, int | None, int], Replay]
    enter: Batcher[tuple[str | None, str, int | None, int], tuple[Grant, Replay]]


# The batchers of the running event loop (one per server process).
joins = per_loop(
    lambda: Joins(
        access=Batcher(sockets_grant, backlog=settings.CHAT_JOIN_BACKLOG),
        replay=Batcher(sockets_replay, backlog=settings.CHAT_JOIN_BACKLOG),
        enter=Batcher(sockets_enter, backlog=settings.CHAT_JOIN_BACKLOG),
    )
)
