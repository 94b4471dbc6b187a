"""The per-process guard's own logic, with stand-in sockets: which sockets a
revocation concerns, the join race, and the expiry timer."""

import asyncio
from datetime import UTC, datetime, timedelta

from chat.errors import ChatError
from chat.guard import Guard
from chat.revocation import Grant
from chat.services import RoomAccess


class Sock:
    def __init__(self, grant: Grant, regranted: Grant | ChatError | None = None) -> None:
        self.grant: Grant | None = None
        self.planned = grant
        self.regranted = regranted
        self.revoked: list[ChatError] = []
        self.regrants = 0
        self.closed = asyncio.Event()

    def revoke(self, error: ChatError) -> None:
        self.revoked.append(error)
        self.closed.set()

    async def regrant(self) -> Grant:
        self.regrants += 1
        if isinstance(self.regranted, ChatError):
            raise self.regranted
        assert self.regranted is not None
        return self.regranted


def grant(*, user: int = 1, room: int = 10, session: str = "s1", proof: str = "p1", seconds: float = 3600) -> Grant:
    access = RoomAccess(room_id=room, name=f"r{room}", stream_id=room, is_private=False, user_id=user, username="u")
    return Grant(access=access, session=session, proof=proof, expires=datetime.now(UTC) + timedelta(seconds=seconds))


def admitted(guard: Guard, g: Grant) -> Sock:
    sock = Sock(g)
    assert guard.admit(sock, g, since=asyncio.get_running_loop().time())
    return sock


async def test_each_message_closes_exactly_the_sockets_it_concerns():
    guard = Guard()
    alice_1 = admitted(guard, grant(user=1, session="a1", proof="pa", room=10))
    alice_2 = admitted(guard, grant(user=1, session="a2", proof="pa", room=11))
    bob = admitted(guard, grant(user=2, session="b1", proof="pb", room=10))

    guard.apply({"session": "a1"})
    assert [e.code for e in alice_1.revoked] == ["unauthenticated"] and not alice_2.revoked and not bob.revoked

    guard.apply({"user": 2, "proof": "pb"})  # bob's proof unchanged (re-activated, say): nothing
    assert not bob.revoked
    guard.apply({"room": 11, "user": 1})
    assert [e.code for e in alice_2.revoked] == ["forbidden"] and not bob.revoked
    guard.apply({"user": 2, "proof": "-"})
    assert [e.code for e in bob.revoked] == ["unauthenticated"]


async def test_a_revocation_heard_while_a_socket_reads_its_rights_sends_it_back_to_read():
    guard = Guard()
    loop = asyncio.get_running_loop()
    since = loop.time()
    guard.apply({"session": "late"})
    g = grant(session="late")
    assert not guard.admit(Sock(g), g, since=since)
    other = grant(session="unrelated")
    assert guard.admit(Sock(other), other, since=since)
    # A read that began after the revocation was heard saw its effect.
    assert guard.admit(Sock(g), g, since=loop.time())


async def test_left_sockets_are_not_indexed_nor_kept_by_the_expiry_heap():
    guard = Guard()
    socks = [admitted(guard, grant(user=i, session=f"s{i}")) for i in range(500)]
    for sock in socks:
        guard.discard(sock)
    assert not guard.sockets and not guard.by_user and not guard.by_session and not guard.by_room
    assert len(guard.expiries) <= 64


async def test_at_expiry_a_dead_session_is_closed_and_an_extended_one_stays():
    guard = Guard()
    # The extended one expires first, so it was re-checked once the other is closed.
    extended_grant = grant(session="kept", seconds=3600)
    extended = Sock(grant(session="kept", seconds=0.2), regranted=extended_grant)
    expired = Sock(grant(session="gone", seconds=0.3), regranted=ChatError("unauthenticated", "Sign in."))
    for sock in (expired, extended):
        assert guard.admit(sock, sock.planned, since=asyncio.get_running_loop().time())

    await asyncio.wait_for(expired.closed.wait(), 2)
    assert extended.grant is extended_grant
    assert [e.code for e in expired.revoked] == ["unauthenticated"] and "expired" in expired.revoked[0].detail
    assert not extended.revoked and extended.regrants == 1
    assert guard.timer is not None and guard.timer_at == extended_grant.expires.timestamp()
