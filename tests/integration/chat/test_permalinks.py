"""Permalinks: the scrollback API's `around` and `after` pages and the room page's
`?at=SEQ`, on a real PostgreSQL."""

import uuid

import pytest
from django.test import Client

from chat.models import Room
from chat.services import message_edit, message_post, message_redact, room_join
from tests.factories import UserFactory


@pytest.fixture
def room(db):
    """A room of 30 messages by alice, and a signed-in client for her."""
    alice = UserFactory()
    name = f"link-{uuid.uuid4().hex[:10]}"
    access = room_join(user=alice, name=name)
    for n in range(1, 31):
        message_post(access=access, text=f"m{n}", client_id=None)
    client = Client()
    client.force_login(alice)
    return name, access, client


def page(client: Client, name: str, **params) -> dict:
    response = client.get(f"/api/rooms/{name}/events", params)
    assert response.status_code == 200, response.content
    return response.json()


def test_around_centres_a_page_on_the_message(room):
    name, _, client = room
    body = page(client, name, around=15, limit=10)
    assert [e["seq"] for e in body["events"]] == list(range(10, 20))
    assert body["has_more"] is True and body["has_newer"] is True
    assert body["events"][5]["message"] == "m15"


def test_around_at_the_edges_of_the_room(room):
    name, _, client = room
    first = page(client, name, around=1, limit=10)
    assert [e["seq"] for e in first["events"]] == list(range(1, 11))
    assert first["has_more"] is False and first["has_newer"] is True
    last = page(client, name, around=30, limit=10)
    assert [e["seq"] for e in last["events"]] == list(range(25, 31))
    assert last["has_more"] is True and last["has_newer"] is False


def test_after_pages_towards_the_head(room):
    name, _, client = room
    body = page(client, name, after=19, limit=6)
    assert [e["seq"] for e in body["events"]] == list(range(20, 26))
    assert body["has_newer"] is True and body["has_more"] is True
    end = page(client, name, after=25, limit=6)
    assert [e["seq"] for e in end["events"]] == list(range(26, 31)) and end["has_newer"] is False


def test_around_a_redacted_or_edited_message_shows_its_current_state(room):
    name, access, client = room
    message_edit(access=access, target_seq=12, text="m12 fixed", client_id=None)
    message_redact(access=access, target_seq=15, reason="oops", client_id=None)
    events = {e["seq"]: e for e in page(client, name, around=15, limit=10)["events"]}
    assert events[15]["message"] == "" and events[15]["redacted"] is True
    assert events[12]["message"] == "m12 fixed" and events[12]["edited"] is True


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"around": "999"}, 404, "not_found"),
        ({"around": "0"}, 404, "not_found"),
        ({"around": "x"}, 400, "invalid_request"),
        ({"around": "3", "before": "5"}, 400, "invalid_request"),
        ({"after": "-2"}, 400, "invalid_request"),
    ],
)
def test_bad_anchors_are_refused_as_json(room, params, status, code):
    name, _, client = room
    response = client.get(f"/api/rooms/{name}/events", params)
    assert response.status_code == status and response.json()["error"] == code


def test_a_private_room_shows_a_non_member_nothing(room):
    name, _, _ = room
    Room.objects.filter(name=name).update(is_private=True)
    outsider = Client()
    outsider.force_login(UserFactory())
    api = outsider.get(f"/api/rooms/{name}/events", {"around": 5})
    assert api.status_code == 403 and api.json()["error"] == "forbidden"
    html = outsider.get(f"/chat/{name}/", {"at": 5})
    assert html.status_code == 403 and "m5" not in html.content.decode()


def test_the_room_page_passes_the_permalinked_seq_to_its_script(room):
    name, _, client = room
    html = client.get(f"/chat/{name}/", {"at": 7}).content.decode()
    assert '"at": 7' in html
    assert '"at": null' in client.get(f"/chat/{name}/", {"at": "seven"}).content.decode()
