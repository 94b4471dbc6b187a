"""The append service and the database's own guarantees, on a real PostgreSQL."""

import copy
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import connection, connections, transaction
from django.db.utils import DatabaseError

from chat.events import MESSAGE_POSTED
from events.models import Event, Stream
from events.schemas import SchemaError
from events.services import IdempotencyConflict, StreamClosed, event_append, stream_create
from tests.factories import UserFactory


def _append(stream, user, text, client_id=None):
    return event_append(
        stream_id=stream.id, type=MESSAGE_POSTED, data={"message": text}, actor_id=user.id, client_id=client_id
    )


@pytest.fixture
def stream(db):
    return stream_create(key="test:stream")


def test_seq_starts_at_one_and_grows_by_one(stream):
    user = UserFactory()
    seqs = [_append(stream, user, f"m{i}").event.seq for i in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    stream.refresh_from_db()
    assert stream.head == 5


def test_streams_have_independent_seqs(db):
    user = UserFactory()
    a, b = stream_create(key="a"), stream_create(key="b")
    _append(a, user, "1")
    _append(a, user, "2")
    assert _append(b, user, "1").event.seq == 1


def test_same_client_id_and_text_returns_original(stream):
    user = UserFactory()
    first = _append(stream, user, "hello", "k1")
    again = _append(stream, user, "hello", "k1")
    assert again.duplicate and not first.duplicate
    assert again.event.seq == first.event.seq and again.event.uuid == first.event.uuid
    assert Event.objects.filter(stream=stream).count() == 1


def test_same_client_id_other_text_is_a_conflict(stream):
    user = UserFactory()
    _append(stream, user, "hello", "k1")
    with pytest.raises(IdempotencyConflict):
        _append(stream, user, "other", "k1")
    assert Event.objects.filter(stream=stream).count() == 1


def test_client_id_is_scoped_to_the_actor(stream):
    alice, bob = UserFactory(), UserFactory()
    a = _append(stream, alice, "hello", "k1")
    b = _append(stream, bob, "hello", "k1")
    assert not b.duplicate and b.event.seq == a.event.seq + 1


def test_invalid_data_is_refused_and_nothing_written(stream):
    user = UserFactory()
    for bad in ["", "   ", "a\x00b", "\ud800", 42, None, "x" * 4001]:
        with pytest.raises(SchemaError):
            _append(stream, user, bad)
    stream.refresh_from_db()
    assert stream.head == 0 and not Event.objects.filter(stream=stream).exists()


def test_failed_append_does_not_consume_a_seq(stream):
    """A refused insert rolls the head bump back with it: seq stays gapless."""
    user = UserFactory()
    _append(stream, user, "a", "k1")
    with pytest.raises(IdempotencyConflict):
        _append(stream, user, "b", "k1")
    assert _append(stream, user, "c").event.seq == 2


@pytest.mark.parametrize(
    "statement",
    [
        'UPDATE events_event SET data = \'{"message": "forged"}\'',
        "DELETE FROM events_event",
    ],
)
def test_database_refuses_changes_to_events_in_sql(stream, statement):
    user = UserFactory()
    _append(stream, user, "original")
    with pytest.raises(DatabaseError, match="events are immutable"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
    assert Event.objects.get(stream=stream).data == {"message": "original"}


def test_database_refuses_truncate(committed):
    stream = Stream.objects.create(key=f"test:truncate:{UserFactory().username}")
    _append(stream, UserFactory(), "original")
    with pytest.raises(DatabaseError, match="events are immutable"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("TRUNCATE events_event CASCADE")
    assert Event.objects.filter(stream=stream).count() == 1


def test_database_refuses_changes_to_events_through_the_orm(stream):
    user = UserFactory()
    event = _append(stream, user, "original").event
    event = Event.objects.get(pk=event.pk)
    event.data = {"message": "forged"}
    for attempt in (
        event.save,
        event.delete,
        lambda: Event.objects.filter(pk=event.pk).update(seq=99),
        lambda: Event.objects.filter(pk=event.pk).delete(),
    ):
        with pytest.raises(DatabaseError, match="events are immutable"), transaction.atomic():
            attempt()
    assert Event.objects.get(pk=event.pk).data == {"message": "original"}


def test_concurrent_appends_are_gapless(committed):
    """Eight threads, each with its own connection, append into one stream."""
    stream = Stream.objects.create(key=f"test:concurrent:{UserFactory().username}")
    user = UserFactory()
    errors = []

    def writer(n):
        try:
            for i in range(25):
                _append(stream, user, f"{n}-{i}")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    seqs = list(Event.objects.filter(stream=stream).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, 201))


def test_concurrent_same_client_id_makes_one_event(committed):
    stream = Stream.objects.create(key=f"test:idem:{UserFactory().username}")
    user = UserFactory()
    results, barrier = [], threading.Barrier(3)

    def writer():
        barrier.wait()
        try:
            results.append(_append(stream, user, "once", "same-key"))
        finally:
            connection.close()

    threads = [threading.Thread(target=writer) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3
    assert {r.event.seq for r in results} == {1}
    assert sorted(r.duplicate for r in results) == [False, True, True]
    assert Event.objects.filter(stream=stream).count() == 1


def test_a_closed_stream_refuses_new_events_but_takes_amendments_and_resends(stream):
    user = UserFactory()
    first = _append(stream, user, "before", "k1")
    event_append(stream_id=stream.id, type=MESSAGE_POSTED, data={"message": "last"}, actor_id=None, close=True)
    with pytest.raises(StreamClosed):
        _append(stream, user, "after")
    # A resend of a message the stream took before it closed is still acked as such.
    assert _append(stream, user, "before", "k1").event.seq == first.event.seq
    amended = event_append(
        stream_id=stream.id, type=MESSAGE_POSTED, data={"message": "fix"}, actor_id=None, amendment=True
    )
    assert amended.event.seq == 3
    stream.refresh_from_db()
    assert stream.closed and stream.head == 3
    assert list(Event.objects.filter(stream=stream).values_list("seq", flat=True).order_by("seq")) == [1, 2, 3]


def test_a_writer_waiting_for_the_stream_lock_sees_it_closed(committed):
    """The close commits while another append waits on the stream's row lock: that
    append is refused, never slipped in after the closing event."""
    stream = Stream.objects.create(key=f"test:close-race:{UserFactory().username}")
    user = UserFactory()
    outcome: list[object] = []

    def writer():
        try:
            outcome.append(_append(stream, user, "late"))
        except Exception as exc:
            outcome.append(exc)
        finally:
            connection.close()

    with transaction.atomic():
        event_append(stream_id=stream.id, type=MESSAGE_POSTED, data={"message": "end"}, actor_id=None, close=True)
        thread = threading.Thread(target=writer)
        thread.start()
        with connection.cursor() as cursor:
            for _ in range(200):  # until the writer is blocked on our row lock
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
                if cursor.fetchone()[0]:
                    break
                threading.Event().wait(0.01)
            else:
                pytest.fail("the second append never waited for the stream lock")
    thread.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], StreamClosed)
    assert list(Event.objects.filter(stream=stream).values_list("seq", flat=True)) == [1]


def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_the_append_statement_is_prepared_once_and_nothing_else(stream, settings):
    settings.EVENTS_PREPARED_STATEMENTS = True
    user = UserFactory()
    for i in range(3):
        _append(stream, user, f"m{i}")
    list(Event.objects.filter(stream=stream))  # Django's own queries are never prepared
    statements = _prepared_statements()
    assert len(statements) == 1 and "INSERT INTO events_event" in statements[0]


@contextmanager
def _own_connection() -> Iterator[None]:
    """The default alias on a new, unpooled connection of this test's own, which
    has prepared nothing: a pooled one may carry statements of earlier tests."""
    original = connections["default"]
    settings_dict = copy.deepcopy(original.settings_dict)
    settings_dict["OPTIONS"].pop("pool", None)
    own = original.__class__(settings_dict, alias="default")
    connections["default"] = own
    try:
        yield
    finally:
        own.close()
        connections["default"] = original


def test_prepared_statements_can_be_turned_off(committed, settings):
    settings.EVENTS_PREPARED_STATEMENTS = False
    with _own_connection():
        stream = Stream.objects.create(key=f"test:unprepared:{UserFactory().username}")
        assert _prepared_statements() == []  # a fresh connection: nothing prepared before
        assert _append(stream, UserFactory(), "unprepared").event.seq == 1
        assert _append(stream, UserFactory(), "again").event.seq == 2
        assert _prepared_statements() == []


def test_prepared_statements_on_a_fresh_connection(committed, settings):
    """The counterpart on an identical connection: with the setting on, the same appends prepare it."""
    settings.EVENTS_PREPARED_STATEMENTS = True
    with _own_connection():
        stream = Stream.objects.create(key=f"test:prepared:{UserFactory().username}")
        assert _prepared_statements() == []
        _append(stream, UserFactory(), "prepared")
        statements = _prepared_statements()
        assert len(statements) == 1 and "INSERT INTO events_event" in statements[0]
