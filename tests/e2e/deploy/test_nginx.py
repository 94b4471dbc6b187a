"""The deployment recipe, run: the shipped nginx site (TLS, WebSockets, static files)
in front of two daphne processes started with the systemd unit's options and the
production settings of deploy/chat.env.example."""

import asyncio
import http.client
import shlex
import time
import uuid

import pytest
from websockets.exceptions import ConnectionClosed

from tests.support.deploy import DEPLOY, env_file
from tests.support.nginx import Certificate, Nginx, self_signed_certificate
from tests.support.ws import ChatClient

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

UNIT = DEPLOY / "systemd" / "chat-daphne@.service"
# Longer than nginx's default proxy_read_timeout (60 s), which would close the socket.
IDLE_SECONDS = 68
# The test's own: the site runs under the production settings except where this host differs.
HOST_ONLY = {"DATABASE_URL", "REDIS_URL", "EMAIL_URL", "DJANGO_SECRET_KEY", "DJANGO_STATIC_ROOT", "SITE_URL"}


def unit_daphne_options() -> tuple[str, ...]:
    """daphne's options in chat-daphne@.service's ExecStart, minus the endpoint (the test binds its own port)."""
    (line,) = [line for line in UNIT.read_text().splitlines() if line.startswith("ExecStart=")]
    argv = shlex.split(line.removeprefix("ExecStart="))
    assert argv[0].endswith("/daphne") and argv[-1] == "config.asgi:application"
    options = argv[1:-1]
    i = options.index("-e")
    assert options[i + 1].startswith("tcp:port=%i:interface=127.0.0.1:")
    del options[i : i + 2]
    return tuple(options)


def production_settings() -> dict[str, str]:
    settings = {k: v for k, v in env_file().items() if k not in HOST_ONLY}
    settings["DJANGO_ALLOWED_HOSTS"] = "localhost"
    settings["DJANGO_CSRF_TRUSTED_ORIGINS"] = ""
    return settings


@pytest.fixture
def site(tmp_path, start_server):
    """nginx with the shipped site over two daphne processes; (nginx, [daphne A, daphne B], certificate)."""
    options = unit_daphne_options()
    assert "--websocket_timeout" in options and options[options.index("--websocket_timeout") + 1] == "-1"
    # daphne pings a socket idle for 20 s; pushed past the test so the idle socket below sees
    # no byte at all, and only nginx's proxy_read_timeout decides whether it survives.
    servers = [start_server(*options, "--ping-interval", "600", **production_settings()) for _ in range(2)]
    static_root = tmp_path / "static"
    static_root.mkdir()
    (static_root / "probe.txt").write_text("served by nginx\n")
    cert = self_signed_certificate(tmp_path)
    nginx = Nginx.for_site(
        tmp_path / "nginx", upstreams=[s.port for s in servers], cert=cert, static_root=static_root
    ).start()
    yield nginx, servers, cert
    nginx.stop()


def _get(port: int, path: str, cert: Certificate | None = None) -> http.client.HTTPResponse:
    if cert is None:
        conn = http.client.HTTPConnection("localhost", port, timeout=10)
    else:
        conn = http.client.HTTPSConnection("localhost", port, timeout=10, context=cert.client_context())
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    return response


def test_http_through_nginx_redirects_to_https_serves_static_and_trusts_the_proxy(site):
    nginx, _, cert = site
    plain = _get(nginx.http_port, "/chat/x/?a=1")
    assert plain.status == 301
    assert plain.headers["Location"] == "https://localhost/chat/x/?a=1"

    # With SECURE_SSL_REDIRECT on, a proxy that did not pass X-Forwarded-Proto would loop here.
    login = _get(nginx.https_port, "/accounts/login/", cert)
    assert login.status == 200
    assert login.headers["Strict-Transport-Security"].startswith("max-age=31536000")

    static = _get(nginx.https_port, "/static/probe.txt", cert)  # not collected by Django: nginx's alias
    assert static.status == 200 and static.headers["Server"].startswith("nginx")
    assert static.headers["Cache-Control"] == "max-age=3600"


async def _seqs_until(client: ChatClient, seqs: list[int], last: int, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not seqs or seqs[-1] < last:
            frame = await client.recv(timeout)
            if frame["type"] == "chat.message":
                seqs.append(frame["seq"])


def test_chat_through_nginx_survives_a_killed_daphne_and_an_idle_minute(site, make_user):
    nginx, (first, _), cert = site
    base = f"wss://localhost:{nginx.https_port}"
    tls = cert.client_context()
    room, quiet_room = f"ng-{uuid.uuid4().hex[:8]}", f"ng-quiet-{uuid.uuid4().hex[:8]}"
    (_, alice), (_, bob), (_, carol), (_, dave) = make_user(), make_user(), make_user(), make_user()

    async def connect(cookie: str, name: str, query: str = "") -> ChatClient:
        # Browsers never send WebSocket pings; neither do these clients.
        return await ChatClient.connect(base, name, cookie=cookie, query=query, ssl=tls, ping_interval=None)

    async def chat() -> dict[str, object]:
        a, b = await connect(alice, room), await connect(bob, room)
        await a.history()
        await b.history()
        seen: dict[ChatClient, list[int]] = {a: [], b: []}
        for client, text in ((a, "a1"), (b, "b1"), (a, "a2"), (b, "b2")):
            assert (await client.post(text))["type"] == "ack"
        for client in (a, b):
            await _seqs_until(client, seen[client], 4)

        # SIGKILL one daphne: its socket closes through nginx; the other process keeps its own.
        first.kill()
        done, _ = await asyncio.wait(
            [asyncio.ensure_future(c.ws.wait_closed()) for c in (a, b)], timeout=10, return_when="FIRST_COMPLETED"
        )
        closed = [c for c in (a, b) if c.close_code is not None]
        assert len(done) == 1 and len(closed) == 1, "least_conn should have put the two sockets on two processes"
        (dropped,) = closed
        survivor = b if dropped is a else a

        # Messages sent while the dropped client is away; it resumes through nginx with since=.
        for i in range(3):
            assert (await survivor.post(f"while away {i}"))["type"] == "ack"
        await _seqs_until(survivor, seen[survivor], 7)
        cookie = alice if dropped is a else bob
        back = await connect(cookie, room, query=f"since={seen[dropped][-1]}")
        replay, end = await back.history()
        seen[dropped] += [f["seq"] for f in replay]
        assert end["reset"] is False and end["last_seq"] == 7
        seen[back] = seen.pop(dropped)
        for client in (back, survivor):
            assert (await client.post("after"))["type"] == "ack"
        for client in (back, survivor):
            await _seqs_until(client, seen[client], 9)
        for client in (back, survivor):
            await client.close()
        return {"dropped": seen[back], "survivor": seen[survivor]}

    async def idle() -> tuple[float, dict[str, object]]:
        quiet = await connect(carol, quiet_room)
        await quiet.history()
        # Not a byte either way for longer than nginx's default read timeout, counted from the
        # last frame (the join's presence frames come first). A close raises ConnectionClosed.
        for _ in range(5):
            started = time.monotonic()
            try:
                frame = await quiet.recv(timeout=IDLE_SECONDS)
            except TimeoutError:
                break
            assert frame["type"] == "presence", frame
        idle_for = time.monotonic() - started
        other = await connect(dave, quiet_room)
        await other.history()
        assert (await other.post("still there?"))["type"] == "ack"
        try:
            received = await quiet.until("chat.message", timeout=5)
        except ConnectionClosed as exc:
            raise AssertionError(f"the idle socket was closed: {exc}") from exc
        await other.close()
        await quiet.close()
        return idle_for, received

    seen = asyncio.run(chat())
    assert seen["dropped"] == list(range(1, 10)), "gap or duplicate across the reconnection"
    assert seen["survivor"] == list(range(1, 10))

    idle_for, received = asyncio.run(idle())
    assert idle_for >= IDLE_SECONDS
    assert received["message"] == "still there?" and received["seq"] == 1
