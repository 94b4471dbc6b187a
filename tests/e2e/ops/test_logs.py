"""LOG_FORMAT=json from a real daphne, a real Celery worker and a real beat."""

import asyncio
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import websockets

from chat.models import Room
from chat.services import room_join
from tests.support.celery import Worker, worker_env
from tests.support.servers import ROOT, Daphne, server_env
from tests.support.wait import wait_until
from tests.support.ws import ChatClient

pytestmark = pytest.mark.e2e


def json_lines(path: Path) -> list[dict]:
    """Every line of the log, each of which must be one JSON object."""
    lines = path.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # raises on any line that is not JSON
    assert all(isinstance(r, dict) for r in records)
    return records


@pytest.fixture
def json_daphne(db_settings):
    # -v 0: no access log (daphne writes it as text); every line is then a log record.
    daphne = Daphne(env=server_env(db_settings, LOG_FORMAT="json"), args=("-v", "0")).start()
    yield daphne
    daphne.stop()


async def refused(server: Daphne, room: str, cookie: str | None) -> tuple[dict, int | None]:
    client = await ChatClient.connect(server.ws, room, cookie=cookie)
    frame = await client.recv()
    with pytest.raises(websockets.ConnectionClosed):
        await client.recv()
    return frame, client.close_code


def test_daphne_logs_each_refusal_once_as_json_with_its_fields(json_daphne, make_user):
    (owner, owner_cookie), (stranger, stranger_cookie) = make_user(), make_user()
    room = f"private-{uuid.uuid4().hex[:8]}"
    room_join(user=owner, name=room)
    Room.objects.filter(name=room).update(is_private=True)

    frame, code = asyncio.run(refused(json_daphne, room, stranger_cookie))
    assert (frame["code"], code) == ("forbidden", 4403)
    frame, code = asyncio.run(refused(json_daphne, "lobby-anon", None))
    assert (frame["code"], code) == ("unauthenticated", 4401)

    def refusals():
        found = [r for r in json_lines(json_daphne.log) if r.get("message", "").startswith("socket refused")]
        return found if len(found) >= 2 else None

    forbidden, anonymous = wait_until(refusals)
    assert forbidden["code"] == "forbidden" and forbidden["close_code"] == 4403
    assert forbidden["user_id"] == stranger.pk and forbidden["room"] == room
    assert forbidden["level"] == "INFO" and forbidden["logger"] == "chat.ops" and forbidden["time"]
    assert anonymous["code"] == "unauthenticated" and anonymous["close_code"] == 4401
    assert anonymous["user_id"] is None and anonymous["room"] == "lobby-anon"
    assert len({forbidden["conn_id"], anonymous["conn_id"]}) == 2 and forbidden["conn_id"]

    # A normal conversation adds no line per frame at INFO.
    before = len(json_lines(json_daphne.log))

    async def chat():
        client = await ChatClient.connect(json_daphne.ws, room, cookie=owner_cookie)
        await client.history()
        for i in range(20):
            assert (await client.post(f"message {i}"))["type"] == "ack"
        await client.close()

    asyncio.run(chat())
    assert len(json_lines(json_daphne.log)) - before < 5


def test_worker_and_beat_log_json(db_settings, smtp_sink, tmp_path):
    env = worker_env(db_settings, LOG_FORMAT="json")
    # -q: Celery's startup banner is not a log record (README, Logs).
    worker = Worker(env=env, queue=f"json-{uuid.uuid4().hex[:6]}", options=["-q"]).start()
    log = tmp_path / "beat.log"
    with open(log, "ab") as out:
        beat = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "-q", "beat", "-s", str(tmp_path / "schedule")],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        # Beat sends its first tick at once (NOTIFY_POLL_SECONDS is 0.3 s in tests).
        sent = wait_until(lambda: [r for r in json_lines(log) if "Sending due task" in r["message"]], timeout=30)
        assert sent[0]["logger"] == "celery.beat" and sent[0]["level"] == "INFO"
        # Read before stopping: Celery prints its shutdown notice to stdout, outside logging.
        assert any(r["message"].endswith(" ready.") for r in json_lines(worker.log))
    finally:
        beat.terminate()
        beat.wait(10)
        worker.stop()
