"""A socket does not outlive its rights (README: "Sessions end where they should"),
against real daphne processes, Redis and PostgreSQL.

Each trigger is the product's own path (the sign-out view, a session row deleted,
a user or room saved as the admin does), run in a thread while the sockets wait;
its revocation is committed when it returns, and the affected socket must get an
`error` frame and then its close code within 2 s, while the other sockets carry on.
"""

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import websockets
from django.test import Client
from django.utils import timezone

from chat import layer
from chat.models import Membership, Room, UserSession
from chat.services import room_join
from tests.conftest import session_cookie
from tests.support.ws import ChatClient

pytestmark = pytest.mark.e2e

DEADLINE = 2.0


def run(coro):
    return asyncio.run(coro)


def new_room() -> str:
    return f"revoke-{uuid.uuid4().hex[:10]}"


def key_of(cookie: str) -> str:
    return cookie.removeprefix("sessionid=")


def head_of(name: str) -> int:
    room = Room.objects.filter(name=name).select_related("stream").first()
    return room.stream.head if room else 0


def sign_out(cookie: str) -> None:
    """POST /accounts/logout/ with this session, as the page's form does."""
    client = Client()
    client.cookies["sessionid"] = key_of(cookie)
    assert client.post("/accounts/logout/").status_code == 302
    assert not UserSession.objects.filter(session_key=key_of(cookie)).exists()


async def until_closed(c: ChatClient, timeout: float = DEADLINE) -> list[dict[str, Any]]:
    """The frames a socket gets until the server closes it (AssertionError after `timeout`)."""
    frames: list[dict[str, Any]] = list(c.backlog)
    try:
        async with asyncio.timeout(timeout):
            while True:
                try:
                    frames.append(await c._recv_wire(timeout))
                except websockets.ConnectionClosed:
                    return frames
    except TimeoutError:
        raise AssertionError(f"socket still open after {timeout} s; it got {frames}") from None


async def joined(server, room: str, cookie: str) -> ChatClient:
    c = await ChatClient.connect(server.ws, room, cookie=cookie)
    await c.history()
    return c


async def revoked_within_deadline(c: ChatClient, trigger: Callable[[], Any], code: int) -> list[dict[str, Any]]:
    """Run the trigger (committed when it returns); the socket ends with an error frame, then `code`."""
    await asyncio.to_thread(trigger)
    started = time.monotonic()
    frames = await until_closed(c)
    assert time.monotonic() - started < DEADLINE
    assert c.close_code == code
    assert frames and frames[-1]["type"] == "error", frames
    assert frames[-1]["code"] == {4401: "unauthenticated", 4403: "forbidden"}[code]
    assert frames[-1]["detail"].endswith(".")
    return frames


async def still_served(c: ChatClient, room: str) -> None:
    """This socket can still post and hears its own message."""
    ack = await c.post("still here", client_id=str(uuid.uuid4()))
    assert ack["type"] == "ack", ack
    while (event := (await c.events(1))[0])["seq"] < ack["seq"]:
        pass  # others' messages before it
    assert event["seq"] == ack["seq"] and event["room"] == room and event["message"] == "still here"


def test_signing_out_closes_that_sessions_sockets_only(server, make_user):
    (alice, a_cookie), (_, b_cookie) = make_user(), make_user()
    a_other_session = session_cookie(alice)
    room = new_room()

    async def scenario():
        a = await joined(server, room, a_cookie)
        a2 = await joined(server, room, a_other_session)
        b = await joined(server, room, b_cookie)
        frames = await revoked_within_deadline(a, lambda: sign_out(a_cookie), 4401)
        assert "signed out" in frames[-1]["detail"]
        await still_served(b, room)
        await still_served(a2, room)  # the same user's other session is not signed out
        await a2.close()
        await b.close()

    run(scenario())


def revoked_beside_another_user(server, cookie: str, other_cookie: str, trigger, code: int) -> list[dict[str, Any]]:
    """A socket of `cookie` and one of another user in a new room; the trigger closes
    the first (as `revoked_within_deadline` checks) and the other still posts."""
    room = new_room()

    async def scenario():
        a = await joined(server, room, cookie)
        b = await joined(server, room, other_cookie)
        frames = await revoked_within_deadline(a, trigger, code)
        await still_served(b, room)
        await b.close()
        return frames

    return run(scenario())


def test_a_session_deleted_by_an_admin_closes_its_socket(server, make_user):
    (_, a_cookie), (_, b_cookie) = make_user(), make_user()
    # The admin's delete action deletes a queryset of rows.
    revoked_beside_another_user(
        server, a_cookie, b_cookie, lambda: UserSession.objects.filter(session_key=key_of(a_cookie)).delete(), 4401
    )


def test_a_session_saved_with_a_past_expiry_closes_its_socket(server, make_user):
    (_, a_cookie), (_, b_cookie) = make_user(), make_user()

    def expire() -> None:
        session = UserSession.objects.get(session_key=key_of(a_cookie))
        session.expire_date = timezone.now() - timedelta(seconds=1)
        session.save()

    revoked_beside_another_user(server, a_cookie, b_cookie, expire, 4401)


def test_a_password_change_closes_the_users_sockets_and_no_one_elses(server, make_user):
    (alice, a_cookie), (_, b_cookie) = make_user(), make_user()

    def change_password() -> None:
        alice.set_password("a-brand-new-password-7")
        alice.save()

    frames = revoked_beside_another_user(server, a_cookie, b_cookie, change_password, 4401)
    assert "password" in frames[-1]["detail"]


def test_deactivating_a_user_closes_their_sockets(server, make_user):
    (alice, a_cookie), (_, b_cookie) = make_user(), make_user()

    def deactivate() -> None:
        alice.is_active = False
        alice.save()

    revoked_beside_another_user(server, a_cookie, b_cookie, deactivate, 4401)


def test_removing_a_member_of_a_private_room_closes_their_socket_there(server, make_user):
    (alice, a_cookie), (bob, b_cookie) = make_user(), make_user()
    room, elsewhere = new_room(), new_room()
    room_join(user=alice, name=room)
    Room.objects.filter(name=room).update(is_private=True)
    Membership.objects.create(room=Room.objects.get(name=room), user=bob)

    async def scenario():
        a = await joined(server, room, a_cookie)
        a_elsewhere = await joined(server, elsewhere, a_cookie)
        b = await joined(server, room, b_cookie)
        frames = await revoked_within_deadline(
            a, lambda: Membership.objects.filter(room__name=room, user=alice).delete(), 4403
        )
        assert "no longer a member" in frames[-1]["detail"]
        await still_served(b, room)
        await still_served(a_elsewhere, elsewhere)  # her other room is not concerned
        await b.close()
        await a_elsewhere.close()

    run(scenario())


def test_a_public_room_made_private_keeps_only_its_members(server, make_user):
    (_, a_cookie), (carol, c_cookie) = make_user(), make_user()
    room = new_room()

    def make_private() -> None:
        found = Room.objects.get(name=room)
        found.is_private = True
        found.save()  # as the room admin does

    async def scenario():
        a = await joined(server, room, a_cookie)
        c = await joined(server, room, c_cookie)
        # Joining a public room made carol a member; removing her while the room is
        # public takes nothing away (she could join again)...
        await asyncio.to_thread(lambda: Membership.objects.filter(room__name=room, user=carol).delete())
        await still_served(c, room)
        # ...until the room is private: then only members stay.
        frames = await revoked_within_deadline(c, make_private, 4403)
        assert "now private" in frames[-1]["detail"]
        await still_served(a, room)
        await a.close()

    run(scenario())


def test_a_post_right_after_sign_out_is_refused_and_not_appended(server, make_user):
    _, cookie = make_user()
    room = new_room()

    async def scenario():
        a = await joined(server, room, cookie)
        await asyncio.to_thread(sign_out, cookie)
        try:
            await a.send({"type": "chat.message", "message": "after sign-out", "client_id": str(uuid.uuid4())})
        except websockets.ConnectionClosed:
            pass  # the guard was faster: the close arrived before the post could leave
        frames = await until_closed(a)
        return frames, a.close_code

    frames, code = run(scenario())
    assert code == 4401
    assert [f["type"] for f in frames] == ["error"] and frames[0]["code"] == "unauthenticated"
    assert head_of(room) == 0


def test_the_post_path_refuses_on_the_redis_proof_alone(server, make_user, monkeypatch):
    """With the broadcast to the processes lost, the socket is not closed by its guard:
    its next post is refused by the proof that the revocation wrote in Redis, with
    no ack, nothing appended, and the socket closed."""

    class Deaf:
        async def group_send(self, group: str, message: dict[str, Any]) -> None:
            return None

    monkeypatch.setattr(layer, "get_channel_layer", Deaf)
    (_, a_cookie), (_, b_cookie), (carol, c_cookie) = make_user(), make_user(), make_user()
    room, private = new_room(), new_room()
    room_join(user=carol, name=private)
    Room.objects.filter(name=private).update(is_private=True)

    async def refused(c: ChatClient, code: str) -> None:
        client_id = str(uuid.uuid4())
        await c.send({"type": "chat.message", "message": "must not land", "client_id": client_id})
        frames = await until_closed(c)
        assert [(f["type"], f["code"], f["client_id"]) for f in frames] == [("error", code, client_id)]

    async def scenario():
        a = await joined(server, room, a_cookie)
        b = await joined(server, room, b_cookie)
        c = await joined(server, private, c_cookie)
        await asyncio.to_thread(sign_out, a_cookie)
        await refused(a, "unauthenticated")
        assert a.close_code == 4401
        await asyncio.to_thread(lambda: Membership.objects.filter(room__name=private, user=carol).delete())
        await refused(c, "forbidden")
        assert c.close_code == 4403
        await still_served(b, room)
        await b.close()

    run(scenario())
    assert head_of(room) == 1  # b's message only
    assert head_of(private) == 0


def test_a_session_that_expires_while_idle_is_closed_at_its_expiry(server, make_user):
    _, cookie = make_user()
    room = new_room()
    expires = timezone.now() + timedelta(seconds=3)
    UserSession.objects.filter(session_key=key_of(cookie)).update(expire_date=expires)

    async def scenario():
        a = await joined(server, room, cookie)
        frames = await until_closed(a, timeout=3 + DEADLINE)
        return frames, a.close_code, time.time()

    frames, code, closed_at = run(scenario())
    assert code == 4401
    assert frames[-1]["code"] == "unauthenticated" and "expired" in frames[-1]["detail"]
    # Not before the expiry (50 ms for the two clocks' reading), and within the deadline after it.
    assert expires.timestamp() - 0.05 <= closed_at <= expires.timestamp() + DEADLINE


def test_a_session_extended_before_its_expiry_keeps_its_socket(server, make_user):
    """At the expiry the socket's rights are read again: a session that was extended
    meanwhile (Django saves a new expire_date) keeps it open."""
    _, cookie = make_user()
    room = new_room()
    UserSession.objects.filter(session_key=key_of(cookie)).update(expire_date=timezone.now() + timedelta(seconds=1))

    async def scenario():
        a = await joined(server, room, cookie)
        await asyncio.to_thread(
            lambda: UserSession.objects.filter(session_key=key_of(cookie)).update(
                expire_date=timezone.now() + timedelta(hours=1)
            )
        )
        # Past the first expiry and its re-check: the passage of time is what is tested.
        await asyncio.sleep(1 + DEADLINE)
        await still_served(a, room)
        await a.close()

    run(scenario())


def test_a_revocation_reaches_every_process(start_server, make_user):
    first, second = start_server(), start_server()
    (_, cookie), (_, b_cookie) = make_user(), make_user()
    room = new_room()

    async def scenario():
        on_first = await joined(first, room, cookie)
        on_second = await joined(second, room, cookie)
        b = await joined(second, room, b_cookie)
        await asyncio.to_thread(sign_out, cookie)
        started = time.monotonic()
        first_frames, second_frames = await asyncio.gather(until_closed(on_first), until_closed(on_second))
        assert time.monotonic() - started < DEADLINE
        assert on_first.close_code == on_second.close_code == 4401
        assert first_frames[-1]["code"] == second_frames[-1]["code"] == "unauthenticated"
        await still_served(b, room)
        await b.close()

    run(scenario())
