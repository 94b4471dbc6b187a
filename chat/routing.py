"""The WebSocket application: origin check, route, session key and consumer in one step.

Channels' OriginValidator, CookieMiddleware, a session middleware and URLRouter
would each copy the scope and keep a coroutine frame of their own alive for as
long as the socket is open. Here one plain function checks the Origin
(chat.origin), hands the consumer the room segment of the path and the session
key (the scope stays as daphne made it: a key added to it would grow its table),
and returns the consumer's coroutine itself: nothing of this step stays alive per
socket. The room segment
is validated by the consumer, so a bad name gets an `invalid_request` frame and
close 4400, never a server error; any other path gets the same refusal. A socket
from an Origin that is not allowed is refused with HTTP 403 before it opens.
"""

import re
from collections.abc import Awaitable
from typing import Any

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.cookie import parse_cookie

from .consumers import ChatConsumer, UnknownPathConsumer
from .origin import origin_allowed

_ROOM_PATH = re.compile(r"^/ws/chat/(?P<room>.*)$", re.DOTALL)


def session_key(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The session cookie's value among the request's headers (None without one)."""
    for name, value in headers:
        if name == b"cookie":
            key = parse_cookie(value.decode("latin1")).get(settings.SESSION_COOKIE_NAME)
            if key:
                return key
    return None


def socket_application(scope: dict[str, Any], receive: Any, send: Any) -> Awaitable[None]:
    """An ASGI application for WebSocket scopes (a plain function returning the
    coroutine to run, which ASGI servers await like any application's)."""
    if not origin_allowed(scope):
        return WebsocketDenier()(scope, receive, send)
    match = _ROOM_PATH.match(scope["path"])
    if match is None:
        return UnknownPathConsumer()(scope, receive, send)
    consumer = ChatConsumer(room=match["room"], session_key=session_key(scope.get("headers", [])))
    return consumer(scope, receive, send)


# asgiref would take a plain function for an ASGI 2 application.
socket_application._asgi_single_callable = True  # type: ignore[attr-defined]
