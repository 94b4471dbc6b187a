"""Absolute links for emails: a mail client has no current site to resolve a path against."""

from django.conf import settings
from django.urls import reverse

from .unsubscribe import unsubscribe_token


def absolute_url(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def unsubscribe_url(*, user_id: int, kind: str) -> str:
    return absolute_url(reverse("unsubscribe", args=[unsubscribe_token(user_id=user_id, kind=kind)]))
