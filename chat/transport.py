"""daphne's WebSocket layer, made to close with a code on protocol errors.

autobahn (under daphne) fails a connection on a protocol error (invalid UTF-8 in
a text frame, a message over daphne's 1 MiB limit) by dropping the TCP
connection (its `failByDrop` option, on by default): the client sees 1006 and
cannot tell why. With the option off it sends the close frame RFC 6455 names
first (1007 invalid payload, 1009 message too big) and drops the connection only
if the client does not answer within autobahn's close handshake timeout.
daphne's command line does not expose the option, so the ASGI module installs
this factory before daphne builds its own.
"""

from typing import Any

import daphne.server
from daphne.ws_protocol import WebSocketFactory


class CleanCloseFactory(WebSocketFactory):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # daphne sets its own options (ping, sizes) after this and leaves this one alone.
        self.setProtocolOptions(failByDrop=False)


def daphne_close_cleanly() -> None:
    """Make daphne's server build CleanCloseFactory; call before daphne starts serving."""
    daphne.server.WebSocketFactory = CleanCloseFactory
