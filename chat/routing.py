"""The WebSocket application: route, session key and consumer in one step.

Channels' CookieMiddleware, a session middleware and URLRouter would each copy
the scope and keep a coroutine frame of their own alive for as long as the
socket is open; this keeps one of each. The room segment is validated by the
consumer, so a bad name gets an `invalid_request` frame and close 4400, never a
server error; any other path gets the same refusal.
"""

import re
from typing import Any

from django.conf import settings
from django.http.cookie import parse_cookie

from .consumers import ChatConsumer, UnknownPathConsumer

_ROOM_PATH = re.compile(r"^/ws/chat/(?P<room>.*)$", re.DOTALL)


def session_key(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The session cookie's value among the request's headers (None without one)."""
    for name, value in headers:
        if name == b"cookie":
            key = parse_cookie(value.decode("latin1")).get(settings.SESSION_COOKIE_NAME)
            if key:
                return key
    return None


async def socket_application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    match = _ROOM_PATH.match(scope["path"])
    scope = dict(
        scope,
        session_key=session_key(scope.get("headers", [])),
        url_route={"args": (), "kwargs": {"room": match["room"]} if match else {}},
    )
    consumer = ChatConsumer() if match else UnknownPathConsumer()
    await consumer(scope, receive, send)
