"""What the chat relies on of daphne's connection objects, in one place.

daphne hands an ASGI application `send = partial(server.handle_reply, protocol)`,
where `protocol` is the connection's autobahn WebSocket protocol on a Twisted
TCP transport. The socket consumer uses that object for three things the ASGI
interface does not offer:

- `send_text`: a frame goes straight to the connection (no coroutine and no
  re-encoding per socket when a broadcast fans out to thousands of them). It
  writes what autobahn's `sendMessage` would for a server's text message (one
  unmasked, uncompressed, unfragmented frame: RFC 6455 section 5.2), framed once
  per broadcast, and hands it to the socket itself when Twisted holds nothing
  for it: Twisted's `write` would buffer it, register the socket for writing
  (an epoll call), send on the loop's next pass and unregister (another one),
  which was a third of the process's time at 8,800 deliveries/s. Anything else
  (compression, a message being sent in parts, a client behind on reading, TLS
  in daphne) goes through `sendMessage` and Twisted as before;
- `queued_bytes`: how much the transport holds for a client that does not read,
  so a slow consumer is closed (4008) instead of growing the server's memory;
- `release_handshake`: the HTTP upgrade's leftovers that nothing reads again
  (header lists and dicts, the HTTP channel kept as the transport's producer)
  are dropped once the socket is open, and autobahn's empty send deque becomes
  a list: a few KiB per idle socket;
- `share_protocol_options`: autobahn copies each of its ~40 options from the
  factory into every connection's own `__dict__`, and pretty-prints them all for
  a debug log that is off, at every handshake (6 % of a connect storm's CPU).
  Once per process the options go onto daphne's protocol class instead, where
  autobahn finds them (`hasattr`) and copies nothing: a smaller connection and a
  cheaper handshake. daphne configures its one factory before it listens and
  never changes it, so the values are the same; a per-connection override
  (`closeHandshakeTimeout` for a slow client) still lands on the instance.

Under another ASGI server `connection_of` returns None and the consumer uses
the plain ASGI send.

And two things at start-up, `daphne_adjust` (config.asgi calls it once daphne has
imported the application, before daphne builds its server and listens):

- autobahn fails a connection on a protocol error (invalid UTF-8 in a text frame,
  a message over daphne's 1 MiB limit) by dropping the TCP connection (its
  `failByDrop` option, on by default): the client sees 1006 and cannot tell why.
  With the option off it sends the close frame RFC 6455 names first (1007 invalid
  payload, 1009 message too big). daphne's command line does not expose the
  option, so a factory with it off replaces daphne's.
- daphne gives every connection an `asyncio.Queue` for what the client sends:
  four deques and an Event, 3 KiB per idle socket, for a queue that holds at
  most a message or two. `Inbox` does the same job (`put_nowait`, `get`) in a
  few dozen bytes; the server class daphne's command line builds is swapped for
  one that hands it out.
"""

import asyncio
import struct
from collections import deque
from functools import partial
from typing import Any

import daphne.cli
import daphne.server
from autobahn.exception import Disconnected
from autobahn.websocket import protocol as autobahn_protocol
from daphne.server import Server
from daphne.ws_protocol import WebSocketFactory


def connection_of(send: Any) -> Any:
    """daphne's protocol object behind an ASGI `send`, or None."""
    connection = next(iter(getattr(send, "args", ())), None)
    return connection if hasattr(connection, "sendMessage") else None


def queued_bytes(connection: Any) -> int:
    """Bytes the connection's Twisted transport holds beyond the kernel's buffer."""
    try:
        transport = connection.transport
        return len(transport.dataBuffer) - transport.offset + transport._tempDataLen
    except AttributeError:
        return 0


_OPEN = autobahn_protocol.WebSocketProtocol.STATE_OPEN
_GROUND = autobahn_protocol.WebSocketProtocol.SEND_STATE_GROUND
# The last payload framed and its frame: a broadcast frames once for all its sockets.
_framed: tuple[bytes, bytes] = (b"", b"\x81\x00")


def text_frame(payload: bytes) -> bytes:
    """`payload` as one final, unmasked text frame (FIN + opcode 1, then its length)."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


def send_text(connection: Any, payload: bytes) -> int:
    """`connection.sendMessage(payload)` for a text message (see the module doc);
    raises autobahn's Disconnected on a connection that is not open, as it does.
    Returns the bytes still waiting for the client (`queued_bytes`)."""
    if (
        connection._perMessageCompress is not None
        or connection.send_state != _GROUND
        or connection.send_queue
        or connection.autoFragmentSize
        or connection.logFrames
        or connection.logOctets
        or connection.trackedTimings
        or 0 < connection.maxMessagePayloadSize < len(payload)
    ):
        connection.sendMessage(payload, False)
        return queued_bytes(connection)
    if connection.state != _OPEN:
        raise Disconnected("Attempt to send on a closed protocol")
    global _framed
    if _framed[0] is payload:
        frame = _framed[1]
    else:
        frame = text_frame(payload)
        _framed = (payload, frame)
    transport = connection.transport
    if not queued_bytes(connection) and transport.connected and not transport.disconnecting and not transport.TLS:
        try:
            sent = transport.socket.send(frame)
        except OSError:  # full (EAGAIN) or failing: Twisted's write buffers it or reports the loss
            sent = 0
        if sent == len(frame):
            return 0
        frame = frame[sent:]
    transport.write(frame)
    return queued_bytes(connection)


def release_handshake(connection: Any, scope: dict[str, Any]) -> None:
    """Forget the upgrade request once the socket is accepted (see the module doc)."""
    # daphne's header list is the scope's "headers" too: every middleware has read it.
    headers = scope.get("headers")
    if isinstance(headers, list):
        headers.clear()
    for name in ("http_headers", "http_response_data", "http_request_data"):
        value = getattr(connection, name, None)
        if isinstance(value, dict):
            value.clear()  # shared with the handshake's ConnectionRequest.headers
        elif value is not None:
            setattr(connection, name, None)
    # autobahn queues a frame only while an earlier one waits (a chopped or synced
    # send); its empty deque costs 600 bytes, a list a tenth of that.
    if type(getattr(connection, "send_queue", None)) is deque:
        connection.send_queue = _SendQueue(connection.send_queue)
    transport = getattr(connection, "transport", None)
    # The upgraded HTTP channel stays registered as the transport's producer, with
    # the request it parsed; a WebSocket protocol never needs it.
    if transport is not None and getattr(transport, "producer", None) is not None:
        transport.unregisterProducer()


def share_protocol_options(connection: Any) -> None:
    """See the module doc; a no-op after the first call for a protocol class."""
    cls = type(connection)
    if cls.__dict__.get("_chat_options_shared"):
        return
    factory = getattr(connection, "factory", None)
    if factory is None:
        return
    for name in cls.CONFIG_ATTRS:
        if not hasattr(cls, name):
            value = getattr(factory, name)
            # A function on a class would become a method of each connection.
            setattr(cls, name, staticmethod(value) if callable(value) else value)
    if getattr(connection.log.debug, "__name__", "") == "_no_op":
        # autobahn's debug log of those options is off: do not format it either.
        autobahn_protocol.pformat = _unformatted  # type: ignore[assignment]
    cls._chat_options_shared = True


def _unformatted(obj: object) -> str:
    return ""


class _SendQueue(list[Any]):
    """The part of a deque autobahn uses (append, popleft, len)."""

    __slots__ = ()

    def popleft(self) -> Any:
        return self.pop(0)


class Inbox:
    """A connection's incoming ASGI messages: what daphne uses of asyncio.Queue
    (`put_nowait` from the protocol, `get` from the application), unbounded as
    daphne's is."""

    __slots__ = ("items", "waiter")

    def __init__(self) -> None:
        self.items: deque[Any] | None = None
        self.waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        if self.items is None:
            self.items = deque()
        self.items.append(item)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def get(self) -> Any:
        while not self.items:
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        assert self.items is not None
        item = self.items.popleft()
        if not self.items:
            self.items = None  # an idle socket keeps no deque
        return item


class InboxServer(Server):
    def create_application(self, protocol: Any, scope: dict[str, Any]) -> Inbox | None:
        """daphne's own, with an Inbox for its asyncio.Queue."""
        assert "application_instance" not in self.connections[protocol]
        inbox = Inbox()
        scope.setdefault("asgi", {"version": "3.0"})
        instance = self.application(scope=scope, receive=inbox.get, send=partial(self.handle_reply, protocol))
        if protocol not in self.connections:
            return None
        self.connections[protocol]["application_instance"] = asyncio.ensure_future(
            instance, loop=asyncio.get_event_loop()
        )
        return inbox


class CleanCloseFactory(WebSocketFactory):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # daphne sets its own options (ping, sizes) after this and leaves this one alone.
        self.setProtocolOptions(failByDrop=False)


def daphne_adjust() -> None:
    """Make daphne build CleanCloseFactory and InboxServer (see the module doc)."""
    daphne.server.WebSocketFactory = CleanCloseFactory
    if daphne.cli.CommandLineInterface.server_class is Server:
        daphne.cli.CommandLineInterface.server_class = InboxServer
