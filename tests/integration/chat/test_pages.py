"""The HTML pages through Django's test client: access, unread counts, room
creation, refusals, security headers and the password reset by email."""

import re
import unicodedata
from urllib.parse import quote

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from chat.models import Membership, Room
from chat.services import message_post, read_mark, room_join
from tests.factories import UserFactory


@pytest.fixture
def alice(db):
    return UserFactory()


def post(user, room, count):
    access = room_join(user=user, name=room)
    for n in range(count):
        message_post(access=access, text=f"m{n}", client_id=None)
    return access


def test_pages_require_sign_in(client, db):
    for url in ("/", "/chat/lobby/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


def test_room_list_shows_readable_rooms_with_unread_counts(alice, client_for):
    bob = UserFactory()
    access = post(bob, "pages-public", 5)
    room_join(user=alice, name="pages-public")
    read_mark(access=room_join(user=alice, name="pages-public"), seq=2)
    post(bob, "pages-unjoined", 1)
    hidden = post(bob, "pages-hidden", 1)
    Room.objects.filter(pk=hidden.room_id).update(is_private=True)
    secret = post(bob, "pages-secret", 4)
    Room.objects.filter(pk=secret.room_id).update(is_private=True)
    Membership.objects.create(room_id=secret.room_id, user=alice)
    assert access.name == "pages-public"

    rows = {row.name: row for row in client_for(alice).get("/").context["rooms"]}
    assert rows["pages-public"].unread == 3 and rows["pages-public"].is_member
    assert rows["pages-unjoined"].unread == 0 and not rows["pages-unjoined"].is_member
    assert rows["pages-secret"].unread == 4 and rows["pages-secret"].is_private
    assert "pages-hidden" not in rows
    assert not rows["pages-public"].is_archived


def test_room_list_marks_archived_rooms(alice, client_for):
    access = post(alice, "pages-archived", 1)
    Room.objects.filter(pk=access.room_id).update(is_archived=True)
    response = client_for(alice).get("/")
    assert {row.name: row for row in response.context["rooms"]}["pages-archived"].is_archived
    assert 'class="badge badge-archived"' in response.content.decode()


def test_create_room_normalises_the_name_and_opens_it(alice, client_for):
    decomposed = unicodedata.normalize("NFD", "café-pages")
    response = client_for(alice).post(reverse("chat:room_create"), {"name": decomposed})
    assert response.status_code == 302
    assert response["Location"] == "/chat/" + quote("café-pages") + "/"
    room = Room.objects.get(name="café-pages")
    assert not room.is_private and room.memberships.filter(user=alice).exists()


@pytest.mark.parametrize("name", ["", "has space", "x" * 65, "<b>", "a/b"])
def test_create_room_refuses_bad_names_in_words(alice, client_for, name):
    response = client_for(alice).post(reverse("chat:room_create"), {"name": name})
    assert response.status_code == 400
    assert response.context["form"].errors["name"]
    assert not Room.objects.filter(name=name).exists()


def test_room_page_passes_its_data_as_json_not_script(alice, client_for):
    response = client_for(alice).get("/chat/" + quote("雑談-pages") + "/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<script id="room-config" type="application/json">' in html
    assert re.search(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", html) is None  # no inline code
    assert response.context["config"]["room"] == "雑談-pages"


def test_room_page_redirects_to_the_nfc_name(alice, client_for):
    response = client_for(alice).get("/chat/" + quote(unicodedata.normalize("NFD", "café-x")) + "/")
    assert response.status_code == 302
    assert response["Location"] == "/chat/" + quote("café-x") + "/"


def test_private_room_page_is_refused_to_non_members(alice, client_for):
    access = post(UserFactory(), "pages-private", 1)
    Room.objects.filter(pk=access.room_id).update(is_private=True)
    response = client_for(alice).get("/chat/pages-private/")
    assert response.status_code == 403
    assert "private" in response.content.decode()


def test_security_headers(alice, client_for):
    response = client_for(alice).get("/")
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"


def test_sign_in_form_is_csrf_protected(alice):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": alice.username, "password": "pw-for-tests"})
    assert response.status_code == 403
    page = client.get("/accounts/login/")
    token = page.cookies["csrftoken"].value
    response = client.post(
        "/accounts/login/", {"username": alice.username, "password": "pw-for-tests", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302 and response["Location"] == "/"


def test_password_reset_by_email(alice, client):
    response = client.post("/accounts/password_reset/", {"email": alice.email})
    assert response.status_code == 302
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [alice.email]
    link = re.search(r"https?://[^/\s]+(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
    form_page = client.get(link, follow=True)
    assert form_page.context["validlink"]
    done = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "a-new-long-passphrase", "new_password2": "a-new-long-passphrase"},
    )
    assert done.status_code == 302
    assert Client().login(username=alice.username, password="a-new-long-passphrase")


def test_japanese_from_accept_language(alice, client_for):
    response = client_for(alice).get("/", HTTP_ACCEPT_LANGUAGE="ja")
    html = response.content.decode()
    assert '<html lang="ja">' in html and "ルームを作成" in html
