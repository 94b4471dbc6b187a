"""`actor_erase` and `verify_log` go by the event type registry, not by any app's names:
here with types registered by a test-only app, `probe`."""

import uuid

import pytest
from django.db import IntegrityError, connection, transaction

from events import schemas
from events.models import Event, Stream
from events.schemas import EventType, SchemaError
from events.services import ERASURE_STREAM, actor_erase, event_append, stream_create
from events.verify import stream_verify
from tests.factories import UserFactory

NOTE_WRITTEN = "probe.note.written"  # personal text
NOTE_PINNED = "probe.note.pinned"  # no personal text
PERSON_ERASED = "probe.person.erased"  # the record of an erasure


def _same(data):
    return data


@pytest.fixture
def probe_types(monkeypatch):
    for event_type in (
        EventType(name=NOTE_WRITTEN, version=1, validate=_same, personal_text=True),
        EventType(name=NOTE_PINNED, version=1, validate=_same),
        EventType(name=PERSON_ERASED, version=1, validate=_same, records_erasure=True),
    ):
        monkeypatch.setitem(schemas._registry, event_type.name, event_type)


def _data(stream):
    return dict(Event.objects.filter(stream=stream).values_list("seq", "data"))


def test_an_erasure_scrubs_the_registered_personal_types_of_that_actor_only(db, probe_types):
    alice, bob = UserFactory(), UserFactory()
    stream = stream_create(key=f"probe:{uuid.uuid4().hex}")
    for type_, data, actor in (
        (NOTE_WRITTEN, {"text": "alice's secret"}, alice),
        (NOTE_PINNED, {"target_seq": 1, "label": "kept"}, alice),
        (NOTE_WRITTEN, {"text": "bob's note", "target_seq": 1}, bob),
        (NOTE_WRITTEN, {"text": "alice again", "target_seq": 1}, alice),
    ):
        event_append(stream_id=stream.pk, type=type_, data=data, actor_id=actor.pk)

    erased = actor_erase(actor_id=alice.pk, erasure_type=PERSON_ERASED)

    assert erased.events_scrubbed == 2
    assert erased.event.type == PERSON_ERASED and erased.event.data == {"user_id": alice.pk}
    assert _data(stream) == {
        1: {"erased": True},
        2: {"target_seq": 1, "label": "kept"},
        3: {"text": "bob's note", "target_seq": 1},
        4: {"erased": True, "target_seq": 1},
    }
    stream.refresh_from_db()
    assert stream_verify(stream=stream).ok
    assert stream_verify(stream=Stream.objects.get(key=ERASURE_STREAM)).ok
    assert actor_erase(actor_id=alice.pk, erasure_type=PERSON_ERASED).events_scrubbed == 0


def test_an_erased_row_of_a_type_without_personal_text_is_a_break(db, probe_types):
    """verify_log accepts the erased form only for the registered personal-text types."""
    alice = UserFactory()
    stream = stream_create(key=f"probe:{uuid.uuid4().hex}")
    event_append(stream_id=stream.pk, type=NOTE_PINNED, data={"label": "kept"}, actor_id=alice.pk)
    actor_erase(actor_id=alice.pk, erasure_type=PERSON_ERASED)
    assert _data(stream) == {1: {"label": "kept"}}
    with connection.cursor() as cursor:
        # The database function scrubs what it is told to; the registry is what verify trusts.
        cursor.execute("SELECT events_erase_texts(%s, %s::text[])", [alice.pk, [NOTE_PINNED]])
    stream.refresh_from_db()
    verdict = stream_verify(stream=stream)
    assert not verdict.ok and verdict.broken is not None and verdict.broken.what == "content hash"


def test_only_a_registered_erasure_type_records_an_erasure(db, probe_types):
    alice = UserFactory()
    with pytest.raises(SchemaError, match="not a registered erasure type"):
        actor_erase(actor_id=alice.pk, erasure_type=NOTE_WRITTEN)
    assert not Stream.objects.filter(key=ERASURE_STREAM, head__gt=0).exists()


def test_the_chat_specific_erase_function_of_migration_0004_is_gone(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regprocedure('events_erase_texts(bigint)')")
        assert cursor.fetchone() == (None,)
        cursor.execute("SELECT to_regprocedure('events_erase_texts(bigint, text[])') IS NOT NULL")
        assert cursor.fetchone() == (True,)


def _scrub_by_hand(event_id: int, *, types: list[str] | None) -> None:
    """The erase function's UPDATE, run by hand in this transaction under the
    erasure flag, with `events.erasure_types` set to `types` (None: not set)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('events.erasure', 'on', true)")
        if types is not None:
            cursor.execute("SELECT set_config('events.erasure_types', %s::text[]::text, true)", [types])
        cursor.execute("UPDATE events_event SET data = events_erased_data(data) WHERE id = %s", [event_id])


def test_the_trigger_lets_a_scrub_through_only_for_the_types_being_erased(db, probe_types):
    """Setting the erasure flag by hand is not enough: the row's type must be among
    the types `events_erase_texts` was given (migration 0008)."""
    alice = UserFactory()
    stream = stream_create(key=f"probe:{uuid.uuid4().hex}")
    written = event_append(stream_id=stream.pk, type=NOTE_WRITTEN, data={"text": "mine"}, actor_id=alice.pk).event
    pinned = event_append(stream_id=stream.pk, type=NOTE_PINNED, data={"label": "kept"}, actor_id=alice.pk).event

    for event_id, types in ((pinned.pk, None), (pinned.pk, []), (pinned.pk, [NOTE_WRITTEN]), (written.pk, None)):
        with pytest.raises(IntegrityError, match="events are immutable"):
            _scrub_by_hand(event_id, types=types)
    assert _data(stream) == {1: {"text": "mine"}, 2: {"label": "kept"}}

    # The erase function clears the types with the flag: nothing is left open after it.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT events_erase_texts(%s, %s::text[])", [alice.pk, [NOTE_WRITTEN]])
        cursor.execute("SELECT current_setting('events.erasure_types', true)")
        assert cursor.fetchone() == ("",)
        with pytest.raises(IntegrityError, match="events are immutable"):
            _scrub_by_hand(pinned.pk, types=None)
    assert _data(stream) == {1: {"erased": True}, 2: {"label": "kept"}}
