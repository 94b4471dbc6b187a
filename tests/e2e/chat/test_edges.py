"""WebSocket edges against a real daphne: broken UTF-8, oversized frames, hostile
JSON, extra fields, look-alike origins, invisible characters in room names and
the per-room scope of client_id.

The module runs its own daphne (`module_server`) so that its log holds only these
tests' output: each test reads the log from where it started and finds no traceback.
"""

import asyncio
import json
import uuid
from typing import Any

import pytest
import websockets

from chat.models import Room
from events.models import Event
from tests.conftest import session_cookie
from tests.factories import UserFactory
from tests.support.ws import ChatClient, refused_then_alive, sent_and_seen

pytestmark = pytest.mark.e2e


def run(coro):
    return asyncio.run(coro)


def new_room() -> str:
    return f"edge-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def accounts(django_db_setup, django_db_blocker) -> list[tuple[Any, str]]:
    """Two users and their session cookies, shared by the module: every test has
    rooms of its own, and fewer users keep later tests' mailing lists short."""
    with django_db_blocker.unblock():
        return [(user, session_cookie(user)) for user in (UserFactory(), UserFactory())]


@pytest.fixture
def people(committed, accounts) -> list[tuple[Any, str]]:
    return accounts


async def closed_code(c: ChatClient, timeout: float = 5.0) -> int | None:
    """Read until the server closes the socket; its close code."""
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await asyncio.wait_for(c.ws.recv(), timeout)
    return c.close_code


async def close_code_after(base: str, room: str, cookie: str, payload: bytes | str) -> int | None:
    """Send one raw text frame after the replay; the code the server then closes with."""
    c = await ChatClient.connect(base, room, cookie=cookie)
    await c.history()
    await c.ws.send(payload, text=True)
    return await closed_code(c)


def test_invalid_utf8_in_a_text_frame_is_closed_with_1007(module_server, people, no_traceback):
    _, cookie = people[0]
    room = new_room()

    # A text frame whose payload is not UTF-8 (a lone continuation byte, then an overlong NUL).
    payload = b'{"message": "\x80\xc0\x80"}'
    assert run(close_code_after(module_server.ws, room, cookie, payload)) == 1007
    assert Room.objects.get(name=room).stream.head == 0


def test_a_frame_over_the_transport_limit_is_closed_cleanly(module_server, people, no_traceback):
    _, cookie = people[0]
    room = new_room()

    async def scenario():
        code = await close_code_after(module_server.ws, room, cookie, json.dumps({"message": "x" * (1024 * 1024 + 16)}))
        again = await ChatClient.connect(module_server.ws, room, cookie=cookie)  # the server is fine
        _, end = await again.history()
        await again.close()
        return code, end

    code, end = run(scenario())
    assert code == 1009  # "message too big", from daphne's WebSocket layer
    assert end["last_seq"] == 0


@pytest.mark.parametrize(
    "frame, code, named",
    [
        ('{"message": NaN}', "invalid_json", "NaN"),
        ('{"message": "hi", "extra": Infinity}', "invalid_json", "Infinity"),
        ('{"message": "hi", "extra": -Infinity}', "invalid_json", "-Infinity"),
        ('{"message": "hi", "n": 1e999}', "invalid_json", "1e999"),
        ('{"type": "read", "seq": 1e999}', "invalid_json", "1e999"),
        ('{"message": "hi", "deep": ' + "[" * 10_000 + "]" * 10_000 + "}", "invalid_json", "nested"),
        ("[" * 10_000 + "]" * 10_000, "invalid_json", "nested"),
        ('{"message": "hi", "deep": ' + '{"a":' * 10_000 + "1" + "}" * 10_001, "invalid_json", "nested"),
    ],
)
def test_non_finite_numbers_and_deep_nesting_are_refused_and_the_socket_stays_open(
    module_server, people, no_traceback, frame, code, named
):
    _, cookie = people[0]
    room = new_room()

    error, ack = run(refused_then_alive(module_server.ws, room, cookie=cookie, frame=frame))
    assert error["code"] == code and named in error["detail"]
    assert ack["type"] == "ack" and ack["seq"] == 1  # nothing was written for the bad frame


@pytest.mark.parametrize(
    "frame, named",
    [
        ({"nomessage": 1}, "'message'"),
        ({"message": 42}, "'message'"),
        ({"message": "   "}, "'message'"),
        ({"message": "x" * 4001}, "'message'"),
        ({"message": "ok", "client_id": 7}, "'client_id'"),
        ({"message": "ok", "client_id": ""}, "'client_id'"),
        ({"message": "ok", "client_id": "x" * 65}, "'client_id'"),
        ({"message": "ok", "client_id": "tab\there"}, "'client_id'"),
        ({"type": "read", "seq": -1}, "'seq'"),
        ({"type": "read", "seq": "3"}, "'seq'"),
        ({"type": "chat.edit", "target_seq": "1", "message": "x"}, "'target_seq'"),
        ({"type": "chat.edit", "target_seq": 1, "message": ""}, "'message'"),
        ({"type": "chat.redact", "target_seq": 0}, "'target_seq'"),
        ({"type": "chat.redact", "target_seq": 1, "reason": ["why"]}, "'reason'"),
        ({"type": 5, "message": "x"}, "'type'"),
    ],
)
def test_an_error_names_the_bad_field(module_server, people, no_traceback, frame, named):
    _, cookie = people[0]

    async def scenario():
        c = await ChatClient.connect(module_server.ws, new_room(), cookie=cookie)
        await c.history()
        await c.send(frame)
        error = await c.until("error")
        await c.close()
        return error

    error = run(scenario())
    assert error["code"] in ("invalid_message", "unknown_type")
    assert error["detail"].startswith(named), error["detail"]


def test_extra_fields_are_ignored_and_never_stored(module_server, people, no_traceback):
    (alice, cookie), (_, other) = people
    room = new_room()

    frame = {
        "type": "chat.message",
        "message": "with extras",
        "client_id": "x-1",
        "username": "mallory",
        "seq": 999,
        "replay": True,
        "admin": {"nested": [1, 2]},
    }
    ack, seen = run(sent_and_seen(module_server.ws, room, sender=cookie, watcher=other, frame=frame))
    assert ack["seq"] == 1 and ack["client_id"] == "x-1"
    assert seen["username"] == alice.username and seen["seq"] == 1 and seen["replay"] is False
    assert set(seen) == {"type", "room", "seq", "id", "username", "message", "ts", "client_id", "replay"}
    stored = Event.objects.get(stream__room__name=room, seq=1)
    assert stored.data == {"message": "with extras"} and stored.actor_id == alice.pk


@pytest.mark.parametrize(
    "origin",
    [
        "http://127.0.0.1.evil.example",
        "http://evil.example/127.0.0.1",
        "http://127.0.0.1@evil.example",
        "null",
        "http://127.0.0.1:{wrong_port}",
        "http://localhost:{wrong_port}",
        "http://127.0.0.1",  # port 80, not the server's
        "ftp://127.0.0.1:{port}",
        "http://127.0.0.1:{port}/path",
    ],
)
def test_look_alike_origins_are_refused_at_the_handshake(module_server, people, no_traceback, origin):
    _, cookie = people[0]
    room = new_room()
    wrong_port = module_server.port + 1 if module_server.port < 65535 else module_server.port - 1
    origin = origin.format(port=module_server.port, wrong_port=wrong_port)

    async def scenario():
        with pytest.raises(websockets.InvalidStatus) as info:
            await websockets.connect(
                f"{module_server.ws}/ws/chat/{room}/", additional_headers={"Cookie": cookie, "Origin": origin}
            )
        return info.value.response.status_code

    assert run(scenario()) == 403
    assert not Room.objects.filter(name=room).exists()


@pytest.mark.parametrize(
    "headers",
    [
        [("Origin", "http://127.0.0.1:{port}, http://evil.example")],
        [("Origin", "http://127.0.0.1:99999")],
        [("Origin", "http://127.0.0.1:{port}"), ("Origin", "http://evil.example")],
    ],
    ids=["two-in-one", "port-out-of-range", "header-twice"],
)
def test_malformed_origin_headers_are_refused_by_the_handshake(module_server, people, no_traceback, headers):
    """daphne's WebSocket layer (autobahn) answers 400 to an Origin it cannot parse, before the app runs."""
    _, cookie = people[0]
    room = new_room()
    sent = [(name, value.format(port=module_server.port)) for name, value in headers] + [("Cookie", cookie)]

    async def scenario():
        with pytest.raises(websockets.InvalidStatus) as info:
            await websockets.connect(f"{module_server.ws}/ws/chat/{room}/", additional_headers=sent)
        return info.value.response.status_code

    assert run(scenario()) == 400
    assert not Room.objects.filter(name=room).exists()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "LOCALHOST"])
def test_the_servers_own_origin_is_accepted(module_server, people, no_traceback, host):
    _, cookie = people[0]

    async def scenario():
        c = await ChatClient.connect(
            module_server.ws, new_room(), cookie=cookie, origin=f"http://{host}:{module_server.port}"
        )
        _, end = await c.history()
        await c.close()
        return end

    assert run(scenario())["type"] == "history.end"


def test_configured_origins_replace_the_default(start_server, people):
    daphne = start_server(CHAT_ALLOWED_ORIGINS="https://chat.example.com,http://localhost:8080")
    _, cookie = people[0]

    async def connect(origin: str) -> int:
        try:
            ws = await websockets.connect(
                f"{daphne.ws}/ws/chat/{new_room()}/", additional_headers={"Cookie": cookie, "Origin": origin}
            )
        except websockets.InvalidStatus as exc:
            return exc.response.status_code
        await ws.close()
        return 101

    async def scenario():
        return [
            await connect(origin)
            for origin in (
                "https://chat.example.com",
                "https://chat.example.com:443",
                "http://localhost:8080",
                "http://chat.example.com",
                "https://chat.example.com:8443",
                daphne.http,  # the server's own origin is no longer implied
            )
        ]

    assert run(scenario()) == [101, 101, 101, 403, 403, 403]


@pytest.mark.parametrize(
    "name",
    [
        "evil\u202etxt.exe",
        "zero\u200bwidth",
        "joiner\u200dname",
        "bom\ufeffroom",
        "\u2066isolate\u2069",
        "soft\u00adhyphen",
    ],
)
def test_room_names_with_invisible_or_direction_characters_are_refused(module_server, people, no_traceback, name):
    _, cookie = people[0]

    async def scenario():
        c = await ChatClient.connect(module_server.ws, name, cookie=cookie)
        frame = await c.recv()
        return frame, await closed_code(c)

    frame, code = run(scenario())
    assert frame["code"] == "invalid_request" and code == 4400
    assert "invisible" in frame["detail"]
    assert not Room.objects.filter(name=name).exists()


def test_client_id_is_scoped_per_room(module_server, people, no_traceback):
    _, cookie = people[0]
    first, second = new_room(), new_room()

    async def scenario():
        a = await ChatClient.connect(module_server.ws, first, cookie=cookie)
        b = await ChatClient.connect(module_server.ws, second, cookie=cookie)
        await a.history()
        await b.history()
        in_a = await a.post("same words", client_id="shared-key")
        in_b = await b.post("same words", client_id="shared-key")
        again_b = await b.post("same words", client_id="shared-key")
        await a.close()
        await b.close()
        return in_a, in_b, again_b

    in_a, in_b, again_b = run(scenario())
    assert in_a["type"] == in_b["type"] == "ack"
    assert in_a["duplicate"] is False and in_b["duplicate"] is False
    assert in_a["id"] != in_b["id"] and in_a["seq"] == in_b["seq"] == 1
    assert again_b["duplicate"] is True and again_b["id"] == in_b["id"]  # within one room it still deduplicates
    events = Event.objects.filter(client_id="shared-key", stream__room__name__in=[first, second])
    assert sorted(e.stream.key for e in events) == sorted([f"room:{first}", f"room:{second}"])
