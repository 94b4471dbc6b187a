"""The event log in the admin: an auditor's read-only tool."""

import csv
import io
import json
import tracemalloc
import uuid

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from chat.models import Room
from chat.services import message_post, message_redact, room_join
from events.admin import EstimatedCountPaginator
from events.export import export_chunks
from events.models import Event
from scripts.support.bulk import bulk_append
from tests.factories import UserFactory


def auditor():
    user = UserFactory(is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(codename="view_event", content_type__app_label="events"),
        Permission.objects.get(codename="view_room", content_type__app_label="chat"),
    )
    return user


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def log(db):
    """A room with three messages by two people, one redacted."""
    name = f"audit-{uuid.uuid4().hex[:8]}"
    alice, bob = UserFactory(), UserFactory()
    a, b = room_join(user=alice, name=name), room_join(user=bob, name=name)
    first = message_post(access=a, text="hello auditors\nsecond line", client_id=None)
    message_post(access=b, text="bob speaking", client_id=None)
    message_redact(access=a, target_seq=first.seq, reason="typo", client_id=None)
    return name, alice, bob


def test_auditor_sees_the_log_with_filters_and_search(log):
    name, alice, bob = log
    client = client_for(auditor())
    url = reverse("admin:events_event_changelist")
    page = client.get(url, {"room": name})
    body = page.content.decode()
    assert page.status_code == 200
    assert "hello auditors" in body and "second line" not in body  # the first line only
    assert "bob speaking" in body and "chat.message.redacted" in body
    by_author = client.get(url, {"room": name, "author": bob.username}).content.decode()
    assert "bob speaking" in by_author and "hello auditors" not in by_author
    by_type = client.get(url, {"room": name, "type": "chat.message.redacted"}).content.decode()
    assert "chat.message.redacted" in by_type and "bob speaking" not in by_type
    searched = client.get(url, {"q": "bob speaking"}).content.decode()
    assert "bob speaking" in searched and "hello auditors" not in searched
    dated = client.get(url, {"room": name, "created_from": "2000-01-01", "created_to": "2000-12-31"})
    assert dated.status_code == 200 and "bob speaking" not in dated.content.decode()
    refused = client.get(url, {"created_from": "not a date"})
    assert refused.status_code == 400 and "created_from must be a date" in refused.content.decode()
    event = Event.objects.filter(stream__room__name=name).first()
    assert client.get(reverse("admin:events_event_change", args=[event.pk])).status_code == 200
    room = Room.objects.get(name=name)
    rooms = client.get(reverse("admin:chat_room_changelist")).content.decode()
    assert f"/admin/events/event/?room={name}" in rooms
    verify = client.get(reverse("admin:chat_room_verify", args=[room.pk]), follow=True).content.decode()
    assert "log verified, 3 events, chain intact" in verify


@pytest.mark.parametrize("kind", ["non_staff", "staff_without_permission"])
def test_others_are_refused(log, kind):
    user = UserFactory(is_staff=kind != "non_staff")
    if kind == "non_staff":
        user.user_permissions.add(Permission.objects.get(codename="view_event", content_type__app_label="events"))
    client = client_for(user)
    event = Event.objects.first()
    for url in (
        reverse("admin:events_event_changelist"),
        reverse("admin:events_event_change", args=[event.pk]),
        reverse("admin:events_event_export_csv"),
    ):
        response = client.get(url)
        if kind == "non_staff":  # sent to the admin's sign-in page
            assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), url
        else:  # signed in as staff, but without the permission
            assert response.status_code == 403, url
        assert "hello auditors" not in response.content.decode()
    if kind == "staff_without_permission":
        index = client.get(reverse("admin:index")).content.decode()
        assert "/admin/events/event/" not in index


def test_no_admin_url_changes_or_deletes_an_event(log):
    superuser = UserFactory(is_staff=True, is_superuser=True)
    client = client_for(superuser)
    event = Event.objects.filter(stream__room__name=log[0]).order_by("seq").first()
    before = (Event.objects.count(), event.data)
    assert client.get(reverse("admin:events_event_add")).status_code == 403
    assert client.post(reverse("admin:events_event_add"), {"type": "x", "seq": 9}).status_code == 403
    change = reverse("admin:events_event_change", args=[event.pk])
    assert client.post(change, {"data": '{"message": "rewritten"}', "seq": 1}).status_code == 403
    delete = reverse("admin:events_event_delete", args=[event.pk])
    assert client.get(delete).status_code == 403
    assert client.post(delete, {"post": "yes"}).status_code == 403
    bulk = client.post(
        reverse("admin:events_event_changelist"),
        {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"},
    )
    assert bulk.status_code == 200  # the changelist again: there is no such action to run
    page = client.get(reverse("admin:events_event_changelist")).content.decode()
    assert "delete_selected" not in page and "Add event" not in page
    event.refresh_from_db()
    assert (Event.objects.count(), event.data) == before


def test_export_csv_and_jsonl_follow_the_filters(log):
    name, alice, bob = log
    client = client_for(auditor())
    csv_response = client.get(reverse("admin:events_event_export_csv"), {"room": name})
    assert csv_response.status_code == 200 and csv_response.streaming
    rows = list(csv.DictReader(io.StringIO(b"".join(csv_response.streaming_content).decode())))
    assert [r["seq"] for r in rows] == ["1", "2", "3"]
    assert rows[1]["actor"] == bob.username and json.loads(rows[1]["data"]) == {"message": "bob speaking"}
    assert len(rows[0]["hash"]) == 64
    jsonl = client.get(reverse("admin:events_event_export_jsonl"), {"room": name, "author": bob.username})
    lines = b"".join(jsonl.streaming_content).decode().splitlines()
    assert [json.loads(line)["data"] for line in lines] == [{"message": "bob speaking"}]


def test_paginator_estimates_unfiltered_and_caps_filtered_counts(log, monkeypatch):
    from django.db import connection

    from events import admin as events_admin

    name = log[0]
    filtered = Event.objects.filter(stream__room__name=name)
    assert EstimatedCountPaginator(filtered, 100).count == 3
    monkeypatch.setattr(events_admin, "COUNT_CAP", 2)
    assert EstimatedCountPaginator(filtered, 100).count == 2
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE events_event")
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = 'events_event'")
        estimate = cursor.fetchone()[0]
    monkeypatch.setattr(events_admin, "ESTIMATE_ABOVE", -1)
    assert EstimatedCountPaginator(Event.objects.all(), 100).count == estimate


@pytest.mark.slow
@pytest.mark.timeout(300)  # 100,000 events appended and exported: about a minute on 2 shared cores
def test_export_of_100000_events_runs_in_bounded_memory(committed):
    user = UserFactory()
    access = room_join(user=user, name=f"bulk-{uuid.uuid4().hex[:8]}")
    bulk_append(stream_id=access.stream_id, actor_id=user.id, count=100_000, prefix="x" * 60 + " message ")
    qs = Event.objects.filter(stream_id=access.stream_id)
    for fmt, header in (("jsonl", 0), ("csv", 1)):
        tracemalloc.start()
        try:
            lines = 0
            size = 0
            for chunk in export_chunks(qs, fmt):
                lines += chunk.count(b"\n")
                size += len(chunk)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert lines == 100_000 + header
        assert size > 15_000_000  # the whole export is far bigger than what was held at once
        assert peak < 20 * 1024 * 1024, f"{fmt}: peak {peak / 1e6:.1f} MB"


def test_room_admin_archives_shows_members_and_verifies(log):
    name, alice, bob = log
    room = Room.objects.get(name=name)
    editor = UserFactory(is_staff=True)
    editor.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_room", "change_room", "view_membership", "change_membership"]),
        Permission.objects.get(codename="view_event", content_type__app_label="events"),
    )
    client = client_for(editor)
    change = client.get(reverse("admin:chat_room_change", args=[room.pk])).content.decode()
    assert alice.username in change or str(alice.pk) in change  # the members inline
    assert "Archive this room" in change and "Verify log" in change and "Timeline" in change
    assert client.get(reverse("admin:chat_room_archive", args=[room.pk])).status_code == 403  # POST only
    done = client.post(reverse("admin:chat_room_archive", args=[room.pk]), follow=True).content.decode()
    assert "archived (event seq 4)" in done
    room.refresh_from_db()
    assert room.is_archived
    last = Event.objects.get(stream_id=room.stream_id, seq=4)
    assert last.type == "chat.room.archived" and last.actor_id == editor.pk
    verified = client.post(
        reverse("admin:chat_room_changelist"), {"action": "verify_rooms", "_selected_action": [room.pk]}, follow=True
    ).content.decode()
    assert f"{name}: log verified, 4 events, chain intact.".lower() in verified.lower()  # shown capitalised
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_room"))
    client = client_for(viewer)
    assert client.post(reverse("admin:chat_room_archive", args=[room.pk])).status_code == 403
    assert client.get(reverse("admin:chat_room_verify", args=[room.pk])).status_code == 403


def test_export_streams_under_daphne(server, make_user):
    """Under ASGI the export is an async iterator pulling chunks on the request's thread."""
    import urllib.request

    user, cookie = make_user(is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_event", content_type__app_label="events"))
    writer = UserFactory()
    name = f"asgi-{uuid.uuid4().hex[:8]}"
    access = room_join(user=writer, name=name)
    for i in range(1200):  # more than two chunks
        message_post(access=access, text=f"line {i}", client_id=None)
    request = urllib.request.Request(
        f"{server.http}{reverse('admin:events_event_export_jsonl')}?room={name}", headers={"Cookie": cookie}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200 and response.headers["Content-Type"].startswith("application/jsonl")
        lines = response.read().decode().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == list(range(1, 1201))
    assert json.loads(lines[-1])["data"] == {"message": "line 1199"}
