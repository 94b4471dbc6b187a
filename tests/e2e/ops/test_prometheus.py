"""A real Prometheus (Debian's package) scrapes a real daphne and a real Celery
worker, loads deploy/prometheus-rules.yml, and sees the counters move after a
chat session."""

import asyncio
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from redis import Redis

from events.tasks import projection_run_task
from notifications.outbox import OutboxDraft, outbox_enqueue
from tests.support.celery import Worker, send_task, worker_env
from tests.support.servers import ROOT, free_port, wait_port
from tests.support.ws import ChatClient

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TOKEN = f"metrics-{uuid.uuid4().hex}"
RULES = ROOT / "deploy" / "prometheus-rules.yml"


def binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: install Debian's prometheus package (`make test` does)")
    return found


class Prometheus:
    def __init__(self, tmp: Path, targets: dict[str, int]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        jobs = "".join(
            f"""
  - job_name: {job}
    authorization: {{credentials: "{TOKEN}"}}
    static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
"""
            for job, port in targets.items()
        )
        config = tmp / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"rule_files: [{json.dumps(str(RULES))}]\n"
            f"scrape_configs:{jobs}"
        )
        self.log = tmp / "prometheus.log"
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [
                    binary("prometheus"),
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_port(self.port, self.proc)
        # It listens before its storage is open; the API answers 503 until /-/ready says 200.
        end = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=5) as r:
                    if r.status == 200:
                        break
            except urllib.error.HTTPError:
                if time.monotonic() > end:
                    raise
            time.sleep(0.1)

    def api(self, path: str, **params: str) -> dict:
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}", timeout=5) as r:
            body = json.loads(r.read())
        assert body["status"] == "success", body
        return body["data"]

    def value(self, expr: str) -> float | None:
        result = self.api("query", query=expr)["result"]
        return float(result[0]["value"][1]) if result else None

    def wait(self, expr: str, check, timeout: float = 30.0) -> float:
        """Poll the query until `check(value)` holds (each scrape is 1 s apart)."""
        end = time.monotonic() + timeout
        while True:
            value = self.value(expr)
            if value is not None and check(value):
                return value
            if time.monotonic() > end:
                raise AssertionError(f"{expr} = {value}; see {self.log}")
            time.sleep(0.2)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)


def test_prometheus_scrapes_web_and_worker_and_loads_the_alert_rules(
    start_server,
    make_user,
    db_settings,
    smtp_sink,
    tmp_path,
):
    check = subprocess.run([binary("promtool"), "check", "rules", str(RULES)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr

    # As on two hosts: each with its own multiprocess directory and exporter.
    web = start_server(
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "web-metrics"),
        METRICS_TOKEN=TOKEN,
        CHAT_RATE_LIMIT="11/60s",
        # Loses the broadcast of seq 7, so the gap fills have something to do.
        CHAT_CHANNEL_LAYER="tests.support.lossy_layer.LossyLayer",
        LOSSY_DROP_SEQS="7",
    )
    worker_port = free_port()
    worker = Worker(
        env=worker_env(
            db_settings,
            PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "worker-metrics"),
            METRICS_TOKEN=TOKEN,
            METRICS_WORKER_PORT=str(worker_port),
        ),
        beat=True,
    ).start()
    prometheus = Prometheus(tmp_path, {"chat-web": web.port, "chat-worker": worker_port})
    try:
        prometheus.wait('count(up{job=~"chat-web|chat-worker"} == 1)', lambda v: v == 2)
        # Both exporters want the token.
        for port in (web.port, worker_port):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
            assert refused.value.code == 401
        (alice, a_cookie), (_, b_cookie) = make_user(), make_user()
        # User ids restart with each test database; a rate window of an earlier run may still count.
        redis = Redis.from_url(settings.REDIS_URL)
        redis.delete(*redis.keys(f"chat:rate:{alice.pk}:*"), "chat:rate:none")
        room = f"metrics-{uuid.uuid4().hex[:8]}"

        async def session():
            a = await ChatClient.connect(web.ws, room, cookie=a_cookie)
            b = await ChatClient.connect(web.ws, room, cookie=b_cookie)
            await a.history()
            await b.history()
            acks = [await a.post(f"message {i}") for i in range(12)]
            assert [x["type"] for x in acks] == ["ack"] * 11 + ["error"]
            assert acks[-1]["code"] == "rate_limited"
            assert [e["seq"] for e in await b.events(11)] == list(range(1, 12))
            # Both sockets are open now: the gauge says so.
            prometheus.wait('chat_sockets_open{job="chat-web"}', lambda v: v == 2)
            await a.close()
            await b.close()
            anonymous = await ChatClient.connect(web.ws, room)
            assert (await anonymous.recv())["code"] == "unauthenticated"

        asyncio.run(session())
        with urllib.request.urlopen(f"{web.http}/accounts/login/", timeout=10) as page:
            assert page.status == 200
        outbox_enqueue(
            drafts=[
                OutboxDraft(
                    recipient_id=alice.pk,
                    to_address=alice.email,
                    kind="test",
                    key=uuid.uuid4().hex,
                    subject="metrics",
                    text_body="text",
                    html_body="<p>html</p>",
                    language="en",
                )
            ]
        )
        send_task(projection_run_task, "no-such-projection")  # raises LookupError in the worker

        web_job = '{job="chat-web"}'
        prometheus.wait(f"chat_sockets_open{web_job}", lambda v: v == 0)
        prometheus.wait('chat_handshakes_total{job="chat-web",outcome="accepted"}', lambda v: v == 2)
        prometheus.wait('chat_handshakes_total{job="chat-web",outcome="unauthenticated"}', lambda v: v == 1)
        prometheus.wait('chat_events_appended_total{job="chat-web",type="chat.message.posted"}', lambda v: v == 11)
        prometheus.wait(f"chat_append_seconds_count{web_job}", lambda v: v == 11)
        prometheus.wait(f"chat_replay_seconds_count{web_job}", lambda v: v == 2)
        prometheus.wait(f"chat_rate_limited_total{web_job}", lambda v: v == 1)
        prometheus.wait('chat_frames_refused_total{job="chat-web",code="rate_limited"}', lambda v: v == 1)
        prometheus.wait(f"chat_frames_delivered_total{web_job}", lambda v: v >= 20)
        prometheus.wait(f"sum(chat_gap_fills_total{web_job})", lambda v: v >= 1)
        prometheus.wait('chat_http_requests_total{job="chat-web",method="GET",status="200"}', lambda v: v == 1)
        prometheus.wait(f"chat_http_request_seconds_count{web_job}", lambda v: v == 1)
        prometheus.wait(f"chat_ready{web_job}", lambda v: v == 1)
        prometheus.wait('chat_projection_lag_events{job="chat-web",projection="mentions"}', lambda v: v >= 0)
        worker_job = '{job="chat-worker"}'
        prometheus.wait(f"chat_outbox_sent_total{worker_job}", lambda v: v >= 1)
        prometheus.wait(f"chat_email_send_seconds_count{worker_job}", lambda v: v >= 1)
        prometheus.wait(
            'chat_celery_task_failures_total{job="chat-worker",task="events.projection_run"}', lambda v: v == 1
        )
        prometheus.wait(f"chat_outbox_pending{worker_job}", lambda v: v >= 0)

        # Every alert rule was loaded and evaluates without error.
        def rules() -> list[dict]:
            return [rule for group in prometheus.api("rules")["groups"] for rule in group["rules"]]

        end = time.monotonic() + 20
        while any(rule["health"] != "ok" for rule in rules()) and time.monotonic() < end:
            time.sleep(0.2)
        loaded = rules()
        assert {rule["name"] for rule in loaded} >= {
            "ChatNotReady",
            "ChatProjectionLagging",
            "ChatOutboxFailed",
            "ChatBroadcastFailures",
            "ChatCeleryTaskFailures",
        }
        assert all(rule["health"] == "ok" for rule in loaded), [r for r in loaded if r["health"] != "ok"]
        # The task that raised fires its alert (its counter was there at 0 before).
        prometheus.wait('ALERTS{alertname="ChatCeleryTaskFailures",alertstate="firing"}', lambda v: v == 1)
    finally:
        prometheus.stop()
        worker.stop()
