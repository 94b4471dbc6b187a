"""Hostile URLs through a real daphne: its own decoding of the path and query
(lone surrogates, NUL, bytes that are not UTF-8) never becomes a server error.
tests/integration/test_hostile_params.py walks every page through Django's test
client; this checks the ASGI path the product actually serves."""

import http.client
import uuid

import pytest
from django.contrib.auth.models import Permission

from chat.services import message_post, room_join

pytestmark = pytest.mark.e2e

URLS = [
    "/chat/%ED%A0%80/",
    "/chat/%00/",
    "/chat/%FF%FE/",
    "/api/rooms/%ED%A0%80/events",
    "/api/rooms/%00/events",
    "/api/rooms/{room}/events?before=%ED%A0%80",
    "/api/rooms/{room}/events?limit=%00&limit=-1",
    "/api/rooms/{room}/events?before=" + "9" * 30,
    "/admin/events/event/?room=%00",
    "/admin/events/event/?created_from=2024-02-30T10:00",
    "/admin/events/event/?data__message__regex=(",
    "/admin/events/event/export.csv?author=%ED%A0%80%00",
    "/admin/events/event/export.jsonl?created_to=2024-13-45",
    "/admin/chat/room/?name__regex=%FF",
    "/blog/%ED%A0%80/",
    "/unsubscribe/%00%ED%A0%80/",
    "/?" + "x=" + "y" * 10_000,
]


def test_hostile_urls_through_daphne_are_refused_not_broken(module_server, make_user, no_traceback):
    user, cookie = make_user(is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_event", "view_room"]))
    room = f"hostile-{uuid.uuid4().hex[:8]}"
    message_post(access=room_join(user=user, name=room), text="hi", client_id=None)
    statuses = {}
    for url in URLS:
        conn = http.client.HTTPConnection("127.0.0.1", module_server.port, timeout=10)
        conn.putrequest("GET", url.format(room=room), skip_accept_encoding=True)
        conn.putheader("Cookie", cookie)
        conn.endheaders()
        response = conn.getresponse()
        response.read()
        statuses[url[:60]] = response.status
        conn.close()
    assert all(status < 500 for status in statuses.values()), statuses
    assert statuses["/admin/events/event/?data__message__regex=("] == 400
    assert statuses["/api/rooms/%ED%A0%80/events"] == 400
