"""Edits, redactions, archiving (chat.services) and erasure, on a real PostgreSQL."""

import json
import uuid

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from chat.errors import ChatError
from chat.models import Membership, MessageState, Room
from chat.selectors import current_texts
from chat.services import message_edit, message_post, message_redact, room_archive, room_join, room_replay
from events.models import Event
from notifications.models import OutboxEmail
from tests.factories import UserFactory


def _frames(access) -> list[dict]:
    return [json.loads(f) for f in room_replay(access=access, since=None, limit=100).frames]


def _code(call) -> tuple[str, str]:
    with pytest.raises(ChatError) as info:
        call()
    return info.value.code, info.value.detail


def test_author_edits_and_replay_shows_the_current_version(room):
    _, a = room
    posted = message_post(access=a["alice"], text="helo", client_id=None)
    edit = message_edit(access=a["alice"], target_seq=posted.seq, text="hello", client_id="e1")
    assert edit.seq == posted.seq + 1 and not edit.duplicate
    live = json.loads(edit.frame)
    assert live["type"] == "chat.edit" and live["target_seq"] == posted.seq and live["message"] == "hello"
    assert live["username"] == a["alice"].username and live["client_id"] == "e1"
    frames = _frames(a["bob"])
    assert frames[0]["type"] == "chat.message" and frames[0]["message"] == "hello" and frames[0]["edited"] is True
    assert [f["seq"] for f in frames] == [1, 2]
    again = message_edit(access=a["alice"], target_seq=posted.seq, text="hello", client_id="e1")
    assert again.duplicate and again.seq == edit.seq
    assert MessageState.objects.get(stream_id=a["alice"].stream_id, seq=posted.seq).edit_count == 1


def test_only_the_author_may_edit(room):
    _, a = room
    posted = message_post(access=a["alice"], text="mine", client_id=None)
    for who in ("bob", "mod"):
        code, detail = _code(lambda w=who: message_edit(access=a[w], target_seq=posted.seq, text="x", client_id=None))
        assert code == "forbidden" and "author" in detail


def test_unknown_or_non_message_target_is_invalid(room):
    _, a = room
    posted = message_post(access=a["alice"], text="one", client_id=None)
    edit = message_edit(access=a["alice"], target_seq=posted.seq, text="uno", client_id=None)
    assert _code(lambda: message_edit(access=a["alice"], target_seq=99, text="x", client_id=None)) == (
        "invalid_message",
        "No message with seq 99 in this room.",
    )
    assert _code(lambda: message_redact(access=a["alice"], target_seq=edit.seq, reason="", client_id=None))[0] == (
        "invalid_message"
    )


def test_redaction_permissions(room, db):
    _, a = room
    first = message_post(access=a["alice"], text="first", client_id=None)
    second = message_post(access=a["alice"], text="second", client_id=None)
    third = message_post(access=a["alice"], text="third", client_id=None)
    code, _ = _code(lambda: message_redact(access=a["bob"], target_seq=first.seq, reason="no", client_id=None))
    assert code == "forbidden"
    assert message_redact(access=a["alice"], target_seq=first.seq, reason="", client_id=None).seq
    assert message_redact(access=a["mod"], target_seq=second.seq, reason="spam", client_id=None).seq
    # Staff may redact in any room.
    staff = UserFactory(is_staff=True)
    staff_access = room_join(user=staff, name=a["alice"].name)
    assert message_redact(access=staff_access, target_seq=third.seq, reason="legal", client_id=None).seq
    code, detail = _code(lambda: message_redact(access=a["mod"], target_seq=first.seq, reason="", client_id=None))
    assert code == "forbidden" and "already" in detail
    code, detail = _code(lambda: message_edit(access=a["alice"], target_seq=first.seq, text="back", client_id=None))
    assert code == "forbidden" and "redacted" in detail


def test_reason_is_limited_to_500_characters(room):
    _, a = room
    posted = message_post(access=a["alice"], text="x", client_id=None)
    code, _ = _code(lambda: message_redact(access=a["alice"], target_seq=posted.seq, reason="r" * 501, client_id=None))
    assert code == "invalid_message"


def test_replay_and_scrollback_after_redaction_hold_no_redacted_text(room):
    name, a = room
    secret = f"secret-{uuid.uuid4().hex}"
    posted = message_post(access=a["alice"], text=secret, client_id=None)
    message_edit(access=a["alice"], target_seq=posted.seq, text=secret + " (edited)", client_id=None)
    message_post(access=a["bob"], text="unrelated", client_id=None)
    redact = message_redact(access=a["mod"], target_seq=posted.seq, reason="private data", client_id="r1")
    assert json.loads(redact.frame) == {
        "type": "chat.redact",
        "room": name,
        "seq": redact.seq,
        "id": redact.id,
        "username": a["mod"].username,
        "target_seq": posted.seq,
        "ts": json.loads(redact.frame)["ts"],
        "client_id": "r1",
        "replay": False,
    }
    replay = room_replay(access=a["bob"], since=None, limit=100).frames
    assert all(secret not in f for f in replay)
    frames = [json.loads(f) for f in replay]
    assert frames[0]["redacted"] is True and frames[0]["message"] == ""
    assert frames[1]["type"] == "chat.edit" and frames[1]["message"] == "" and frames[1]["redacted"] is True
    resumed = room_replay(access=a["bob"], since=0, limit=100).frames
    assert all(secret not in f for f in resumed)
    client = Client()
    client.force_login(Membership.objects.get(room__name=name, user_id=a["bob"].user_id).user)
    response = client.get(f"/api/rooms/{name}/events")
    assert response.status_code == 200
    assert secret not in response.content.decode()
    events = response.json()["events"]
    assert events[0]["redacted"] is True and events[0]["message"] == ""
    stream_id = a["alice"].stream_id
    texts = current_texts(messages=[(stream_id, posted.seq), (stream_id, posted.seq + 2), (stream_id, 999)])
    assert {seq: current.shown for (_, seq), current in texts.items()} == {
        posted.seq: None,
        posted.seq + 2: "unrelated",
    }


def test_archived_room_refuses_messages_and_edits_but_replays_and_takes_redactions(room):
    name, a = room
    posted = message_post(access=a["alice"], text="before", client_id=None)
    seq = room_archive(room_id=a["alice"].room_id, actor_id=None)
    assert seq == posted.seq + 1 and Room.objects.get(name=name).is_archived
    assert room_archive(room_id=a["alice"].room_id, actor_id=None) is None
    assert _code(lambda: message_post(access=a["bob"], text="after", client_id=None)) == (
        "forbidden",
        "This room is archived.",
    )
    assert _code(lambda: message_edit(access=a["alice"], target_seq=posted.seq, text="x", client_id=None))[0] == (
        "forbidden"
    )
    frames = _frames(a["bob"])
    assert [f["type"] for f in frames] == ["chat.message", "chat.room.archived"]
    assert Event.objects.filter(stream_id=a["alice"].stream_id).count() == 2
    # Moderation stays possible: the author may still redact.
    redacted = message_redact(access=a["alice"], target_seq=posted.seq, reason="late fix", client_id=None)
    assert redacted.seq == seq + 1


def test_erase_user_removes_texts_everywhere(room, db):
    name, a = room
    secret = f"erase-me-{uuid.uuid4().hex}"
    posted = message_post(access=a["alice"], text=secret, client_id=None)
    message_edit(access=a["alice"], target_seq=posted.seq, text=secret + "!", client_id=None)
    kept = message_post(access=a["bob"], text="bob stays", client_id=None)
    alice = Membership.objects.get(room__name=name, user_id=a["alice"].user_id).user
    bob = Membership.objects.get(room__name=name, user_id=a["bob"].user_id).user
    due = timezone.now()
    quoting = OutboxEmail.objects.create(
        recipient=bob,
        to_address=bob.email,
        kind="mention",
        key=f"k-{uuid.uuid4().hex}",
        subject="s",
        text_body=f"{alice.username}: {secret}",
        html_body="",
        language="en",
        next_attempt_at=due,
        quoted_user_ids=[alice.pk],
    )
    unrelated = OutboxEmail.objects.create(
        recipient=bob,
        to_address=bob.email,
        kind="digest",
        key=f"k-{uuid.uuid4().hex}",
        subject="s",
        text_body="nothing of hers",
        html_body="",
        language="en",
        next_attempt_at=due,
    )
    call_command("erase_user", alice.username, stdout=open("/dev/null", "w"))
    replay = room_replay(access=a["bob"], since=None, limit=100).frames
    assert all(secret not in f for f in replay)
    assert json.loads(replay[0])["redacted"] is True
    assert not Event.objects.filter(data__icontains=secret).exists()
    assert not Event.objects.filter(actor=alice, data__has_key="message").exists()
    texts = current_texts(messages=[(a["bob"].stream_id, posted.seq), (a["bob"].stream_id, kept.seq)])
    assert {seq: current.shown for (_, seq), current in texts.items()} == {
        posted.seq: None,
        kept.seq: "bob stays",
    }
    quoting.refresh_from_db()
    unrelated.refresh_from_db()
    assert quoting.status == "failed" and quoting.last_error == "erased"
    assert unrelated.status == "pending"
    alice.refresh_from_db()
    assert not alice.is_active
