"""Who is on a socket: the Django session cookie, resolved in batches.

chat.routing only reads the session key from the cookie. The consumer resolves
it in its first database call (chat.joins), together with every other handshake
waiting at that moment: one query for their sessions and one for their users,
however many sockets arrive at once. The checks are Django's own (`auth.get_user`):
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
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone
from django.utils.crypto import constant_time_compare

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

    Two queries for any number of keys. Only the database session engine and
    Django's ModelBackend are read in bulk; any other setup goes key by key
    through `django.contrib.auth.get_user`, which is what this must agree with."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    if import_module(settings.SESSION_ENGINE).SessionStore is not SessionStore:
        return _one_by_one(wanted)
    rows = Session.objects.filter(session_key__in=wanted, expire_date__gt=timezone.now()).values_list(
        "session_key", "session_data", "expire_date"
    )
    store = SessionStore()
    sessions: dict[str, dict[str, Any]] = {}
    expiry: dict[str, datetime] = {}
    for key, data, expires in rows:
        session = store.decode(data)
        expiry[key] = expires
        if session.get(BACKEND_SESSION_KEY) not in settings.AUTHENTICATION_BACKENDS:
            continue
        if session[BACKEND_SESSION_KEY] != _MODEL_BACKEND:
            return _one_by_one(wanted)
        sessions[key] = session
    User = get_user_model()
    ids = {User._meta.pk.to_python(s[SESSION_KEY]) for s in sessions.values() if SESSION_KEY in s}
    by_id = {u.pk: u for u in User._default_manager.filter(pk__in=ids)}
    users: dict[str, SignedIn] = {}
    for key, session in sessions.items():
        user = by_id.get(User._meta.pk.to_python(session.get(SESSION_KEY)))
        # ModelBackend.user_can_authenticate: an inactive user cannot sign in.
        if user is not None and getattr(user, "is_active", True) and _hash_verified(session, user):
            users[key] = SignedIn(user=user, expires=expiry[key])
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
