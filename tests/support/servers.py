"""Real servers for tests: daphne processes on free ports, against the test database."""

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from scripts.support.ports import free_port, wait_port

ROOT = Path(__file__).resolve().parents[2]


def database_url(settings_db: dict) -> str:
    return (
        f"postgres://{settings_db['USER']}:{settings_db['PASSWORD']}@{settings_db['HOST']}:{settings_db['PORT']}"
        f"/{settings_db['NAME']}"
    )


@dataclass
class Daphne:
    """A daphne process serving config.asgi:application; restartable on the same port."""

    env: dict[str, str]
    port: int = field(default_factory=free_port)
    # More daphne options, e.g. those of deploy/systemd/chat-daphne@.service.
    args: tuple[str, ...] = ()
    proc: subprocess.Popen | None = None
    log: Path | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> "Daphne":
        if self.log is None:
            # Its own file (a restart appends to it): a port reused by a later test or
            # session never mixes another server's lines into this one's.
            self.log = Path(os.environ.get("TEST_LOG_DIR", "/tmp")) / f"daphne-{self.port}-{uuid.uuid4().hex[:8]}.log"
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-e",
                f"tcp:port={self.port}:interface=127.0.0.1:backlog=4096",
                "--websocket_timeout",
                "-1",
                "--websocket_connect_timeout",
                "30",
                "config.asgi:application",
                *self.args,
            ],
            cwd=ROOT,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        wait_port(self.port, self.proc)
        return self

    def log_size(self) -> int:
        return self.log.stat().st_size if self.log else 0

    def log_since(self, offset: int) -> str:
        """What this process logged after `offset` (from log_size())."""
        assert self.log is not None
        with open(self.log, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@contextmanager
def serving(env: dict[str, str]) -> Iterator[Daphne]:
    """A started daphne, stopped on exit."""
    daphne = Daphne(env=env).start()
    try:
        yield daphne
    finally:
        daphne.stop()


def server_env(db: dict, **overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url(db),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "PYTHONPATH": str(ROOT),
            "CHAT_RATE_LIMIT": "100000/1s",
        }
    )
    env.update(overrides)
    return env
