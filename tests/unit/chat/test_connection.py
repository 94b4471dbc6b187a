"""chat.connection's frames are byte for byte what autobahn would write, and its
Inbox is the part of asyncio.Queue daphne uses."""

import asyncio

import pytest
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.internet.testing import StringTransport

from chat.connection import Inbox, text_frame


def autobahn_frame(payload: bytes) -> bytes:
    protocol = WebSocketServerProtocol()
    protocol.factory = WebSocketServerFactory()
    protocol.transport = StringTransport()
    protocol._connectionMade()
    protocol.state = protocol.STATE_OPEN
    protocol.sendMessage(payload, False)
    return protocol.transport.value()


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 200_000])
def test_a_text_frame_is_what_autobahn_sends(size):
    payload = ("é" * size).encode()[:size]
    assert text_frame(payload) == autobahn_frame(payload)


def test_the_inbox_hands_out_in_order_and_waits_when_empty():
    async def scenario():
        inbox = Inbox()
        inbox.put_nowait({"n": 1})
        inbox.put_nowait({"n": 2})
        assert await inbox.get() == {"n": 1}
        assert await inbox.get() == {"n": 2}
        assert inbox.items is None  # an idle inbox keeps no deque
        waiting = asyncio.ensure_future(inbox.get())
        await asyncio.sleep(0)
        assert not waiting.done()
        inbox.put_nowait({"n": 3})
        assert await asyncio.wait_for(waiting, 1) == {"n": 3}
        # A cancelled reader leaves the inbox usable.
        cancelled = asyncio.ensure_future(inbox.get())
        await asyncio.sleep(0)
        cancelled.cancel()
        await asyncio.sleep(0)
        inbox.put_nowait({"n": 4})
        assert await inbox.get() == {"n": 4}

    asyncio.run(scenario())
