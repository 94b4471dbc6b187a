"""Edits, redactions and archiving over real sockets (daphne, Redis, PostgreSQL)."""

import asyncio
import json
import uuid

import pytest
from django.db import connections

from chat.models import Membership
from chat.services import room_archive, room_join
from tests.support.ws import ChatClient

pytestmark = pytest.mark.e2e


def run(coro):
    return asyncio.run(coro)


async def reply(client: ChatClient, frame: dict) -> dict:
    """Send a frame and return its ack or error; other frames are kept for later reads."""
    await client.send(frame)
    while True:
        got = await client._recv_wire(5.0)
        if got["type"] in ("ack", "error"):
            return got
        client.backlog.append(got)


@pytest.fixture
def trio(make_user):
    """A room with alice (author), bob (member) and mod (moderator), all members."""
    room = f"edits-{uuid.uuid4().hex[:10]}"
    users = {who: make_user() for who in ("alice", "bob", "mod")}
    for user, _ in users.values():
        room_join(user=user, name=room)
    Membership.objects.filter(room__name=room, user=users["mod"][0]).update(is_moderator=True)
    return room, users


def test_edit_is_acked_and_broadcast_and_only_the_author_may_edit(server, trio):
    room, users = trio
    secret = f"typo-{uuid.uuid4().hex}"

    async def scenario():
        a = await ChatClient.connect(server.ws, room, cookie=users["alice"][1])
        b = await ChatClient.connect(server.ws, room, cookie=users["bob"][1])
        await a.history()
        await b.history()
        posted = await a.post(secret, client_id="p1")
        ack = await reply(a, {"type": "chat.edit", "target_seq": posted["seq"], "message": "fixed", "client_id": "e1"})
        edit = await b.until("chat.edit")
        refused = await reply(b, {"type": "chat.edit", "target_seq": posted["seq"], "message": "mine now"})
        unknown = await reply(a, {"type": "chat.edit", "target_seq": 999, "message": "x", "client_id": "e2"})
        malformed = await reply(a, {"type": "chat.edit", "target_seq": "one", "message": "x"})
        still_open = await b.post("bob is still here")
        await a.close()
        await b.close()
        return posted, ack, edit, refused, unknown, malformed, still_open

    posted, ack, edit, refused, unknown, malformed, still_open = run(scenario())
    assert ack["type"] == "ack" and ack["client_id"] == "e1" and ack["seq"] == posted["seq"] + 1
    assert edit == {
        "type": "chat.edit",
        "room": room,
        "seq": ack["seq"],
        "id": ack["id"],
        "username": users["alice"][0].username,
        "target_seq": posted["seq"],
        "message": "fixed",
        "ts": edit["ts"],
        "client_id": "e1",
        "replay": False,
    }
    assert refused["code"] == "forbidden" and refused["detail"] == "Only the author may edit a message."
    assert unknown == {
        "type": "error",
        "code": "invalid_message",
        "detail": "No message with seq 999 in this room.",
        "client_id": "e2",
    }
    assert malformed["code"] == "invalid_message"
    assert still_open["type"] == "ack" and still_open["seq"] == ack["seq"] + 1


def test_redaction_reaches_everyone_and_replays_without_the_text(server, trio):
    room, users = trio
    secret = f"secret-{uuid.uuid4().hex}"

    async def scenario():
        a = await ChatClient.connect(server.ws, room, cookie=users["alice"][1])
        b = await ChatClient.connect(server.ws, room, cookie=users["bob"][1])
        m = await ChatClient.connect(server.ws, room, cookie=users["mod"][1])
        for c in (a, b, m):
            await c.history()
        posted = await a.post(secret)
        await a.post(secret + " again")
        bob_try = await reply(b, {"type": "chat.redact", "target_seq": posted["seq"], "reason": "mine"})
        ack = await reply(m, {"type": "chat.redact", "target_seq": posted["seq"], "reason": "personal data"})
        seen = [await c.until("chat.redact") for c in (a, b)]
        own = await reply(a, {"type": "chat.redact", "target_seq": posted["seq"] + 1, "client_id": "r2"})
        edit_after = await reply(a, {"type": "chat.edit", "target_seq": posted["seq"], "message": "back"})
        late = await ChatClient.connect(server.ws, room, cookie=users["bob"][1])
        replay, end = await late.history()
        resumed = await ChatClient.connect(server.ws, room, cookie=users["bob"][1], query="since=0")
        resumed_replay, _ = await resumed.history()
        for c in (a, b, m, late, resumed):
            await c.close()
        return posted, bob_try, ack, seen, own, edit_after, replay, end, resumed_replay

    posted, bob_try, ack, seen, own, edit_after, replay, end, resumed_replay = run(scenario())
    assert bob_try["code"] == "forbidden"
    assert ack["type"] == "ack"
    for frame in seen:
        assert frame["type"] == "chat.redact" and frame["target_seq"] == posted["seq"] and frame["seq"] == ack["seq"]
        assert frame["username"] == users["mod"][0].username and "message" not in frame
    assert own["type"] == "ack" and own["client_id"] == "r2"
    assert edit_after["code"] == "forbidden" and "redacted" in edit_after["detail"]
    for frames in (replay, resumed_replay):
        assert secret not in json.dumps(frames, ensure_ascii=False)
        first = next(f for f in frames if f["seq"] == posted["seq"])
        assert first["redacted"] is True and first["message"] == "" and first["replay"] is True
        assert [f["seq"] for f in frames] == list(range(frames[0]["seq"], end["last_seq"] + 1))


def test_an_archived_room_refuses_messages_and_still_replays(server, trio):
    room, users = trio

    def archive() -> None:
        # From a worker thread (the socket stays open meanwhile): close its connection after.
        try:
            room_id = Membership.objects.filter(room__name=room).first().room_id
            room_archive(room_id=room_id, actor_id=users["mod"][0].pk)
        finally:
            connections.close_all()

    async def after(a: ChatClient):
        archived = await a.until("chat.room.archived")
        refused = await a.post("too late", client_id="late")
        b = await ChatClient.connect(server.ws, room, cookie=users["bob"][1])
        replay, end = await b.history()
        await a.close()
        await b.close()
        return archived, refused, replay, end

    async def whole():
        a = await ChatClient.connect(server.ws, room, cookie=users["alice"][1])
        await a.history()
        ack = await a.post("last words")
        await asyncio.to_thread(archive)
        return ack, *(await after(a))

    ack, archived, refused, replay, end = run(whole())
    assert archived["seq"] == ack["seq"] + 1 and archived["username"] == users["mod"][0].username
    assert refused == {"type": "error", "code": "forbidden", "detail": "This room is archived.", "client_id": "late"}
    assert [f["message"] for f in replay if f["type"] == "chat.message"] == ["last words"]
    assert end["last_seq"] == archived["seq"]
