"""Backup and restore of the log with the shipped scripts (scripts/backup.sh, scripts/restore.sh):
pg_dump, more posts, pg_restore into a new database, then a daphne and a Celery worker on it.

Email before the restore is driven in this process (projection, mention flush, outbox
sender against the SMTP sink), so the test decides exactly what was queued and what
was sent at the moment of the backup; after it, a real worker with beat runs on the
restored database.
"""

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from django.test import override_settings

from chat.mentions import mentions_flush
from chat.services import message_post, room_join
from events.models import Event
from events.projections import projection_run
from notifications.models import OutboxEmail
from notifications.outbox import outbox_message_id, outbox_send
from tests.support.celery import Worker, worker_env
from tests.support.pgcluster import PgCluster
from tests.support.servers import ROOT, database_url, server_env
from tests.support.smtp import smtp_url
from tests.support.wait import wait_until
from tests.support.ws import ChatClient

pytestmark = pytest.mark.e2e


def _run(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def new_database(db_settings) -> Iterator:
    """URLs of databases that do not exist yet, on the test server; dropped after the test."""
    names: list[str] = []

    def make() -> str:
        names.append(f"{db_settings['NAME']}_restored_{uuid.uuid4().hex[:8]}")
        return database_url({**db_settings, "NAME": names[-1]})

    yield make
    with psycopg.connect(database_url({**db_settings, "NAME": "postgres"}), autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _email_round(*, send: bool, until: Callable[[], bool]) -> None:
    """What beat and the worker do, here: project mentions, queue the due ones, send; again
    until `until()`. (The projections wait for transactions open anywhere on the cluster.)"""
    host, port = smtp_url().removeprefix("smtp://").split(":")
    options = {"host": host, "port": int(port), "timeout": 10}
    mailers = {"default": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend", "OPTIONS": options}}

    def step() -> bool:
        projection_run(name="mentions")
        mentions_flush()
        if send:
            outbox_send()
        return until()

    # Generous: the projections' horizon is cluster-wide, so on a shared PostgreSQL another
    # session's long transaction holds them up (once seen here: over 30 s).
    with override_settings(NOTIFY_MENTION_DELAY=0, MAILERS=mailers):
        wait_until(step, timeout=120, what="the mention emails")


def _query(url: str, sql: str, *params: object) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def test_backup_restore_resets_clients_verifies_and_neither_resends_nor_loses_email(
    committed, make_user, smtp_sink, start_server, db_settings, new_database, tmp_path
):
    env = server_env(db_settings)
    old_url = database_url(db_settings)
    room = f"bk-{uuid.uuid4().hex[:8]}"
    (alice, alice_cookie), (bob, bob_cookie) = make_user(), make_user()
    a = room_join(user=alice, name=room)
    room_join(user=bob, name=room)

    def mentions_to_bob() -> list:
        return smtp_sink.to(bob.email, "mention")

    # Before the backup: one mention emailed, one queued but not sent yet.
    message_post(access=a, text=f"@{bob.username} sent before the backup", client_id=None)
    message_post(access=a, text="plain, before the backup", client_id=None)
    _email_round(send=True, until=lambda: len(mentions_to_bob()) == 1)
    message_post(access=a, text=f"@{bob.username} queued at the backup", client_id=None)
    _email_round(send=False, until=lambda: OutboxEmail.objects.filter(recipient=bob, status="pending").exists())
    (queued,) = OutboxEmail.objects.filter(recipient=bob, kind="mention", status="pending")

    backup = tmp_path / "chat.dump"
    done = _run("bash", "scripts/backup.sh", str(backup), env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(backup) and not (tmp_path / "chat.dump.partial").exists()

    # After the backup: posts that the restore will lose, and the emails the old database sends.
    lost = message_post(access=a, text=f"@{bob.username} posted after the backup", client_id=None)
    message_post(access=a, text="also after the backup", client_id=None)
    _email_round(send=True, until=lambda: len(mentions_to_bob()) == 3)  # the queued one and the lost one
    lost_event_id = Event.objects.get(stream_id=a.stream_id, seq=lost.seq).id

    # Restore into a new database, with the old one still readable.
    target = new_database()
    done = _run("bash", "scripts/restore.sh", str(backup), target, "--sent-from", old_url, env=env)
    assert done.returncode == 0, done.stderr
    assert "1 email(s) sent by the old database after the backup marked sent" in done.stderr

    again = _run("bash", "scripts/restore.sh", str(backup), target, env=env)
    assert again.returncode == 1 and "already has tables; restore into a new (or empty) database" in again.stderr

    verified = _run(sys.executable, "manage.py", "verify_log", env=server_env(db_settings, DATABASE_URL=target))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("OK: ")

    # Clients that saw seq 5 reconnect to a daphne on the restored database.
    server = start_server(DATABASE_URL=target)

    async def reconnect() -> tuple[list, list, dict, dict]:
        alice_ws = await ChatClient.connect(server.ws, room, cookie=alice_cookie, query="since=5")
        bob_ws = await ChatClient.connect(server.ws, room, cookie=bob_cookie, query="since=5")
        replay, end = await alice_ws.history()
        bob_replay, _ = await bob_ws.history()
        ack = await alice_ws.post(f"@{bob.username} after the restore")
        (live,) = await bob_ws.events(1)
        await alice_ws.close()
        await bob_ws.close()
        return replay, bob_replay, end, {"ack": ack, "live": live}

    replay, bob_replay, end, after = asyncio.run(reconnect())
    assert end["reset"] is True and end["last_seq"] == 3 and end["truncated"] is False
    assert [f["seq"] for f in replay] == [1, 2, 3] == [f["seq"] for f in bob_replay]
    assert [f["message"] for f in replay] == [
        f"@{bob.username} sent before the backup",
        "plain, before the backup",
        f"@{bob.username} queued at the backup",
    ]
    assert after["ack"]["seq"] == 4 and after["live"]["seq"] == 4
    # The restored log hands out the lost event's id again, for another message.
    ((new_event_id,),) = _query(
        target,
        "SELECT e.id FROM events_event e JOIN chat_room r ON r.stream_id = e.stream_id WHERE r.name = %s AND e.seq = 4",
        room,
    )
    assert new_event_id == lost_event_id

    # A worker with beat on the restored database: it emails the new mention, and nothing else.
    queue = f"restored-{uuid.uuid4().hex[:8]}"
    worker = Worker(env=worker_env(db_settings, DATABASE_URL=target, CELERY_QUEUE=queue), queue=queue, beat=True)
    worker.start()
    try:
        smtp_sink.wait_for(bob.email, 4, kind="mention", timeout=120)

        def settled() -> bool:
            rows = _query(
                target, "SELECT status FROM events_outboxemail WHERE recipient_id = %s AND kind = 'mention'", bob.pk
            )
            return len(rows) == 3 and all(status == "sent" for (status,) in rows)

        wait_until(settled, timeout=120, what="the restored database's mention emails to be sent")
    finally:
        worker.stop()

    emails = mentions_to_bob()
    assert len(emails) == 4, [e.text for e in emails]

    def about(text: str):
        (email,) = [e for e in emails if text in e.text]
        return email

    # One each: sent before the backup (not again), queued at it (not again: --sent-from),
    # the lost message's (sent before the restore), the new message's.
    first, queued_email = about("sent before the backup"), about("queued at the backup")
    lost_email, new_email = about("posted after the backup"), about("after the restore")
    # The new email reuses the lost one's outbox row id, not its Message-ID.
    assert new_email.message["Message-ID"] != lost_email.message["Message-ID"]

    # Without --sent-from (the old database is gone), the email queued at the backup is
    # pending again: sent a second time, under the Message-ID of its first sending.
    blind = new_database()
    done = _run("bash", "scripts/restore.sh", str(backup), blind, env=env)
    assert done.returncode == 0, done.stderr
    ((status, pk, created_at),) = _query(
        blind, "SELECT status, id, created_at FROM events_outboxemail WHERE id = %s", queued.pk
    )
    assert status == "pending"
    again_id = outbox_message_id(OutboxEmail(pk=pk, created_at=created_at, kind="mention"))
    assert queued_email.message["Message-ID"] == again_id
    assert first.message["Message-ID"] != again_id


@pytest.fixture
def fresh_cluster() -> Iterator[PgCluster]:
    cluster = PgCluster.create()
    yield cluster
    cluster.destroy()


def test_restore_onto_a_fresh_cluster_is_refused_until_its_epoch_is_raised(
    committed, make_user, db_settings, fresh_cluster, tmp_path
):
    env = server_env(db_settings)
    alice, _ = make_user()
    a = room_join(user=alice, name=f"bk-{uuid.uuid4().hex[:8]}")
    message_post(access=a, text="the log's newest transaction id", client_id=None)
    backup = tmp_path / "chat.dump"
    assert _run("bash", "scripts/backup.sh", str(backup), env=env).returncode == 0

    # A new server's transaction ids start below the log's: new events would sort before the
    # restored checkpoints and never be projected. The script says so and how to fix it.
    refused = _run("bash", "scripts/restore.sh", str(backup), fresh_cluster.url("chat"), env=env)
    assert refused.returncode == 1
    assert "transaction ids are behind those of the restored log" in refused.stderr
    assert "pg_resetwal --epoch=1 DATADIR" in refused.stderr

    # The fix it names: drop, stop, raise the epoch, start, restore again.
    with psycopg.connect(fresh_cluster.url("postgres"), autocommit=True) as conn:
        conn.execute("DROP DATABASE chat")
    fresh_cluster.stop()
    fresh_cluster.resetwal_epoch(1)
    fresh_cluster.start()
    done = _run("bash", "scripts/restore.sh", str(backup), fresh_cluster.url("chat"), env=env)
    assert done.returncode == 0, done.stderr
    ((ahead,),) = _query(
        fresh_cluster.url("chat"),
        "SELECT pg_current_xact_id()::text::bigint > (SELECT max(txid) FROM events_event)",
    )
    assert ahead is True
