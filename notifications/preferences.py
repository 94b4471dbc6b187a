"""Email preferences and language of a user, and who is opted in to a kind of email.

Users without a Preferences row have the defaults (every email on, the site's
language), so nothing has to be created when a user signs up.
"""

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import F, Q, QuerySet, Value
from django.db.models.functions import Coalesce

from .models import Preferences

# Email kinds → the preference that switches them off.
KIND_FIELDS = {"mention": "mention_email", "digest": "digest_email", "blog": "blog_email"}


@dataclass(frozen=True)
class Recipient:
    """Who an email goes to, in which language."""

    user_id: int
    username: str
    email: str
    language: str


def preferences_get(*, user_id: int) -> Preferences:
    """The user's preferences; an unsaved row with the defaults if they never changed them."""
    found = Preferences.objects.filter(user_id=user_id).first()
    return found if found is not None else Preferences(user_id=user_id)


def preferences_update(*, user_id: int, **changes: object) -> Preferences:
    prefs, _ = Preferences.objects.update_or_create(user_id=user_id, defaults=changes)
    return prefs


def preferences_unsubscribe(*, user_id: int, kind: str) -> Preferences:
    """Switch one kind of email off (idempotent)."""
    return preferences_update(user_id=user_id, **{KIND_FIELDS[kind]: False})


def recipients_opted_in(*, kind: str, user_ids: QuerySet | list[int] | None = None) -> QuerySet:
    """Active users with an address who did not switch `kind` off, as dict rows
    (id, username, email, language); stream them with `.iterator()`."""
    field = KIND_FIELDS[kind]
    users = get_user_model().objects.filter(is_active=True).exclude(email="")
    if user_ids is not None:
        users = users.filter(id__in=user_ids)
    users = users.filter(Q(notification_preferences__isnull=True) | Q(**{f"notification_preferences__{field}": True}))
    return users.annotate(
        language=Coalesce(F("notification_preferences__language"), Value(settings.LANGUAGE_CODE)),
    ).values("id", "username", "email", "language")
