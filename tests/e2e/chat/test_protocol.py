"""PROTOCOL.md against a real daphne, real Redis and real PostgreSQL."""

import asyncio
import json
import uuid

import pytest
import websockets

from chat.models import Room
from chat.services import room_join
from tests.support.ratewindow import afresh_window, window_of
from tests.support.ws import ChatClient, refused_then_alive, sent_and_seen

pytestmark = pytest.mark.e2e


def run(coro):
    return asyncio.run(coro)


def new_room() -> str:
    return f"room-{uuid.uuid4().hex[:10]}"


def head_of(name: str) -> int:
    room = Room.objects.filter(name=name).select_related("stream").first()
    return room.stream.head if room else 0


def test_seed_client_plain_message_is_broadcast_and_acked(server, make_user):
    (alice, a_cookie), (_, b_cookie) = make_user(), make_user()
    room = new_room()

    frame = {"message": "hello from the seed"}
    ack, seen = run(sent_and_seen(server.ws, room, sender=a_cookie, watcher=b_cookie, frame=frame))
    assert ack["client_id"] is None and ack["seq"] == 1 and ack["duplicate"] is False
    assert seen["username"] == alice.username and seen["message"] == "hello from the seed"
    assert seen["seq"] == 1 and seen["replay"] is False and seen["room"] == room
    assert seen["id"] == ack["id"]


def test_unicode_room_name_is_nfc_normalised(server, make_user):
    _, cookie = make_user()
    decomposed = "cafe\u0301-" + uuid.uuid4().hex[:6]  # "café" with a combining accent

    async def scenario():
        c = await ChatClient.connect(server.ws, decomposed, cookie=cookie)
        _, end = await c.history()
        await c.close()
        return end

    end = run(scenario())
    assert end["room"] == "caf\u00e9-" + decomposed[-6:]


@pytest.mark.parametrize(
    "frame, code, says",
    [
        ("not json", "invalid_json", "not valid JSON"),
        ("[1, 2]", "invalid_json", "must be a JSON object"),
        (json.dumps({"nomessage": 1}), "invalid_message", "'message' must be a string"),
        (json.dumps({"message": ""}), "invalid_message", "'message' must not be empty"),
        (json.dumps({"message": "   \n\t"}), "invalid_message", "'message' must not be empty"),
        (json.dumps({"message": 42}), "invalid_message", "'message' must be a string"),
        (json.dumps({"message": "a\u0000b"}), "invalid_message", "NUL character"),
        ('{"message": "lone \\ud800 surrogate"}', "invalid_message", "lone surrogate"),
        (json.dumps({"message": "x" * 4001}), "invalid_message", "the limit is 4000"),
        (json.dumps({"message": "ok", "client_id": 7}), "invalid_message", "'client_id' must be a string"),
        (json.dumps({"type": "chat.dance", "message": "x"}), "unknown_type", "'type' 'chat.dance' is not"),
        (json.dumps({"message": "y" * 70000}), "too_large", "larger than 65536 bytes"),
        (b"\x00\x01binary", "too_large", "Binary frames are not accepted"),
    ],
)
def test_bad_frames_get_an_error_keep_the_socket_and_write_nothing(server, make_user, frame, code, says):
    _, cookie = make_user()
    room = new_room()
    error, ack = run(refused_then_alive(server.ws, room, cookie=cookie, frame=frame))
    assert error["type"] == "error" and error["code"] == code
    assert says in error["detail"]  # the sentence says what is wrong
    assert ack["type"] == "ack" and ack["seq"] == 1  # the bad frame consumed no seq
    assert head_of(room) == 1


def test_client_id_conflict_and_duplicate(server, make_user):
    _, cookie = make_user()
    room = new_room()

    async def scenario():
        c = await ChatClient.connect(server.ws, room, cookie=cookie)
        await c.history()
        first = await c.post("once", client_id="k-1")
        again = await c.post("once", client_id="k-1")
        conflict = await c.post("different", client_id="k-1")
        after = await c.post("next")
        await c.close()
        return first, again, conflict, after

    first, again, conflict, after = run(scenario())
    assert first["duplicate"] is False and again["duplicate"] is True
    assert again["seq"] == first["seq"] and again["id"] == first["id"]
    assert conflict["type"] == "error" and conflict["code"] == "conflict" and conflict["client_id"] == "k-1"
    assert "already used for a different message" in conflict["detail"]
    assert after["seq"] == 2
    assert head_of(room) == 2


def test_rate_limit_refuses_then_socket_still_works(start_server, make_user):
    limited = start_server(CHAT_RATE_LIMIT="3/3s")
    _, cookie = make_user()
    room = new_room()

    async def scenario():
        c = await ChatClient.connect(limited.ws, room, cookie=cookie)
        await c.history()
        # All four posts in one window (they start with 2.5 s of it left), the retry in the next.
        window = await afresh_window(3, need=2.5)
        replies = [await c.post(f"m{i}", client_id=f"c{i}") for i in range(4)]
        assert window_of(3) == window, "four posts took longer than 2.5 s"
        await afresh_window(3, need=3)
        retry = await c.post("m3", client_id="c3")
        await c.close()
        return replies, retry

    replies, retry = run(scenario())
    assert [r["type"] for r in replies] == ["ack", "ack", "ack", "error"]
    assert replies[3]["code"] == "rate_limited" and replies[3]["client_id"] == "c3"
    assert "too fast" in replies[3]["detail"]
    assert retry["type"] == "ack" and retry["seq"] == 4
    assert head_of(room) == 4


def test_anonymous_is_refused_with_4401(server, committed):
    room = new_room()

    async def scenario():
        c = await ChatClient.connect(server.ws, room)
        frame = await c.recv()
        with pytest.raises(websockets.ConnectionClosed):
            await c.recv()
        return frame, c.close_code

    frame, code = run(scenario())
    assert frame["type"] == "error" and frame["code"] == "unauthenticated" and "Sign in" in frame["detail"]
    assert code == 4401
    assert not Room.objects.filter(name=room).exists()


def test_private_room_refuses_non_member_with_4403(server, make_user):
    (owner, _), (_, stranger_cookie) = make_user(), make_user()
    room = new_room()
    room_join(user=owner, name=room)
    Room.objects.filter(name=room).update(is_private=True)

    async def scenario():
        c = await ChatClient.connect(server.ws, room, cookie=stranger_cookie)
        frame = await c.recv()
        with pytest.raises(websockets.ConnectionClosed):
            await c.recv()
        return frame, c.close_code

    frame, code = run(scenario())
    assert frame["code"] == "forbidden" and code == 4403
    assert "private and you are not a member" in frame["detail"]


@pytest.mark.parametrize(
    "path, says",
    [
        ("/ws/chat/bad%20name/", "A room name is 1 to 64 letters"),
        ("/ws/chat/" + "x" * 65 + "/", "A room name is 1 to 64 letters"),
        ("/ws/chat/a%2Fb/", "A room name is 1 to 64 letters"),
        ("/ws/chat//", "A room name is 1 to 64 letters"),
        ("/ws/elsewhere/", "no WebSocket endpoint at this path"),
    ],
)
def test_malformed_room_name_is_invalid_request_4400(server, make_user, path, says):
    _, cookie = make_user()

    async def scenario():
        ws = await websockets.connect(server.ws + path, additional_headers={"Origin": server.http, "Cookie": cookie})
        frame = json.loads(await ws.recv())
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
        return frame, ws.close_code

    frame, code = run(scenario())
    assert frame["code"] == "invalid_request" and code == 4400
    assert says in frame["detail"]


@pytest.mark.parametrize("query", ["since=abc", "since=-1", "history=x", "history=1.5"])
def test_malformed_since_or_history_is_invalid_request_4400(server, make_user, query):
    _, cookie = make_user()

    async def scenario():
        c = await ChatClient.connect(server.ws, new_room(), cookie=cookie, query=query)
        frame = await c.recv()
        with pytest.raises(websockets.ConnectionClosed):
            await c.recv()
        return frame, c.close_code

    frame, code = run(scenario())
    assert frame["code"] == "invalid_request" and code == 4400
    assert f"'{query.partition('=')[0]}' must be a non-negative integer" in frame["detail"]  # names the parameter


@pytest.mark.parametrize("origin", ["http://evil.example.com", ""])
def test_foreign_or_missing_origin_is_refused_at_handshake(server, make_user, origin):
    _, cookie = make_user()

    async def scenario():
        headers = {"Cookie": cookie}
        if origin:
            headers["Origin"] = origin
        with pytest.raises(websockets.InvalidStatus) as info:
            await websockets.connect(f"{server.ws}/ws/chat/{new_room()}/", additional_headers=headers)
        return info.value.response.status_code

    assert run(scenario()) == 403


def test_rejoin_replays_last_n_oldest_first(server, make_user):
    _, cookie = make_user()
    room = new_room()

    async def scenario():
        c = await ChatClient.connect(server.ws, room, cookie=cookie)
        await c.history()
        for i in range(60):
            await c.post(f"m{i}")
        await c.close()
        default = await ChatClient.connect(server.ws, room, cookie=cookie)
        d_frames, d_end = await default.history()
        await default.close()
        short = await ChatClient.connect(server.ws, room, cookie=cookie, query="history=5")
        s_frames, s_end = await short.history()
        await short.close()
        return d_frames, d_end, s_frames, s_end

    d_frames, d_end, s_frames, s_end = run(scenario())
    assert [f["seq"] for f in d_frames] == list(range(11, 61))  # CHAT_HISTORY_LIMIT = 50
    assert all(f["replay"] is True for f in d_frames)
    assert d_frames[-1]["message"] == "m59"
    assert d_end == {
        "type": "history.end",
        "room": room,
        "last_seq": 60,
        "count": 50,
        "truncated": False,
        "reset": False,
    }
    assert [f["seq"] for f in s_frames] == [56, 57, 58, 59, 60]


def test_since_replays_exactly_the_missed_events(server, make_user):
    _, cookie = make_user()
    room = new_room()

    async def scenario():
        c = await ChatClient.connect(server.ws, room, cookie=cookie)
        await c.history()
        for i in range(10):
            await c.post(f"m{i}")
        await c.close()
        r = await ChatClient.connect(server.ws, room, cookie=cookie, query="since=7")
        frames, end = await r.history()
        await r.close()
        return frames, end

    frames, end = run(scenario())
    assert [f["seq"] for f in frames] == [8, 9, 10]
    assert end["count"] == 3 and end["last_seq"] == 10 and not end["reset"] and not end["truncated"]


def test_since_ahead_of_head_resets(server, make_user):
    _, cookie = make_user()
    room = new_room()

    async def scenario():
        c = await ChatClient.connect(server.ws, room, cookie=cookie)
        await c.history()
        for i in range(3):
            await c.post(f"m{i}")
        await c.close()
        r = await ChatClient.connect(server.ws, room, cookie=cookie, query="since=999")
        frames, end = await r.history()
        await r.close()
        return frames, end

    frames, end = run(scenario())
    assert end["reset"] is True and end["last_seq"] == 3
    assert [f["seq"] for f in frames] == [1, 2, 3]


def test_since_with_more_missed_than_resume_max_is_truncated(start_server, make_user):
    srv = start_server(CHAT_RESUME_MAX="5")
    _, cookie = make_user()
    room = new_room()

    async def scenario():
        c = await ChatClient.connect(srv.ws, room, cookie=cookie)
        await c.history()
        for i in range(12):
            await c.post(f"m{i}")
        await c.close()
        r = await ChatClient.connect(srv.ws, room, cookie=cookie, query="since=2")
        frames, end = await r.history()
        await r.close()
        return frames, end

    frames, end = run(scenario())
    assert end["truncated"] is True
    assert [f["seq"] for f in frames] == [8, 9, 10, 11, 12]


# Longer than redis-py's socket timeout (about 5 s), which once closed idle sockets, and than daphne's ping interval.
IDLE_SECONDS = 22


@pytest.mark.slow
def test_idle_socket_stays_open_and_receives_on_both_layers(start_server, make_user):
    """A socket idle for 22 s is not closed and receives the next message, on the
    pubsub and the core channel layer (one server each, idle at the same time)."""
    servers = [start_server(CHAT_CHANNEL_LAYER=layer) for layer in ("pubsub", "core")]
    (_, a_cookie), (_, b_cookie) = make_user(), make_user()

    async def idle_then_post(srv):
        room = new_room()
        idle = await ChatClient.connect(srv.ws, room, cookie=a_cookie)
        await idle.history()
        closed = asyncio.ensure_future(idle.ws.wait_closed())
        done, _ = await asyncio.wait([closed], timeout=IDLE_SECONDS)
        closed.cancel()
        if done:
            return f"closed while idle with {idle.close_code}", None
        other = await ChatClient.connect(srv.ws, room, cookie=b_cookie)
        await other.history()
        await other.post("wake up")
        got = await idle.events(1)
        await idle.close()
        await other.close()
        return idle.close_code, got[0]["message"]

    async def scenario():
        return await asyncio.gather(*(idle_then_post(srv) for srv in servers))

    pubsub, core = run(scenario())
    assert pubsub == (1000, "wake up"), f"pubsub layer: {pubsub}"
    assert core == (1000, "wake up"), f"core layer: {core}"
