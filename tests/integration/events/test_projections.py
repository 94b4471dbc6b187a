"""The projection runner on a real PostgreSQL: late commits, concurrent runners, rebuilds."""

import threading
import time
import uuid

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test import override_settings

from chat.models import MentionNotice
from chat.services import message_post, room_join
from events.models import Event, ProjectionCheckpoint
from events.projections import projection_run, projection_step
from tests.factories import UserFactory


class Recorder:
    """A projection that remembers every event it was given (in this process)."""

    name = "test.recorder"
    applied: list[int] = []

    def apply(self, events):
        type(self).applied.extend(e.id for e in events)


PROJECTIONS = {
    "mentions": "chat.mentions.MentionsProjection",
    "test.recorder": "tests.integration.events.test_projections.Recorder",
}


@pytest.fixture
def recorder(committed):
    """A fresh recorder name per test, starting from the current end of the log."""
    name = f"test.recorder.{uuid.uuid4().hex[:6]}"
    with override_settings(PROJECTIONS={**PROJECTIONS, name: PROJECTIONS["test.recorder"]}):
        projection_run(name=name)  # catch up with what other tests wrote
        Recorder.applied.clear()
        yield name


def _run_until(name: str, done, timeout: float = 60.0) -> None:
    """Run the projection until `done()`. The horizon is the oldest running transaction of
    the whole PostgreSQL cluster: another test session's open transaction delays us a little."""
    end = time.monotonic() + timeout
    while True:
        projection_run(name=name)
        if done():
            return
        if time.monotonic() > end:
            raise AssertionError(f"projection {name} did not get there in {timeout} s")
        time.sleep(0.05)


def _room(*users):
    name = f"proj-{uuid.uuid4().hex[:8]}"
    return [room_join(user=u, name=name) for u in users]


def test_late_committing_transaction_is_not_skipped(recorder):
    alice, bob = UserFactory(), UserFactory()
    a_access, _ = _room(alice, bob)
    b_access, _ = _room(alice, bob)  # another stream: the early writer holds its room's head lock
    appended, release, done = threading.Event(), threading.Event(), threading.Event()
    early: dict = {}

    def slow_writer():
        # Appends first (smaller id, smaller txid) and commits last.
        try:
            with transaction.atomic():
                early["posted"] = message_post(access=a_access, text=f"@{bob.username} early", client_id=None)
                appended.set()
                release.wait(10)
        finally:
            connection.close()
            done.set()

    thread = threading.Thread(target=slow_writer)
    thread.start()
    assert appended.wait(10)
    late = message_post(access=b_access, text=f"@{bob.username} late", client_id=None)

    late_id = _id_of(late.id)
    with override_settings(PROJECTIONS={**PROJECTIONS, recorder: PROJECTIONS["test.recorder"]}):
        projection_run(name=recorder)
        # The later commit is held back while the earlier transaction is open: a reader
        # of "id > checkpoint" would have applied it and passed the early id for good.
        assert late_id not in Recorder.applied
        checkpoint = ProjectionCheckpoint.objects.get(name=recorder)
        assert (checkpoint.last_txid, checkpoint.last_id) < (_txid_of(late.id), late_id)

        release.set()
        thread.join(10)
        assert done.is_set()
        early_id = _id_of(early["posted"].id)
        _run_until(recorder, lambda: early_id in Recorder.applied and late_id in Recorder.applied)
        projection_run(name=recorder)  # nothing left of these: applies neither again

    assert early_id < late_id
    assert Recorder.applied.count(early_id) == 1 and Recorder.applied.count(late_id) == 1

    # The real mentions projection (run here and by the session's worker alike) sees both, once.
    notices = MentionNotice.objects.filter(user=bob, room_id__in=[a_access.room_id, b_access.room_id])
    _run_until("mentions", lambda: notices.count() >= 2)
    assert sorted(notices.values_list("event_id", flat=True)) == [early_id, late_id]


def _id_of(event_uuid: str) -> int:
    return Event.objects.values_list("id", flat=True).get(uuid=event_uuid)


def _txid_of(event_uuid: str) -> int:
    return Event.objects.values_list("txid", flat=True).get(uuid=event_uuid)


def test_two_runners_never_apply_the_same_event(recorder):
    alice = UserFactory()
    (access,) = _room(alice)
    posted = [message_post(access=access, text=f"m{i}", client_id=None) for i in range(60)]
    ids = {_id_of(p.id) for p in posted}
    errors: list[BaseException] = []

    def runner():
        try:
            with override_settings(PROJECTIONS={**PROJECTIONS, recorder: PROJECTIONS["test.recorder"]}):
                while projection_step(name=recorder, batch_size=7):
                    pass
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=runner) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    with override_settings(PROJECTIONS={**PROJECTIONS, recorder: PROJECTIONS["test.recorder"]}):
        _run_until(recorder, lambda: ids <= set(Recorder.applied))  # if the horizon held some back
    mine = [i for i in Recorder.applied if i in ids]
    assert sorted(mine) == sorted(ids)  # every event once, none twice


def test_rebuild_replays_to_the_same_output(committed):
    alice, bob = UserFactory(), UserFactory()
    access, _ = _room(alice, bob)
    message_post(access=access, text=f"hi @{bob.username}", client_id=None)
    _run_until("mentions", lambda: MentionNotice.objects.filter(user=bob).exists())
    before = list(MentionNotice.objects.filter(user=bob).values_list("event_id", "status"))
    assert len(before) == 1

    call_command("rebuild_projection", "mentions")

    after = list(MentionNotice.objects.filter(user=bob).values_list("event_id", "status"))
    assert after == before
    checkpoint = ProjectionCheckpoint.objects.get(name="mentions")
    assert checkpoint.last_id >= before[0][0]
