"""The auditors' timeline (chat.selectors.room_timeline) and its admin page, on a real PostgreSQL."""

from datetime import timedelta

from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from chat.models import Room
from chat.selectors import room_timeline
from chat.services import message_edit, message_post, message_redact
from events.models import Event
from tests.factories import UserFactory


def test_timeline_as_of_shows_the_earlier_state(room):
    name, a = room
    posted = message_post(access=a["alice"], text="draft", client_id=None)
    message_edit(access=a["alice"], target_seq=posted.seq, text="final", client_id=None)
    message_redact(access=a["mod"], target_seq=posted.seq, reason="off topic", client_id=None)
    events = {e.seq: e for e in Event.objects.filter(stream_id=a["alice"].stream_id)}
    now = room_timeline(stream_id=a["alice"].stream_id, as_of=None).entries[0]
    assert [v.text for v in now.versions] == ["draft", "final"]
    assert now.redacted_by == a["mod"].username and now.reason == "off topic"
    before_edit = room_timeline(stream_id=a["alice"].stream_id, as_of=events[posted.seq].created_at).entries[0]
    assert before_edit.text == "draft" and not before_edit.edited and before_edit.redacted_at is None
    before_redaction = room_timeline(stream_id=a["alice"].stream_id, as_of=events[posted.seq + 1].created_at)
    assert before_redaction.entries[0].text == "final" and before_redaction.entries[0].redacted_at is None

    auditor = UserFactory(is_staff=True)
    auditor.user_permissions.add(Permission.objects.get(codename="view_event", content_type__app_label="events"))
    client = Client()
    client.force_login(auditor)
    room_id = Room.objects.get(name=name).pk
    page = client.get(f"/admin/chat/room/{room_id}/timeline/")
    body = page.content.decode()
    assert page.status_code == 200 and "draft" in body and "final" in body and "off topic" in body
    as_of = timezone.localtime(events[posted.seq].created_at + timedelta(microseconds=1)).isoformat()
    earlier = client.get(f"/admin/chat/room/{room_id}/timeline/", {"as_of": as_of}).content.decode()
    assert "draft" in earlier and "final" not in earlier and "off topic" not in earlier
    plain = UserFactory(is_staff=True)
    client.force_login(plain)
    assert client.get(f"/admin/chat/room/{room_id}/timeline/").status_code == 403
