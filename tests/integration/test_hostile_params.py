"""Every view, export and admin page with hostile query parameters: never a 500.

Each page is walked as the kind of user it serves (an auditor with
events.view_event, staff, a plain user, an anonymous visitor) with NUL bytes,
percent-encoded lone surrogates, huge and negative numbers, impossible dates,
10,000-character strings and repeated parameters; no answer is a server error
and nothing is logged with a traceback. The refusals that matter are then
checked by name: each says which parameter was wrong.
"""

import json
import logging
import uuid
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.test import Client
from django.utils import timezone

from blog.models import Post
from chat.models import Membership, Room
from chat.services import message_post, room_join
from notifications.unsubscribe import unsubscribe_token
from tests.factories import UserFactory

# Raw, already percent-encoded, as a hostile client would put them in a URL.
HOSTILE = {
    "nul": "%00",
    "nul_inside": "lobby%00x",
    "lone_surrogate": "%ED%A0%80",
    "surrogate_inside": "a%ED%B0%80b",
    "huge_number": str(10**30),
    "negative": "-1",
    "huge_negative": str(-(10**30)),
    "impossible_date": "2024-13-45",
    "impossible_datetime": "2024-02-30T10:00",
    "year_zero": "0000-01-01",
    "long_string": "x" * 10_000,
    "regex": "(",
    "nan": "NaN",
    "overflowing_float": "1e999",
}


@dataclass
class Site:
    room: Room
    private_room: Room
    post: Post
    clients: dict[str, Client]
    token: str


def client_for(user=None) -> Client:
    client = Client(raise_request_exception=False)
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture(scope="module")
def site(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        auditor = UserFactory(is_staff=True)
        auditor.user_permissions.add(
            Permission.objects.get(codename="view_event", content_type__app_label="events"),
            *Permission.objects.filter(codename__in=["view_room", "change_room", "view_stream", "view_post"]),
        )
        staff = UserFactory(is_staff=True)
        staff.user_permissions.add(*Permission.objects.filter(codename__in=["view_room", "view_post", "change_post"]))
        user = UserFactory()
        name = f"hostile-{uuid.uuid4().hex[:8]}"
        access = room_join(user=user, name=name)
        message_post(access=access, text="hello", client_id=None)
        private = room_join(user=auditor, name=f"hidden-{uuid.uuid4().hex[:8]}")
        Room.objects.filter(pk=private.room_id).update(is_private=True)
        Membership.objects.filter(room_id=private.room_id).exclude(user=auditor).delete()
        post = Post.objects.create(title="Hostile", body="text", author=staff)
        yield Site(
            room=Room.objects.get(pk=access.room_id),
            private_room=Room.objects.get(pk=private.room_id),
            post=post,
            clients={
                "auditor": client_for(auditor),
                "staff": client_for(staff),
                "user": client_for(user),
                "anonymous": client_for(),
            },
            token=unsubscribe_token(user_id=user.pk, kind="digest"),
        )


# (who, path template, parameters to attack). {room}, {room_id}, {private}, {post_id}
# and {token} are filled from the site.
PAGES = [
    (
        "auditor",
        "/admin/events/event/",
        [
            "room",
            "author",
            "type",
            "created_from",
            "created_to",
            "q",
            "o",
            "p",
            "created_at__year",
            "created_at__month",
            "created_at__day",
            "data__message__regex",
            "id__gt",
            "all",
            "_facets",
            "e",
            "_to_field",
            "_popup",
        ],
    ),
    ("auditor", "/admin/events/event/export.csv", ["room", "author", "type", "created_from", "created_to", "q"]),
    ("auditor", "/admin/events/event/export.jsonl", ["room", "created_from", "data__message__regex", "p"]),
    ("auditor", "/admin/events/stream/", ["q", "key__regex", "p", "o"]),
    ("auditor", "/admin/chat/room/{room_id}/timeline/", ["as_of"]),
    ("auditor", "/admin/chat/room/{room_id}/change/", ["_changelist_filters"]),
    ("staff", "/admin/chat/room/", ["q", "is_private__exact", "is_archived__exact", "name__regex", "o", "p"]),
    ("staff", "/admin/blog/post/", ["q", "published_at__gte", "published_at__isnull", "title__regex", "p"]),
    ("staff", "/admin/events/event/", ["room", "created_from"]),  # no permission: refused, not broken
    ("user", "/api/rooms/{room}/events", ["before", "limit", "after", "around"]),
    ("user", "/api/rooms/{private}/events", ["before", "limit"]),
    ("user", "/api/search", ["q", "room", "author", "before", "after", "limit", "cursor"]),
    ("user", "/search/", ["q", "room", "author", "before", "after", "cursor"]),
    ("user", "/chat/{room}/", ["at"]),
    ("anonymous", "/api/search", ["q", "limit"]),
    ("user", "/", ["q", "page"]),
    ("user", "/chat/{room}/", ["since", "history"]),
    ("user", "/preferences/", ["next"]),
    ("user", "/blog/", ["page"]),
    ("user", "/blog/{post_id}/", ["page"]),
    ("anonymous", "/api/rooms/{room}/events", ["before", "limit"]),
    ("anonymous", "/accounts/login/", ["next"]),
    ("anonymous", "/accounts/password_reset/", ["email"]),
    ("anonymous", "/unsubscribe/{token}/", ["kind"]),
    ("anonymous", "/jsi18n/", ["language"]),
    ("anonymous", "/admin/events/event/", ["room"]),
]

# Hostile paths: the same values where a URL carries a name or an id.
PATHS = [
    ("user", "/chat/{value}/"),
    ("user", "/api/rooms/{value}/events"),
    ("user", "/blog/{value}/"),
    ("auditor", "/admin/chat/room/{value}/timeline/"),
    ("auditor", "/admin/chat/room/{value}/change/"),
    ("auditor", "/admin/events/event/{value}/change/"),
    ("anonymous", "/unsubscribe/{value}/"),
]

# Forms posted with hostile fields (Django's form fields carry their own validators).
FORMS = [
    ("anonymous", "/accounts/login/", ["username", "password"]),
    ("anonymous", "/accounts/password_reset/", ["email"]),
    ("anonymous", "/i18n/setlang/", ["language", "next"]),
    ("user", "/rooms/new/", ["name"]),
    ("user", "/preferences/", ["language", "digest_email"]),
    ("anonymous", "/unsubscribe/{token}/", ["kind"]),
]


def fill(template: str, site: Site, value: str = "") -> str:
    return template.format(
        room=site.room.name,
        room_id=site.room.pk,
        private=site.private_room.name,
        post_id=site.post.pk,
        token=site.token,
        value=value,
    )


# daphne (Twisted) refuses a request line over 16 KiB before Django sees it.
REQUEST_LINE_MAX = 16 * 1024


def queries(name: str) -> list[str]:
    """Each hostile value alone, after a harmless one, and twice (within the request line limit)."""
    out = []
    for value in HOSTILE.values():
        out += [f"{name}={value}", f"{name}=1&{name}={value}", f"{name}={value}&{name}={value}"]
    return [query for query in out if len(query) < REQUEST_LINE_MAX - 200]


def consume(response) -> None:
    """Read a streamed body: an export may only fail once it streams."""
    if response.streaming:
        b"".join(response.streaming_content)


def assert_no_server_error(caplog) -> None:
    """Nothing at ERROR, and no traceback but Django's own for a refusal it was
    asked to make (a 403 is logged with its PermissionDenied)."""
    broken = [
        r
        for r in caplog.records
        if r.levelno >= logging.ERROR or (r.exc_info and not isinstance(r.exc_info[1], PermissionDenied | Http404))
    ]
    assert not broken, "\n".join(f"{r.name}: {r.getMessage()}" for r in broken)


@pytest.mark.parametrize("who, path, names", PAGES, ids=[f"{w}:{p}" for w, p, _ in PAGES])
def test_hostile_query_parameters_never_break_a_page(site, who, path, names, caplog):
    client = site.clients[who]
    url = fill(path, site)
    for name in names:
        for query in queries(name):
            response = client.get(f"{url}?{query}", secure=True)
            consume(response)
            assert response.status_code < 500, (url, query[:80], response.status_code)
    assert_no_server_error(caplog)


@pytest.mark.parametrize("who, path", PATHS, ids=[f"{w}:{p}" for w, p in PATHS])
def test_hostile_path_segments_never_break_a_page(site, who, path, caplog):
    client = site.clients[who]
    for value in HOSTILE.values():
        response = client.get(fill(path, site, value), secure=True)
        assert response.status_code < 500, (path, value[:40], response.status_code)
        assert response.status_code in (200, 301, 302, 400, 403, 404), (path, value[:40], response.status_code)
    assert_no_server_error(caplog)


@pytest.mark.parametrize("who, path, names", FORMS, ids=[f"{w}:{p}" for w, p, _ in FORMS])
def test_hostile_form_fields_never_break_a_form(site, who, path, names, caplog):
    client = site.clients[who]
    url = fill(path, site)
    for name in names:
        for value in HOSTILE.values():
            for body in (f"{name}={value}", f"{name}=ok&{name}={value}"):
                response = client.post(url, body, content_type="application/x-www-form-urlencoded", secure=True)
                assert response.status_code < 500, (url, body[:80], response.status_code)
    assert_no_server_error(caplog)


ACTIONS = [
    ("auditor", "/admin/chat/room/", ["verify_rooms", "archive_rooms"]),
    ("staff", "/admin/blog/post/", ["publish", "delete_selected"]),
]


@pytest.mark.parametrize("who, path, actions", ACTIONS, ids=[f"{w}:{p}" for w, p, _ in ACTIONS])
def test_admin_actions_refuse_hostile_selections(site, who, path, actions, caplog):
    client = site.clients[who]
    for action in actions:
        for value in HOSTILE.values():
            body = f"action={action}&_selected_action={value}&index=0"
            response = client.post(path, body, content_type="application/x-www-form-urlencoded", secure=True)
            assert response.status_code < 500, (path, body[:80], response.status_code)
    refused = client.post(path, {"action": actions[0], "_selected_action": ["1", "abc"]}, secure=True)
    assert refused.status_code == 400 and "_selected_action must be a whole number" in refused.content.decode()
    assert_no_server_error(caplog)


# The refusals themselves: a 400 (or the page with a message) that names the parameter.


@pytest.mark.parametrize(
    "query, named",
    [
        ("data__message__regex=(", "data__message__regex"),
        ("id__gt=1", "id__gt"),
        ("actor__password__startswith=pbkdf2", "actor__password__startswith"),
        ("room=lobby%00", "room"),
        ("author=%00", "author"),
        ("type=%00", "type"),
        ("type=no.such.type", "type"),
        ("created_from=2024-13-45", "created_from"),
        ("created_to=2024-02-30T10:00", "created_to"),
        ("created_from=not+a+date", "created_from"),
        ("created_at__year=" + "1" * 30, "created_at__year"),
        ("created_at__year=2024&created_at__month=13", "created_at__month"),
        ("q=" + "x" * 10_000, "q"),
        ("p=-1", "p"),
    ],
)
def test_event_admin_refuses_bad_filters_with_a_400_that_names_them(site, query, named):
    client = site.clients["auditor"]
    page = client.get(f"/admin/events/event/?{query}", secure=True)
    assert page.status_code == 400
    assert named in page.content.decode() and "errornote" in page.content.decode()
    for fmt in ("csv", "jsonl"):
        export = client.get(f"/admin/events/event/export.{fmt}?{query}", secure=True)
        assert export.status_code == 400 and not export.streaming
        assert export.content.decode().startswith("Invalid filter: ") and named in export.content.decode()


def test_event_admin_still_filters_with_good_parameters(site):
    client = site.clients["auditor"]
    good = client.get(
        "/admin/events/event/",
        {"room": site.room.name, "type": "chat.message.posted", "created_from": "2000-01-01", "p": "1"},
        secure=True,
    )
    assert good.status_code == 200 and "hello" in good.content.decode()
    today = timezone.localdate().isoformat()  # created_to is the whole day, not its midnight
    same_day = client.get("/admin/events/event/", {"room": site.room.name, "created_from": today, "created_to": today})
    assert same_day.status_code == 200 and "hello" in same_day.content.decode()
    dated = client.get(
        "/admin/events/event/", {"room": site.room.name, "created_at__year": "2000", "created_at__month": "2"}
    )
    assert dated.status_code == 200 and "hello" not in dated.content.decode()


def test_other_admin_lists_refuse_lookups_they_do_not_offer(site):
    client = site.clients["staff"]
    rooms = client.get("/admin/chat/room/?name__regex=(", secure=True)
    assert rooms.status_code == 400 and "name__regex" in rooms.content.decode()
    assert client.get("/admin/chat/room/?is_private__exact=1", secure=True).status_code == 200
    posts = client.get("/admin/blog/post/?body__regex=(", secure=True)
    assert posts.status_code == 400 and "body__regex" in posts.content.decode()
    assert client.get("/admin/blog/post/?published_at__isnull=True", secure=True).status_code == 200
    streams = site.clients["auditor"].get("/admin/events/stream/?key__regex=(", secure=True)
    assert streams.status_code == 400 and "key__regex" in streams.content.decode()


@pytest.mark.parametrize(
    "as_of", ["2024-02-30T10:00", "2024-13-45T00:00", "%00", "x" * 10_000, "0001-01-01T00:00%2B01:00"]
)
def test_timeline_shows_the_page_with_a_message_for_an_impossible_as_of(site, as_of):
    page = site.clients["auditor"].get(f"/admin/chat/room/{site.room.pk}/timeline/?as_of={as_of}", secure=True)
    body = page.content.decode()
    assert page.status_code == 400
    assert 'class="errornote">as_of' in body and "Timeline of" in body


@pytest.mark.parametrize(
    "query, named",
    [
        (f"before={10**30}", "before"),
        ("before=-1", "before"),
        ("limit=%00", "limit"),
        ("limit=NaN", "limit"),
        ("limit=1&limit=%ED%A0%80", "limit"),
    ],
)
def test_scrollback_refuses_bad_numbers_as_json_naming_them(site, query, named):
    response = site.clients["user"].get(f"/api/rooms/{site.room.name}/events?{query}", secure=True)
    body = json.loads(response.content)
    assert response.status_code == 400 and body["error"] == "invalid_request"
    assert body["detail"].startswith(f"{named} must be a whole number")
