"""The hash chain: computed by the append statement, verified by `verify_log`."""

import io
import uuid

import pytest
from django.core.management import call_command
from django.db import connection

from chat.erasure import user_erase
from chat.events import MESSAGE_POSTED
from chat.services import message_edit, message_post, message_redact, room_join
from events.models import Event, Stream
from events.services import event_append, stream_create
from events.verify import ZERO_HASH, chain_hash, stream_verify
from tests.factories import UserFactory


def verify_log(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verify_log", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def test_each_event_is_chained_to_the_previous_one(db):
    user = UserFactory()
    stream = stream_create(key=f"test:{uuid.uuid4().hex}")
    first = event_append(stream_id=stream.id, type=MESSAGE_POSTED, data={"message": "a"}, actor_id=user.id).event
    second = event_append(
        stream_id=stream.id, type=MESSAGE_POSTED, data={"message": "b"}, actor_id=None, client_id="k"
    ).event
    stored = {e.seq: e for e in Event.objects.filter(stream=stream)}
    assert bytes(stored[1].hash) == first.hash and bytes(stored[2].hash) == second.hash
    assert first.hash == chain_hash(
        prev=ZERO_HASH,
        seq=1,
        type=MESSAGE_POSTED,
        schema_version=1,
        actor_id=user.id,
        client_id=None,
        created_at=stored[1].created_at,
        content_hash=first.content_hash,
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT sha256(convert_to('{\"message\": \"b\"}'::jsonb::text, 'UTF8'))")
        assert bytes(cursor.fetchone()[0]) == second.content_hash
    stream.refresh_from_db()
    assert bytes(stream.head_hash) == second.hash
    assert stream_verify(stream=stream).ok


def test_verify_log_passes_on_a_clean_log_and_after_redaction(db):
    name = f"verify-{uuid.uuid4().hex[:8]}"
    alice, mod = UserFactory(), UserFactory()
    a = room_join(user=alice, name=name)
    m = room_join(user=mod, name=name)
    posted = message_post(access=a, text="oops", client_id=None)
    message_edit(access=a, target_seq=posted.seq, text="fixed", client_id=None)
    message_redact(access=a, target_seq=posted.seq, reason="gone", client_id=None)
    message_post(access=m, text="ok", client_id=None)
    code, out, err = verify_log("--room", name)
    assert code == 0 and "OK: 1 streams, 4 events verified." in out
    assert "verifying: 100%" in err and "4/4" in err  # the progress bar (tqdm)
    code, out, _ = verify_log()
    assert code == 0 and out.startswith("OK")


def test_verify_log_passes_after_an_erasure(db):
    name = f"erase-{uuid.uuid4().hex[:8]}"
    alice, bob = UserFactory(), UserFactory()
    a = room_join(user=alice, name=name)
    posted = message_post(access=a, text="personal", client_id=None)
    message_edit(access=a, target_seq=posted.seq, text="more personal", client_id=None)
    message_post(access=room_join(user=bob, name=name), text="hi", client_id=None)
    done = user_erase(user_id=alice.id)
    assert done.events_scrubbed == 2
    assert verify_log("--room", name)[0] == 0
    assert verify_log("--stream", "audit:erasure")[0] == 0


def test_an_erased_form_without_an_erasure_event_is_a_break(db):
    """The erasure path is only honoured for actors whose erasure is in the log."""
    name = f"forge-{uuid.uuid4().hex[:8]}"
    alice = UserFactory()
    a = room_join(user=alice, name=name)
    message_post(access=a, text="kept", client_id=None)
    with connection.cursor() as cursor:
        # Inside the test transaction: a forged "erasure" with no chat.user.erased event
        # (the flag and, since events migration 0008, the types the trigger lets through).
        cursor.execute("SELECT set_config('events.erasure', 'on', true)")
        cursor.execute("SELECT set_config('events.erasure_types', '{chat.message.posted}', true)")
        cursor.execute(
            "UPDATE events_event SET data = '{\"erased\": true}' WHERE stream_id = %s AND seq = 1", [a.stream_id]
        )
        cursor.execute("SELECT set_config('events.erasure', 'off', true)")
    code, out, _ = verify_log("--room", name)
    assert code == 1 and f"room:{name} seq 1: content hash" in out


def test_the_trigger_refuses_any_other_change_even_with_the_erasure_flag(db):
    name = f"flag-{uuid.uuid4().hex[:8]}"
    a = room_join(user=UserFactory(), name=name)
    message_post(access=a, text="kept", client_id=None)
    with pytest.raises(Exception, match="immutable"), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('events.erasure', 'on', true)")
        cursor.execute('UPDATE events_event SET data = \'{"message": "forged"}\' WHERE stream_id = %s', [a.stream_id])


def test_verify_log_names_a_tampered_row(committed):
    name = f"tamper-{uuid.uuid4().hex[:8]}"
    a = room_join(user=UserFactory(), name=name)
    for text in ("one", "two", "three"):
        message_post(access=a, text=text, client_id=None)
    original = Event.objects.get(stream_id=a.stream_id, seq=2).data
    set_data = "UPDATE events_event SET data = %s::jsonb WHERE stream_id = %s AND seq = 2"
    with connection.cursor() as cursor:  # autocommit: each statement is its own committed transaction
        cursor.execute("ALTER TABLE events_event DISABLE TRIGGER events_event_no_update_delete")
        try:
            cursor.execute(set_data, ['{"message": "tampered"}', a.stream_id])
        finally:
            cursor.execute("ALTER TABLE events_event ENABLE TRIGGER events_event_no_update_delete")
    try:
        code, out, _ = verify_log("--room", name)
        assert code == 1
        assert f"BROKEN room:{name} seq 2: content hash" in out
        assert "expected" in out and "found" in out
        assert verify_log()[0] == 1
    finally:
        # Put the row back so the rest of the session's log verifies again.
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE events_event DISABLE TRIGGER events_event_no_update_delete")
            try:
                cursor.execute(set_data, [__import__("json").dumps(original), a.stream_id])
            finally:
                cursor.execute("ALTER TABLE events_event ENABLE TRIGGER events_event_no_update_delete")
    assert verify_log("--room", name)[0] == 0


def test_a_rewritten_hash_breaks_the_next_link(committed):
    name = f"rehash-{uuid.uuid4().hex[:8]}"
    a = room_join(user=UserFactory(), name=name)
    for text in ("one", "two", "three"):
        message_post(access=a, text=text, client_id=None)
    stream = Stream.objects.get(pk=a.stream_id)
    # A forger who also recomputes the content hash still breaks the chain.
    sql = (
        "UPDATE events_event SET data = %s::jsonb, content_hash = sha256(convert_to(%s::jsonb::text, 'UTF8'))"
        " WHERE stream_id = %s AND seq = 2"
    )
    original = Event.objects.get(stream_id=a.stream_id, seq=2).data
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE events_event DISABLE TRIGGER events_event_no_update_delete")
        try:
            cursor.execute(sql, ['{"message": "forged"}', '{"message": "forged"}', a.stream_id])
        finally:
            cursor.execute("ALTER TABLE events_event ENABLE TRIGGER events_event_no_update_delete")
    try:
        code, out, _ = verify_log("--room", name)
        assert code == 1 and f"room:{name} seq 2: chain hash" in out
        assert not stream_verify(stream=stream).ok
    finally:
        restore = __import__("json").dumps(original)
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE events_event DISABLE TRIGGER events_event_no_update_delete")
            try:
                cursor.execute(sql, [restore, restore, a.stream_id])
            finally:
                cursor.execute("ALTER TABLE events_event ENABLE TRIGGER events_event_no_update_delete")
    assert verify_log("--room", name)[0] == 0


def test_concurrent_writers_keep_one_unbroken_chain(committed):
    import threading

    stream = stream_create(key=f"test:concurrent:{uuid.uuid4().hex}")

    def writer(k: int) -> None:
        try:
            for i in range(100):
                event_append(stream_id=stream.id, type=MESSAGE_POSTED, data={"message": f"{k}-{i}"}, actor_id=None)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    stream.refresh_from_db()
    verdict = stream_verify(stream=stream)
    assert verdict.ok and verdict.events == 400 == stream.head
    times = list(Event.objects.filter(stream=stream).order_by("seq").values_list("created_at", flat=True))
    assert times == sorted(times)  # created_at is taken under the row lock: it grows with seq
