"""Who is on a socket: the Django session cookie, resolved in batches.

chat.routing only reads the session key from the cookie. The consumer resolves
it in its first database call (chat.joins), together with every other handshake
waiting at that moment: one query for their sessions joined to their users
(chat.sessions keeps the user's id in the session row), however many sockets
arrive at once. The checks are Django's own (`auth.get_user`):
an expired or deleted session, an unknown backend, an inactive user, or a session
whose auth hash no longer matches the user's password are all anonymous.

Channels' AuthMiddlewareStack would instead run two queries per handshake on the
single thread-sensitive executor, and wrap every outgoing frame to save a session
a chat socket never writes.
"""

from dataclasses import dataclass
from datetime import datetime
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from .sessions import SessionStore as UserSessionStore
from .sessions import user_id_of

_MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _hash_verified(session: dict[str, Any], user: AbstractBaseUser) -> bool:
    session_hash = session.get(HASH_SESSION_KEY)
    if not session_hash:
        return False
    if constant_time_compare(session_hash, user.get_session_auth_hash()):
        return True
    # Sessions made under a rotated SECRET_KEY (SECRET_KEY_FALLBACKS) stay valid, as over HTTP.
    return any(constant_time_compare(session_hash, h) for h in user.get_session_auth_fallback_hash())


@dataclass(frozen=True)
class SignedIn:
    """A live session's user and when the session expires (chat.guard closes its sockets then)."""

    user: AbstractBaseUser
    expires: datetime


def session_users(*, keys: list[str]) -> dict[str, AbstractBaseUser]:
    """The signed-in user of each live session among `keys` (absent: anonymous)."""
    return {key: signed.user for key, signed in sessions_signed_in(keys=keys).items()}


def sessions_signed_in(*, keys: list[str]) -> dict[str, SignedIn]:
    """`session_users` with each session's expiry.

    One query for any number of keys with chat.sessions (the session rows joined
    to their users), two with Django's own database engine. Only those engines and
    Django's ModelBackend are read in bulk; any other setup goes key by key
    through `django.contrib.auth.get_user`, which is what this must agree with."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    engine = import_module(settings.SESSION_ENGINE).SessionStore
    if not issubclass(engine, DatabaseSessionStore):
        return _one_by_one(wanted)
    rows = engine.get_model_class().objects.filter(session_key__in=wanted, expire_date__gt=timezone.now())
    joined = issubclass(engine, UserSessionStore)
    if joined:
        rows = rows.select_related("user")
    store = engine()
    User = get_user_model()
    # key -> (session data, the user id it names, expiry)
    sessions: dict[str, tuple[dict[str, Any], Any, datetime]] = {}
    by_id: dict[Any, AbstractBaseUser | None] = {}
    for row in rows:
        session = store.decode(row.session_data)
        if session.get(BACKEND_SESSION_KEY) not in settings.AUTHENTICATION_BACKENDS:
            continue
        if session[BACKEND_SESSION_KEY] != _MODEL_BACKEND:
            return _one_by_one(wanted)
        user_id = user_id_of(session)
        sessions[row.session_key] = (session, user_id, row.expire_date)
        if joined and row.user_id is not None and row.user_id == user_id:
            by_id[user_id] = row.user  # None: the user is gone
    # Django's own table, or a row whose column does not name the data's user.
    missing = {user_id for _, user_id, _ in sessions.values()} - by_id.keys() - {None}
    if missing:
        by_id.update((u.pk, u) for u in User._default_manager.filter(pk__in=missing))
    users: dict[str, SignedIn] = {}
    for key, (session, user_id, expires) in sessions.items():
        user = by_id.get(user_id)
        # ModelBackend.user_can_authenticate: an inactive user cannot sign in.
        if user is not None and getattr(user, "is_active", True) and _hash_verified(session, user):
            users[key] = SignedIn(user=user, expires=expires)
    return users


def _one_by_one(keys: list[str]) -> dict[str, SignedIn]:
    from django.contrib.auth import get_user
    from django.http import HttpRequest

    users: dict[str, SignedIn] = {}
    engine = import_module(settings.SESSION_ENGINE)
    for key in keys:
        request = HttpRequest()
        request.session = engine.SessionStore(key)
        user = get_user(request)
        if not isinstance(user, AnonymousUser):
            users[key] = SignedIn(user=user, expires=request.session.get_expiry_date())
    return users
