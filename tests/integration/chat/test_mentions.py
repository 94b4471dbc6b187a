"""Mention emails end to end: services in this process, projection + flush + sender in
a real Celery worker (with beat), delivery to a real SMTP server."""

import time
import uuid

from django.core.management import call_command
from django.test import Client

from chat.models import MentionNotice
from chat.services import message_post, message_redact, read_mark, room_join
from notifications.models import OutboxEmail, Preferences
from tests.factories import UserFactory


def _room(*users):
    name = f"m-{uuid.uuid4().hex[:8]}"
    return [room_join(user=u, name=name) for u in users]


def _post(access, text):
    return message_post(access=access, text=text, client_id=None)


def _wait_settled(user, count: int, timeout: float = 30.0) -> list[MentionNotice]:
    """The user's mention notices once `count` exist and none is pending any more."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        notices = list(MentionNotice.objects.filter(user=user).order_by("seq"))
        if len(notices) >= count and all(n.status != "pending" for n in notices):
            return notices
        time.sleep(0.05)
    raise AssertionError(f"notices of {user}: {list(MentionNotice.objects.filter(user=user).values('status'))}")


def _wait_sent(user, timeout: float = 30.0) -> list[OutboxEmail]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        rows = list(OutboxEmail.objects.filter(recipient=user, kind="mention"))
        if rows and all(r.status == "sent" for r in rows):
            return rows
        time.sleep(0.05)
    raise AssertionError(f"mention emails of {user} not sent")


def test_mention_is_emailed_once_after_the_delay(celery_worker, smtp_sink, committed):
    alice, bob = UserFactory(), UserFactory()
    a, _ = _room(alice, bob)
    posted_at = time.monotonic()
    _post(a, f"hey @{bob.username}, look at <b>this</b> & that")

    (received,) = smtp_sink.wait_for(bob.email, kind="mention")
    assert time.monotonic() - posted_at >= 1.0  # NOTIFY_MENTION_DELAY of the test worker
    (row,) = _wait_sent(bob)
    assert row.key == f"mention:{_wait_settled(bob, 1)[0].event_id}"
    assert row.quoted_user_ids == [alice.pk]  # an erasure of alice cancels it while pending
    message = received.message
    assert message["Subject"] == f"{alice.username} mentioned you in #{a.name}"
    assert "look at <b>this</b> & that" in received.text
    assert "look at &lt;b&gt;this&lt;/b&gt; &amp; that" in received.html
    assert f"/chat/{a.name}/" in received.text and f"/chat/{a.name}/" in received.html
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Unsubscribe"].startswith("<http://127.0.0.1:8000/unsubscribe/")
    assert "/unsubscribe/" in received.text and "/unsubscribe/" in received.html

    # Nothing more comes: a rebuild of the projection queues nothing new.
    call_command("rebuild_projection", "mentions")
    assert OutboxEmail.objects.filter(recipient=bob, kind="mention").count() == 1
    assert MentionNotice.objects.filter(user=bob).count() == 1
    assert len(smtp_sink.to(bob.email, "mention")) == 1


def test_mention_read_within_the_delay_is_not_emailed(celery_worker, smtp_sink, committed):
    alice, carol = UserFactory(), UserFactory()
    a, c = _room(alice, carol)
    posted = _post(a, f"@{carol.username} are you there?")
    read_mark(access=c, seq=posted.seq)

    (notice,) = _wait_settled(carol, 1)
    assert notice.status == "dropped"
    assert not OutboxEmail.objects.filter(recipient=carol, kind="mention").exists()
    assert smtp_sink.to(carol.email, "mention") == []


def test_a_burst_of_mentions_is_one_email(celery_worker, smtp_sink, committed):
    alice, bob = UserFactory(), UserFactory()
    a, _ = _room(alice, bob)
    for i in range(5):
        _post(a, f"@{bob.username} ping {i}")

    notices = _wait_settled(bob, 5)
    assert [n.status for n in notices] == ["queued"] * 5
    (row,) = _wait_sent(bob)
    (received,) = smtp_sink.wait_for(bob.email, kind="mention")
    assert "5" in received.message["Subject"]
    for i in range(5):
        assert f"ping {i}" in received.text and f"ping {i}" in received.html


def test_who_is_not_notified(celery_worker, smtp_sink, committed):
    """Not your own message, not non-members, not a user who switched mention emails off."""
    alice, outsider, quiet, bob = UserFactory(), UserFactory(), UserFactory(), UserFactory()
    Preferences.objects.create(user=quiet, mention_email=False)
    a, _, _ = _room(alice, quiet, bob)
    _post(a, f"@{alice.username} @{outsider.username} @{quiet.username} @{bob.username}")

    smtp_sink.wait_for(bob.email, kind="mention")  # the one who is notified; the others were decided in the same pass
    assert not MentionNotice.objects.filter(user__in=[alice, outsider]).exists()
    (notice,) = _wait_settled(quiet, 1)
    assert notice.status == "dropped"
    for user in (alice, outsider, quiet):
        assert (
            not OutboxEmail.objects.filter(recipient=user, kind="mention").exists()
            and smtp_sink.to(user.email, "mention") == []
        )


def test_mention_redacted_before_sending_is_dropped(celery_worker, smtp_sink, committed):
    alice, bob = UserFactory(), UserFactory()
    a, _ = _room(alice, bob)
    posted = _post(a, f"@{bob.username} oops, wrong person")
    message_redact(access=a, target_seq=posted.seq, reason="", client_id=None)

    (notice,) = _wait_settled(bob, 1)
    assert notice.status == "dropped"
    assert smtp_sink.to(bob.email, "mention") == []


def test_email_in_japanese_for_a_japanese_speaker(celery_worker, smtp_sink, committed):
    alice, kenji = UserFactory(), UserFactory()
    Preferences.objects.create(user=kenji, language="ja")
    a, _ = _room(alice, kenji)
    _post(a, f"@{kenji.username} こんにちは")

    (received,) = smtp_sink.wait_for(kenji.email, kind="mention")
    assert received.message["Subject"] == f"{alice.username} さんが #{a.name} であなたについて言及しました"
    assert "こんにちは" in received.text and "配信停止" in received.text and "配信停止" in received.html


def test_unsubscribe_link_of_a_real_email_works_without_signing_in(celery_worker, smtp_sink, committed):
    alice, bob = UserFactory(), UserFactory()
    a, _ = _room(alice, bob)
    _post(a, f"@{bob.username} hi")
    (received,) = smtp_sink.wait_for(bob.email, kind="mention")
    path = received.message["List-Unsubscribe"].strip("<>").removeprefix("http://127.0.0.1:8000")

    client = Client(enforce_csrf_checks=True)
    page = client.get(path)
    assert page.status_code == 200 and 'method="post"' in page.content.decode()
    assert not Preferences.objects.filter(user=bob, mention_email=False).exists()
    # RFC 8058: the mail client POSTs this body, with no cookie and no CSRF token.
    done = client.post(path, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert done.status_code == 200
    prefs = Preferences.objects.get(user=bob)
    assert prefs.mention_email is False and prefs.digest_email is True and prefs.blog_email is True
