"""Email preferences and language of a user: the services, and the /preferences/ page.

Users without a Preferences row have the defaults (every email on, the site's
language), so nothing has to be created when a user signs up.
"""

from dataclasses import dataclass

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.db.models import F, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _

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
    users = users.filter(Q(chat_preferences__isnull=True) | Q(**{f"chat_preferences__{field}": True}))
    return users.annotate(
        language=Coalesce(F("chat_preferences__language"), Value(settings.LANGUAGE_CODE)),
    ).values("id", "username", "email", "language")


class PreferencesForm(forms.ModelForm):
    class Meta:
        model = Preferences
        fields = ["mention_email", "digest_email", "blog_email", "language"]
        labels = {
            "mention_email": _("Email me when someone mentions me and I have not read it"),
            "digest_email": _("Send me a daily digest of my rooms"),
            "blog_email": _("Email me when a blog post is published"),
            "language": _("Language of emails"),
        }


@login_required
def preferences_page(request: HttpRequest) -> HttpResponse:
    """GET shows the user's preferences; POST saves them."""
    user_id = int(request.user.pk or 0)  # signed in: login_required
    prefs = preferences_get(user_id=user_id)
    form = PreferencesForm(request.POST or None, instance=prefs)
    if request.method == "POST" and form.is_valid():
        preferences_update(user_id=user_id, **form.cleaned_data)
        messages.success(request, _("Your preferences were saved."))
        return redirect("preferences")
    return render(request, "chat/preferences.html", {"form": form})
