"""The preferences page and the signed one-click unsubscribe links."""

from django.test import Client

from notifications.links import unsubscribe_url
from notifications.models import Preferences
from notifications.unsubscribe import unsubscribe_token
from tests.factories import UserFactory


def test_preferences_page_needs_sign_in(db):
    response = Client().get("/preferences/", secure=True)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_preferences_page_shows_defaults_and_saves(db):
    user = UserFactory()
    client = Client()
    client.force_login(user)
    page = client.get("/preferences/", secure=True)
    assert page.status_code == 200
    assert 'name="digest_email"' in page.content.decode() and "checked" in page.content.decode()

    saved = client.post(
        "/preferences/", {"mention_email": "on", "blog_email": "on", "language": "ja"}, secure=True, follow=True
    )
    assert saved.status_code == 200
    prefs = Preferences.objects.get(user=user)
    assert (prefs.digest_email, prefs.mention_email, prefs.blog_email, prefs.language) == (False, True, True, "ja")


def test_unsubscribe_get_confirms_and_post_unsubscribes_without_sign_in(db):
    user = UserFactory()
    path = unsubscribe_url(user_id=user.pk, kind="digest").removeprefix("http://127.0.0.1:8000")
    client = Client(enforce_csrf_checks=True)

    confirm = client.get(path, secure=True)
    assert confirm.status_code == 200 and "daily digest" in confirm.content.decode()
    assert not Preferences.objects.filter(user=user).exists()  # GET changes nothing (link scanners)

    done = client.post(path, {"List-Unsubscribe": "One-Click"}, secure=True)
    assert done.status_code == 200
    prefs = Preferences.objects.get(user=user)
    assert prefs.digest_email is False and prefs.mention_email is True
    assert client.post(path, secure=True).status_code == 200  # idempotent


def test_tampered_or_foreign_tokens_are_refused(db):
    user = UserFactory()
    token = unsubscribe_token(user_id=user.pk, kind="blog")
    client = Client()
    assert client.post(f"/unsubscribe/{token[:-2]}xx/", secure=True).status_code == 404
    assert client.get("/unsubscribe/not-a-token/", secure=True).status_code == 404
    assert not Preferences.objects.filter(user=user).exists()
