"""The revocation proof on a real Redis and PostgreSQL: what the changes write
(chat.signals -> chat.revocation) and what the post path answers (chat.ratelimit)."""

import uuid
from datetime import timedelta

import redis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone

from chat import ratelimit
from chat.models import Membership, Room, UserSession
from chat.revocation import (
    INACTIVE,
    Grant,
    member_key_name,
    room_key_name,
    session_digest,
    session_key_name,
    user_key_name,
    user_proof,
)
from chat.services import RoomAccess, room_join


def sync_redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)


def a_grant(*, private: bool = False) -> Grant:
    n = uuid.uuid4().int % 10**12
    access = RoomAccess(room_id=n, name=f"r{n}", stream_id=n, is_private=private, user_id=n, username=f"u{n}")
    return Grant(access=access, session=session_digest(f"key-{n}"), proof="proof-1", expires=timezone.now())


async def verdict(grant: Grant, *, private: bool | None = None) -> str:
    is_private = grant.access.is_private if private is None else private
    return await ratelimit.post_verdict(grant.access.user_id, keys=grant.keys(), proof=grant.proof, private=is_private)


async def test_each_revocation_key_refuses_the_post_that_it_concerns(settings):
    settings.CHAT_RATE_LIMIT = "100/30s"
    r = sync_redis()
    public, private = a_grant(), a_grant(private=True)
    assert await verdict(public) == await verdict(private) == "ok"

    r.set(user_key_name(public.access.user_id), "proof-1")  # the proof it joined with
    assert await verdict(public) == "ok"
    r.set(user_key_name(public.access.user_id), "proof-2")  # a new password
    assert await verdict(public) == "unauthenticated"
    r.set(user_key_name(public.access.user_id), INACTIVE)
    assert await verdict(public) == "unauthenticated"

    r.set(session_key_name(private.session), "1")
    assert await verdict(private) == "unauthenticated"
    r.delete(session_key_name(private.session))

    r.set(member_key_name(private.access.room_id, private.access.user_id), "1")
    assert await verdict(private) == "forbidden"
    # A socket that joined while the room was public is checked by the room's flag instead.
    assert await verdict(private, private=False) == "ok"
    r.set(room_key_name(private.access.room_id), "1")
    assert await verdict(private, private=False) == "private"


async def test_a_refused_post_does_not_count_against_the_rate(settings):
    settings.CHAT_RATE_LIMIT = "2/30s"
    grant = a_grant()
    sync_redis().set(session_key_name(grant.session), "1")
    assert [await verdict(grant) for _ in range(3)] == ["unauthenticated"] * 3
    sync_redis().delete(session_key_name(grant.session))
    assert [await verdict(grant) for _ in range(3)] == ["ok", "ok", "rate_limited"]


def key_of(cookie: str) -> str:
    return cookie.removeprefix("sessionid=")


def test_changes_write_their_proof_after_commit(make_user):
    r = sync_redis()
    (alice, cookie), (bob, _) = make_user(), make_user()
    key = key_of(cookie)
    assert r.get(user_key_name(alice.pk)) == user_proof(alice)

    UserSession.objects.filter(session_key=key).delete()
    name = session_key_name(session_digest(key))
    assert r.exists(name) and 0 < r.ttl(name) <= settings.SESSION_COOKIE_AGE
    assert key not in name  # the cookie's value never reaches Redis

    alice.set_password("another-password-9")
    alice.save()
    assert r.get(user_key_name(alice.pk)) == user_proof(alice)
    alice.is_active = False
    alice.save()
    assert r.get(user_key_name(alice.pk)) == INACTIVE
    alice.is_active = True
    alice.save()
    assert r.get(user_key_name(alice.pk)) == user_proof(alice)

    name = f"revoke-{uuid.uuid4().hex[:10]}"
    room = Room.objects.get(pk=room_join(user=bob, name=name).room_id)
    Membership.objects.filter(room=room, user=bob).delete()
    assert not r.exists(member_key_name(room.pk, bob.pk))  # a public room: nothing lost
    room.is_private = True
    room.save()
    assert r.exists(room_key_name(room.pk))
    Membership.objects.create(room=room, user=bob)
    Membership.objects.filter(room=room, user=bob).delete()
    assert r.exists(member_key_name(room.pk, bob.pk))
    Membership.objects.create(room=room, user=bob)  # added back
    assert not r.exists(member_key_name(room.pk, bob.pk))
    room.is_private = False
    room.save()
    assert not r.exists(room_key_name(room.pk))


async def test_the_join_reads_the_sessions_expiry_and_the_users_proof(make_user):
    from chat.revocation import sockets_grant

    user, cookie = await sync_to_async(make_user)()
    expires = timezone.now() + timedelta(minutes=5)
    await UserSession.objects.filter(session_key=key_of(cookie)).aupdate(expire_date=expires)
    name = f"revoke-{uuid.uuid4().hex[:10]}"
    (grant, refused) = await sync_to_async(sockets_grant)([(key_of(cookie), name), (None, name)])
    assert isinstance(grant, Grant)
    assert grant.expires == expires and grant.proof == user_proof(user)
    assert grant.session == session_digest(key_of(cookie)) and grant.access.user_id == user.pk
    assert refused.code == "unauthenticated"
