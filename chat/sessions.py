"""The session engine (SESSION_ENGINE = "chat.sessions"): Django's database
sessions, each row also naming its signed-in user (chat.models.UserSession).

Django decides what a session says and checks it; this only copies the user id
out of the data into a column whenever the session is saved (sign-in, sign-out,
a key cycled), so chat.auth finds a socket's session and its user with one
joined query instead of two.
"""

from typing import Any

from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.core.exceptions import ValidationError


def user_id_of(data: dict[str, Any]) -> Any:
    """The signed-in user's primary key in session data, or None."""
    raw = data.get(SESSION_KEY)
    if raw is None:
        return None
    try:
        return get_user_model()._meta.pk.to_python(raw)
    except ValidationError:
        return None


class SessionStore(DatabaseSessionStore):
    @classmethod
    def get_model_class(cls) -> Any:
        from .models import UserSession

        return UserSession

    def create_model_instance(self, data: dict[str, Any]) -> Any:
        session = super().create_model_instance(data)
        session.user_id = user_id_of(data)  # type: ignore[attr-defined]
        return session
