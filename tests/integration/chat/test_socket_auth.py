"""The socket's user comes from the Django session cookie (real PostgreSQL), and
outgoing messages go to the server untouched."""

from asgiref.sync import sync_to_async
from django.contrib.auth.models import AnonymousUser

from chat.auth import SocketAuthStack


def scope_with(cookie: str | None) -> dict:
    headers = [(b"cookie", cookie.encode())] if cookie else []
    return {"type": "websocket", "path": "/ws/chat/x/", "headers": headers}


async def resolve(cookie: str | None):
    seen = {}

    async def app(scope, receive, send):
        seen["user"], seen["send"] = scope["user"], send

    async def server_send(message):  # what the server hands the application
        pass

    await SocketAuthStack(app)(scope_with(cookie), None, server_send)
    assert seen["send"] is server_send  # no wrapper on the way out
    return seen["user"]


async def test_the_session_cookie_gives_the_user(make_user):
    user, cookie = await sync_to_async(make_user)()
    assert (await resolve(cookie)).pk == user.pk


async def test_no_cookie_or_a_stale_session_is_anonymous(make_user):
    user, cookie = await sync_to_async(make_user)()
    assert isinstance(await resolve(None), AnonymousUser)
    assert isinstance(await resolve("sessionid=not-a-session"), AnonymousUser)

    def change_password():
        user.set_password("a-new-password-1")
        user.save()

    await sync_to_async(change_password)()
    # The session's auth hash no longer matches: signed out, as over HTTP.
    assert isinstance(await resolve(cookie), AnonymousUser)
