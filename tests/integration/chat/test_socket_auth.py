"""The socket's user comes from the Django session cookie (real PostgreSQL),
resolved for many handshakes at once."""

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chat.auth import session_users
from chat.routing import session_key


def test_the_session_key_comes_from_the_cookie_header():
    assert session_key([(b"host", b"x"), (b"cookie", b"csrftoken=1; sessionid=abc123")]) == "abc123"
    assert session_key([(b"cookie", b"csrftoken=1")]) is None
    assert session_key([]) is None


def key_of(cookie: str) -> str:
    return cookie.removeprefix("sessionid=")


def test_sessions_give_their_users_in_one_query(make_user):
    pairs = [make_user() for _ in range(30)]
    keys = [key_of(cookie) for _, cookie in pairs]
    with CaptureQueriesContext(connection) as queries:
        users = session_users(keys=[*keys, *keys, "not-a-session"])
    assert {key: user.pk for key, user in users.items()} == {key_of(c): u.pk for u, c in pairs}
    assert len(queries) == 1
    # A lone handshake costs the same single query.
    with CaptureQueriesContext(connection) as queries:
        assert session_users(keys=keys[:1])[keys[0]].pk == pairs[0][0].pk
    assert len(queries) == 1


def test_a_session_row_names_its_user_at_every_save(make_user):
    from chat.models import UserSession

    (alice, a_cookie), (bob, _) = make_user(), make_user()
    assert UserSession.objects.get(session_key=key_of(a_cookie)).user_id == alice.pk
    # A row whose column does not name the data's user (written by hand): the data
    # decides, at the cost of a second query.
    UserSession.objects.filter(session_key=key_of(a_cookie)).update(user=bob)
    with CaptureQueriesContext(connection) as queries:
        assert session_users(keys=[key_of(a_cookie)])[key_of(a_cookie)].pk == alice.pk
    assert len(queries) == 2


def test_a_stale_session_is_anonymous(make_user):
    (alice, a_cookie), (bob, b_cookie), (_carol, c_cookie) = make_user(), make_user(), make_user()
    alice.set_password("a-new-password-1")  # the session's auth hash no longer matches
    alice.save()
    get_user_model().objects.filter(pk=bob.pk).update(is_active=False)
    users = session_users(keys=[key_of(a_cookie), key_of(b_cookie), key_of(c_cookie)])
    assert list(users) == [key_of(c_cookie)]


async def test_an_expired_or_deleted_session_is_anonymous(make_user):
    from django.utils import timezone

    from chat.models import UserSession

    (_, a_cookie), (_, b_cookie) = await sync_to_async(make_user)(), await sync_to_async(make_user)()
    await UserSession.objects.filter(session_key=key_of(a_cookie)).aupdate(expire_date=timezone.now())
    await UserSession.objects.filter(session_key=key_of(b_cookie)).adelete()
    assert await sync_to_async(session_users)(keys=[key_of(a_cookie), key_of(b_cookie)]) == {}
