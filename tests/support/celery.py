"""Real Celery workers for tests: `celery -A config worker` subprocesses on the test
database, the test Redis and the SMTP sink.

Each test session uses its own queue (CELERY_QUEUE), so tasks left in Redis by
an earlier run never reach this session's database. The worker of a test module
runs beat inside (-B) with short intervals, as `make run` runs beat beside it.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.servers import ROOT, server_env
from tests.support.smtp import smtp_url

SESSION_QUEUE = f"test-{uuid.uuid4().hex[:8]}"

# Fast knobs for tests: beat every 0.3 s, mentions emailed after 1 s, retries after 0.3 s.
WORKER_SETTINGS = {
    "NOTIFY_POLL_SECONDS": "0.3",
    "NOTIFY_MENTION_DELAY": "1",
    "OUTBOX_RETRY_SECONDS": "0.3",
    "OUTBOX_MAX_ATTEMPTS": "4",
    "CELERY_QUEUE": SESSION_QUEUE,
    "LOG_LEVEL": "INFO",
}


@dataclass
class Worker:
    env: dict[str, str]
    queue: str = SESSION_QUEUE
    beat: bool = False
    name: str = field(default_factory=lambda: f"w{uuid.uuid4().hex[:6]}")
    proc: subprocess.Popen | None = None
    log: Path | None = None
    # Celery's global options, before the subcommand (e.g. ["-q"]: no banner).
    options: list[str] = field(default_factory=list)

    def start(self, timeout: float = 60.0) -> "Worker":
        log_dir = Path(os.environ.get("TEST_LOG_DIR", "/tmp"))
        self.log = log_dir / f"celery-{self.name}.log"
        cmd = [sys.executable, "-m", "celery", "-A", "config", *self.options, "worker", "-l", "info"]
        cmd += ["-n", f"{self.name}@%h"]
        cmd += ["--concurrency", "2", "-Q", self.queue, "--without-gossip", "--without-mingle"]
        if self.beat:
            cmd += ["-B", "-s", str(log_dir / f"celerybeat-{self.name}")]
        offset = self.log.stat().st_size if self.log.exists() else 0
        out = open(self.log, "ab")
        # Its own process group: kill() takes the pool children and beat with it.
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery worker exited with {self.proc.returncode}; see {self.log}")
            if b" ready." in self.log.read_bytes()[offset:]:
                return self
            time.sleep(0.1)
        raise RuntimeError(f"celery worker not ready; see {self.log}")

    def kill(self) -> None:
        """SIGKILL the worker and its children: no shutdown code runs, nothing is acknowledged."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


def worker_env(db: dict, **overrides: str) -> dict[str, str]:
    env = server_env(db, EMAIL_URL=smtp_url(), **WORKER_SETTINGS)
    # Not tests/support: this very module is named celery.py and would shadow the package.
    env["PYTHONPATH"] = str(ROOT)
    env.update(overrides)
    return env


def send_task(task, *args: object) -> None:
    """Enqueue a task on this session's queue (as beat or a service would)."""
    task.apply_async(args=args, queue=SESSION_QUEUE)


@pytest.fixture(scope="module")
def celery_worker(db_settings, smtp_sink):
    """A worker with beat, consuming the session queue, for the tests of one module.

    Per module, not per session: its beat polls every 0.3 s, which the other tests
    of the suite (browsers, servers, on 2 shared cores) should not pay for.
    """
    worker = Worker(env=worker_env(db_settings), beat=True).start()
    yield worker
    worker.stop()


@pytest.fixture
def start_worker(db_settings, smtp_sink):
    """Start extra workers (own queue, no beat); all stopped after the test."""
    started: list[Worker] = []

    def start(queue: str, **overrides: str) -> Worker:
        worker = Worker(env=worker_env(db_settings, **overrides), queue=queue).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
