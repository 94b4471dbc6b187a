"""Signing out in the browser ends the session's sockets on every server process."""

import asyncio
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from typing import Any

import pytest
import websockets
from playwright.sync_api import expect

from tests.e2e.web.helpers import new_room, wait_connected
from tests.support.ws import ChatClient

pytestmark = pytest.mark.e2e


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop in a thread of its own, for sockets that stay open while the
    test drives the browser (Playwright's sync API owns this thread's loop)."""
    running = asyncio.new_event_loop()
    thread = threading.Thread(target=running.run_forever, daemon=True)
    thread.start()
    yield running
    running.call_soon_threadsafe(running.stop)
    thread.join(10)
    running.close()


def on(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], timeout: float = 15) -> Any:
    return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)


async def closing(c: ChatClient) -> tuple[list[dict[str, Any]], float]:
    """The frames until the server closes the socket, and when it closed (monotonic)."""
    frames = []
    while True:
        try:
            frames.append(await c._recv_wire(30))
        except websockets.ConnectionClosed:
            return frames, time.monotonic()


def test_signing_out_on_the_page_closes_the_sessions_socket_on_another_process(start_server, make_user, open_tab, loop):
    first, second = start_server(), start_server()
    (_, cookie), (_, b_cookie) = make_user(), make_user()
    room = new_room("revoke")
    tab = open_tab(first, cookie, f"/chat/{room}/")
    wait_connected(tab.page)

    async def open_sockets() -> tuple[ChatClient, ChatClient]:
        same = await ChatClient.connect(second.ws, room, cookie=cookie)
        other = await ChatClient.connect(second.ws, room, cookie=b_cookie)
        await same.history()
        await other.history()
        return same, other

    same, other = on(loop, open_sockets())
    watching = asyncio.run_coroutine_threadsafe(closing(same), loop)

    started = time.monotonic()
    tab.page.get_by_role("button", name="Sign out").click()
    expect(tab.page).to_have_url(f"{first.http}/accounts/login/")
    frames, closed_at = watching.result(15)
    assert closed_at - started < 2.0
    assert same.close_code == 4401
    assert frames[-1]["type"] == "error" and frames[-1]["code"] == "unauthenticated"

    async def other_still_served() -> dict[str, Any]:
        ack = await other.post("after her sign-out", client_id=str(uuid.uuid4()))
        await other.close()
        return ack

    assert on(loop, other_still_served())["type"] == "ack"
