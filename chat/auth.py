"""Who is on a socket: the Django session cookie, read once at the handshake.

Channels' AuthMiddlewareStack also wraps every outgoing message to save the
session should it change. A chat socket never writes its session, so this
middleware resolves the user the same way (`channels.auth.get_user`, which also
checks the session's auth hash) and passes `send` on untouched: one wrapper
less on every frame delivered.
"""

from importlib import import_module
from typing import Any

from channels.auth import get_user
from channels.sessions import CookieMiddleware
from django.conf import settings


class SessionUserMiddleware:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        engine = import_module(settings.SESSION_ENGINE)
        scope = dict(scope, session=engine.SessionStore(scope["cookies"].get(settings.SESSION_COOKIE_NAME)))
        scope["user"] = await get_user(scope)
        return await self.inner(scope, receive, send)


def SocketAuthStack(inner: Any) -> CookieMiddleware:
    return CookieMiddleware(SessionUserMiddleware(inner))
