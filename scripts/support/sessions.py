"""Many signed-in users at once, for socket storms: users and their sessions in
bulk (a login through the test client costs a request each)."""

from datetime import timedelta

from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.auth.hashers import make_password
from django.utils import timezone
from django.utils.crypto import get_random_string

from chat.models import UserSession
from chat.sessions import SessionStore

KEY_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"  # Django's session key alphabet


def signed_in_cookies(prefix: str, n: int) -> list[str]:
    """`n` users named `<prefix><i>`, each with a live session; their Cookie header values."""
    User = get_user_model()
    names = [f"{prefix}{i:05}" for i in range(n)]
    have = set(User.objects.filter(username__in=names).values_list("username", flat=True))
    password = make_password(None)
    User.objects.bulk_create([User(username=name, password=password) for name in names if name not in have])
    store = SessionStore()
    expire = timezone.now() + timedelta(days=1)
    rows = []
    for user in User.objects.filter(username__in=names).order_by("username"):
        data = {
            SESSION_KEY: str(user.pk),
            BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
            HASH_SESSION_KEY: user.get_session_auth_hash(),
        }
        rows.append(
            UserSession(
                session_key=get_random_string(32, KEY_CHARS),
                session_data=store.encode(data),
                expire_date=expire,
                user=user,
            )
        )
    UserSession.objects.bulk_create(rows)
    return [f"sessionid={row.session_key}" for row in rows]
