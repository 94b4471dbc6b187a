"""The socket's user comes from the Django session cookie (real PostgreSQL),
resolved for many handshakes at once; outgoing messages go to the server untouched."""

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chat.auth import SocketAuthStack, session_users


async def test_the_middleware_reads_the_key_and_passes_send_untouched():
    seen = {}

    async def app(scope, receive, send):
        seen["key"], seen["send"] = scope["session_key"], send

    async def server_send(message):  # what the server hands the application
        pass

    for cookie, key in ((b"sessionid=abc123", "abc123"), (None, None)):
        headers = [(b"cookie", cookie)] if cookie else []
        await SocketAuthStack(app)({"type": "websocket", "path": "/ws/chat/x/", "headers": headers}, None, server_send)
        assert seen == {"key": key, "send": server_send}  # no wrapper on the way out


def key_of(cookie: str) -> str:
    return cookie.removeprefix("sessionid=")


def test_sessions_give_their_users_in_two_queries(make_user):
    pairs = [make_user() for _ in range(30)]
    keys = [key_of(cookie) for _, cookie in pairs]
    with CaptureQueriesContext(connection) as queries:
        users = session_users(keys=[*keys, *keys, "not-a-session"])
    assert {key: user.pk for key, user in users.items()} == {key_of(c): u.pk for u, c in pairs}
    assert len(queries) == 2


def test_a_stale_session_is_anonymous(make_user):
    (alice, a_cookie), (bob, b_cookie), (carol, c_cookie) = make_user(), make_user(), make_user()
    alice.set_password("a-new-password-1")  # the session's auth hash no longer matches
    alice.save()
    get_user_model().objects.filter(pk=bob.pk).update(is_active=False)
    users = session_users(keys=[key_of(a_cookie), key_of(b_cookie), key_of(c_cookie)])
    assert list(users) == [key_of(c_cookie)]


async def test_an_expired_or_deleted_session_is_anonymous(make_user):
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    (_, a_cookie), (_, b_cookie) = await sync_to_async(make_user)(), await sync_to_async(make_user)()
    await Session.objects.filter(session_key=key_of(a_cookie)).aupdate(expire_date=timezone.now())
    await Session.objects.filter(session_key=key_of(b_cookie)).adelete()
    assert await sync_to_async(session_users)(keys=[key_of(a_cookie), key_of(b_cookie)]) == {}
