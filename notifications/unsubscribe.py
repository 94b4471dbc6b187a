"""Signed unsubscribe tokens (RFC 8058 one-click links).

A token names the user and the kind of email; the signature is the credential,
so the link works without signing in (notifications.views.unsubscribe_view).
"""

from django.core import signing

from .preferences import KIND_FIELDS

# Kept from when this lived in chat: links in emails already sent must stay valid.
_SALT = "chat.unsubscribe"


def unsubscribe_token(*, user_id: int, kind: str) -> str:
    return signing.dumps({"u": user_id, "k": kind}, salt=_SALT, compress=True)


def unsubscribe_token_read(token: str) -> tuple[int, str]:
    """(user_id, kind) of a valid token; raises signing.BadSignature otherwise."""
    data = signing.loads(token, salt=_SALT)
    if not isinstance(data, dict) or data.get("k") not in KIND_FIELDS or not isinstance(data.get("u"), int):
        raise signing.BadSignature("Malformed unsubscribe token.")
    return data["u"], data["k"]
