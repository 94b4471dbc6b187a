"""The daily digest through a real Celery worker and SMTP server: right counts, once per
user and day even when run twice or when the worker is SIGKILLed half-way."""

import uuid
from datetime import date

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from chat.digest import digest_send
from chat.services import message_post, message_redact, room_join
from chat.tasks import digest_send_task
from events.models import Event
from notifications.models import OutboxEmail, Preferences
from tests.factories import UserFactory
from tests.support.celery import send_task
from tests.support.servers import database_url
from tests.support.wait import wait_until


def _post(access, text):
    return message_post(access=access, text=text, client_id=None)


def _digests(users, day: date) -> dict[int, list[OutboxEmail]]:
    rows = OutboxEmail.objects.filter(recipient__in=users, kind="digest", key=day.isoformat())
    found: dict[int, list[OutboxEmail]] = {u.pk: [] for u in users}
    for row in rows:
        found[row.recipient_id].append(row)
    return found


def test_digest_counts_and_once_per_user(celery_worker, smtp_sink, committed):
    alice, bob, carol, quiet, idle = (UserFactory() for _ in range(5))
    Preferences.objects.create(user=quiet, digest_email=False)
    r1, r2 = f"d1-{uuid.uuid4().hex[:6]}", f"d2-{uuid.uuid4().hex[:6]}"
    a1, b1, c1, _ = (room_join(user=u, name=r1) for u in (alice, bob, carol, quiet))
    a2 = room_join(user=alice, name=r2)
    room_join(user=bob, name=r2)
    room_join(user=idle, name=f"empty-{uuid.uuid4().hex[:6]}")
    for i in range(3):
        _post(b1, f"bob says {i}")
    _post(a1, "alice <script>x</script>\nsecond line")
    _post(c1, "carol was here")
    _post(a2, "only in room two")
    secret = _post(c1, "carol's secret, redacted")
    message_redact(access=c1, target_seq=secret.seq, reason="", client_id=None)
    today = timezone.localdate()

    send_task(digest_send_task, today.isoformat())
    send_task(digest_send_task, today.isoformat())  # beat firing twice

    for user in (alice, bob, carol):
        smtp_sink.wait_for(user.email, kind="digest")
    wait_until(
        lambda: all(r and r[0].status == "sent" for r in _digests([alice, bob, carol], today).values()), what="sent"
    )
    call_command("send_digests", "--date", today.isoformat())  # and once more by hand

    found = _digests([alice, bob, carol, quiet, idle], today)
    assert [len(found[u.pk]) for u in (alice, bob, carol, quiet, idle)] == [1, 1, 1, 0, 0]
    assert set(found[alice.pk][0].quoted_user_ids) == {alice.pk, bob.pk, carol.pk}  # the authors of its lines
    for user in (alice, bob, carol):
        assert len(smtp_sink.to(user.email, "digest")) == 1
    assert smtp_sink.to(quiet.email, "digest") == [] and smtp_sink.to(idle.email, "digest") == []

    (received,) = smtp_sink.to(alice.email, "digest")
    text, html = received.text, received.html
    assert "secret" not in text and "secret" not in html  # redacted texts never shown
    assert f"#{r1} — 6 new messages" in text and f"#{r2} — 1 new message" in text
    assert f"{bob.username} (3)" in text  # the most active author first
    assert text.index(f"{bob.username} (3)") < text.index(f"{carol.username} (2)") < text.index(f"{alice.username} (1)")
    assert f"{carol.username}: carol was here" in text and "alice <script>x</script>" in text
    assert "second line" not in text  # first lines only
    assert "alice &lt;script&gt;x&lt;/script&gt;" in html and "<script>x" not in html
    assert f"http://127.0.0.1:8000/chat/{r1}/" in text and f'href="http://127.0.0.1:8000/chat/{r1}/"' in html
    assert "7 new messages" in received.message["Subject"]
    assert received.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    (carols,) = smtp_sink.to(carol.email, "digest")
    assert f"#{r1}" in carols.text and f"#{r2}" not in carols.text


def test_a_day_already_digested_has_nothing_left_to_send(db):
    """The day has events, and every member already has its digest: a rerun queues nothing.
    (In the test's transaction: the emails it queues for other tests' users roll back.)"""
    alice, bob = UserFactory(), UserFactory()
    room = f"again-{uuid.uuid4().hex[:6]}"
    posted = _post(room_join(user=alice, name=room), "something to digest")
    room_join(user=bob, name=room)
    day = timezone.localdate(Event.objects.get(stream__room__name=room, seq=posted.seq).created_at)

    first = digest_send(day=day)
    assert [len(found) for found in _digests([alice, bob], day).values()] == [1, 1]
    again = digest_send(day=day)

    assert first.rooms >= 1 and first.queued >= 2  # the day has events and they were digested
    assert again.rooms == first.rooms  # the same active rooms...
    assert again.users == 0 and again.queued == 0  # ...but nobody left without this day's digest
    assert [len(found) for found in _digests([alice, bob], day).values()] == [1, 1]


@pytest.mark.slow
def test_worker_killed_mid_run_then_restarted_sends_each_digest_once(
    celery_worker, start_worker, smtp_sink, committed, db_settings
):
    users = [UserFactory() for _ in range(15)]
    room = f"kill-{uuid.uuid4().hex[:6]}"
    accesses = [room_join(user=u, name=room) for u in users]
    _post(accesses[0], "something happened")
    today = timezone.localdate()
    queue = f"kill-{uuid.uuid4().hex[:6]}"
    worker = start_worker(queue, DIGEST_BATCH_SIZE="3")
    mine = sorted(users, key=lambda u: u.pk)
    blocked = mine[10]  # pages are 3 users in id order: its page holds at most mine[8:13]

    # Another transaction holds this user's digest key, uncommitted: the worker commits
    # pages 1–3 and then waits on page 4 — mid-run — until we kill it.
    blocker = psycopg.connect(database_url(db_settings).replace("postgres://", "postgresql://"), autocommit=False)
    try:
        blocker.execute(
            "INSERT INTO events_outboxemail (recipient_id, to_address, kind, key, subject, text_body, html_body,"
            " headers, language, status, attempts, next_attempt_at, last_error, created_at)"
            " VALUES (%s, %s, 'digest', %s, 'x', 'x', 'x', '{}', 'en', 'pending', 0, now(), '', now())",
            [blocked.pk, blocked.email, today.isoformat()],
        )
        digest_send_task.apply_async(args=[today.isoformat()], queue=queue)
        wait_until(lambda: all(_digests(mine[:8], today).values()), what="the pages before the held key")
        wait_until(lambda: _lock_waiters(db_settings) > 0, what="the worker to wait on the held key")
        worker.kill()
    finally:
        blocker.rollback()
        blocker.close()
    assert not any(_digests(mine[13:], today).values())  # the run was stopped half-way

    start_worker(queue, DIGEST_BATCH_SIZE="3")  # restarted
    digest_send_task.apply_async(args=[today.isoformat()], queue=queue)  # beat's next try / a rerun

    wait_until(lambda: all(r and r[0].status == "sent" for r in _digests(users, today).values()), what="all sent")
    for user in users:
        assert len(_digests([user], today)[user.pk]) == 1
        assert len(smtp_sink.wait_for(user.email, kind="digest")) == 1


def _lock_waiters(db_settings) -> int:
    with psycopg.connect(database_url(db_settings).replace("postgres://", "postgresql://")) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
            [settings.DATABASES["default"]["NAME"]],
        ).fetchone()
    return row[0]
