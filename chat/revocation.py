"""Rights that go while a socket is open: what is revoked, and how every process hears it.

A socket's rights are checked once, at its join (a Grant). When they go — the
session is deleted (sign-out, an admin) or expires, the user's password changes
or the user is deactivated or deleted, a membership of a private room is
removed, a public room is made private — the code that made the change calls
one of the `*_revoke` services here (from Django's signals, which is the only
hook Django gives for these). After the commit they do two things:

1. Write the proof in Redis that the post path reads (chat.ratelimit, in the same
   EVALSHA as the rate limit, so a post costs no extra round trip and no query):
   `chat:revoked:session:<digest>` for a dead session, `chat:auth:user:<id>` =
   the user's current proof (or `-` when inactive), `chat:revoked:member:<room>:<user>`
   for a lost membership, `chat:private:<room>` for a room that is private now.
   Written before the broadcast, so a post that arrives between the change and
   the close is already refused. Each key lives SESSION_COOKIE_AGE seconds:
   every socket re-checks its session at least that often (chat.guard).
2. Publish one `chat.revoke` message to the group `chat.control`, which each
   server process joins once (chat.guard) and answers by closing exactly its
   affected sockets: 4401 `unauthenticated` or 4403 `forbidden`, an error frame
   first.

Session keys are secrets (they are the cookie): Redis and the channel layer only
ever see a digest of them.
"""

import functools
import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db import transaction

from .auth import sessions_signed_in
from .errors import ChatError
from .layer import revoke_send
from .models import Membership, Room
from .services import RoomAccess, rooms_join

logger = logging.getLogger(__name__)

INACTIVE = "-"

SIGNED_OUT = "You were signed out; sign in again to continue."
EXPIRED = "Your session has expired; sign in again to continue."
ACCOUNT_CHANGED = "Your password changed or your account was disabled; sign in again to continue."
NOT_MEMBER = "You are no longer a member of this private room."
NOW_PRIVATE = "This room is now private and you are not a member."
# A post refused by the Redis proof: the session or the account changed.
NO_LONGER_SIGNED_IN = "You are no longer signed in (signed out, password changed or account disabled); sign in again."


def session_digest(session_key: str) -> str:
    return hashlib.sha256(f"chat-session:{session_key}".encode()).hexdigest()[:32]


def user_proof(user: AbstractBaseUser) -> str:
    """Changes when the password does (Django's session auth hash), never reveals it."""
    if not getattr(user, "is_active", True):
        return INACTIVE
    return hashlib.sha256(user.get_session_auth_hash().encode()).hexdigest()[:16]


def session_key_name(digest: str) -> str:
    return f"chat:revoked:session:{digest}"


def user_key_name(user_id: int) -> str:
    return f"chat:auth:user:{user_id}"


def member_key_name(room_id: int, user_id: int) -> str:
    return f"chat:revoked:member:{room_id}:{user_id}"


def room_key_name(room_id: int) -> str:
    return f"chat:private:{room_id}"


@dataclass(frozen=True)
class Grant:
    """What a socket was allowed at its join, and what proves it still is."""

    access: RoomAccess
    session: str  # session_digest of its session key
    proof: str  # user_proof of its user then
    expires: datetime  # its session's expire_date

    def keys(self) -> list[str]:
        """The Redis keys the post path checks (chat.ratelimit)."""
        access = self.access
        return [
            session_key_name(self.session),
            user_key_name(access.user_id),
            member_key_name(access.room_id, access.user_id),
            room_key_name(access.room_id),
        ]


def sockets_grant(requests: list[tuple[str | None, str]]) -> list[Grant | ChatError]:
    """(session key, room name) of each socket -> its Grant, or the refusal; in two
    queries for the sessions and three for the rooms, however many sockets."""
    signed = sessions_signed_in(keys=[key for key, _ in requests if key])
    found = [(key, signed.get(key)) if key else (None, None) for key, _ in requests]
    users = [s.user if s else AnonymousUser() for _, s in found]
    accesses = rooms_join(requests=[(user, name) for user, (_, name) in zip(users, requests, strict=True)])
    grants: list[Grant | ChatError] = []
    for access, (key, s) in zip(accesses, found, strict=True):
        if isinstance(access, ChatError):
            grants.append(access)
        elif key is None or s is None:  # rooms_join refuses the anonymous: never here
            grants.append(ChatError("unauthenticated", "Sign in to join a room."))
        else:
            proof = user_proof(s.user)
            grants.append(Grant(access=access, session=session_digest(key), proof=proof, expires=s.expires))
    return grants


def room_members(*, room_id: int, user_ids: list[int]) -> set[int]:
    """Which of `user_ids` are members of the room (one query)."""
    return set(Membership.objects.filter(room_id=room_id, user_id__in=user_ids).values_list("user_id", flat=True))


# The revoking services: sync, keyword-only; the work happens after the commit.


def session_revoke(*, session_key: str) -> None:
    digest = session_digest(session_key)
    transaction.on_commit(lambda: _revoked([(session_key_name(digest), "1")], {"session": digest}))


def session_restore(*, session_key: str) -> None:
    """A session row created under a key: an earlier revocation of that key is past."""
    digest = session_digest(session_key)
    transaction.on_commit(lambda: _forget(session_key_name(digest)))


def user_revoke(*, user_id: int, proof: str) -> None:
    """The user's password changed, or the user was deactivated (proof `-`) or deleted."""
    transaction.on_commit(lambda: _revoked([(user_key_name(user_id), proof)], {"user": user_id, "proof": proof}))


def user_proof_record(*, user_id: int, proof: str) -> None:
    """Any other save of a user: keep its proof current (a re-activated user posts again)."""
    transaction.on_commit(lambda: _revoked([(user_key_name(user_id), proof)], None))


def membership_revoke(*, room_id: int, user_id: int) -> None:
    """A membership was removed: it matters only if the room is private (at commit)."""

    def after() -> None:
        if Room.objects.filter(pk=room_id, is_private=True).exists():
            _revoked([(member_key_name(room_id, user_id), "1")], {"room": room_id, "user": user_id})

    transaction.on_commit(after)


def membership_grant(*, room_id: int, user_id: int) -> None:
    """A membership was added: forget an earlier removal."""
    transaction.on_commit(lambda: _forget(member_key_name(room_id, user_id)))


def room_privacy_record(*, room_id: int, is_private: bool) -> None:
    """A room was saved: if private, every process checks its sockets of the room
    that joined while it was public (only members stay)."""
    if is_private:
        transaction.on_commit(lambda: _revoked([(room_key_name(room_id), "1")], {"room": room_id, "private": True}))
    else:
        transaction.on_commit(lambda: _forget(room_key_name(room_id)))


@functools.cache
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def _revoked(keys: list[tuple[str, str]], message: dict[str, Any] | None) -> None:
    try:
        with _redis(settings.REDIS_URL).pipeline(transaction=False) as pipe:
            for key, value in keys:
                pipe.set(key, value, ex=settings.SESSION_COOKIE_AGE)
            pipe.execute()
    except (redis.RedisError, OSError):
        # The broadcast below still closes the sockets; only the post-path proof is missing.
        logger.warning("revocation not recorded in Redis keys=%s", [k for k, _ in keys], exc_info=True)
    if message is not None:
        revoke_send(message)


def _forget(key: str) -> None:
    try:
        _redis(settings.REDIS_URL).delete(key)
    except (redis.RedisError, OSError):
        logger.warning("revocation key not cleared key=%s", key, exc_info=True)
