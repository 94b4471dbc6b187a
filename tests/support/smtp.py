"""A real SMTP server for tests (aiosmtpd in a thread of the test process).

It keeps every accepted message, and can be told to answer the next deliveries
to an address with an error code (451: try again later; 550: rejected), so the
outbox's retry and failure handling meet a real SMTP conversation.
"""

import email
import email.policy
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller

from tests.support.servers import free_port


@dataclass(frozen=True)
class Received:
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def text(self) -> str:
        part = self.message.get_body(("plain",))
        return part.get_content() if part is not None else ""

    @property
    def html(self) -> str:
        part = self.message.get_body(("html",))
        return part.get_content() if part is not None else ""


class SinkHandler:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.refusals: list[tuple[str, int]] = []
        self._plan: dict[str, list[int]] = {}
        self._lock = threading.Lock()

    def fail_next(self, address: str, *codes: int) -> None:
        """Answer the next deliveries to `address` with these SMTP codes, in order."""
        with self._lock:
            self._plan.setdefault(address.lower(), []).extend(codes)

    async def handle_DATA(self, server, session, envelope) -> str:
        with self._lock:
            for rcpt in envelope.rcpt_tos:
                plan = self._plan.get(rcpt.lower())
                if plan:
                    code = plan.pop(0)
                    self.refusals.append((rcpt, code))
                    return f"{code} {'Try again later' if code < 500 else 'Mailbox unavailable'}"
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            self.received.append(Received(rcpt_tos=list(envelope.rcpt_tos), message=message))
        return "250 Message accepted"

    def to(self, address: str, kind: str | None = None) -> list[Received]:
        """Messages to `address` (of one kind of email: the X-Chat-Email header)."""
        with self._lock:
            return [
                r
                for r in self.received
                if address.lower() in (a.lower() for a in r.rcpt_tos)
                and (kind is None or r.message["X-Chat-Email"] == kind)
            ]

    def wait_for(self, address: str, count: int = 1, timeout: float = 30.0, kind: str | None = None) -> list[Received]:
        """The messages to `address` once there are at least `count` (AssertionError on timeout)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            found = self.to(address, kind)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"expected {count} message(s) to {address}, got {len(self.to(address, kind))}")


class SmtpSink:
    def __init__(self) -> None:
        self.handler = SinkHandler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> "SmtpSink":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


_sink: SmtpSink | None = None


@pytest.fixture(scope="session")
def smtp_sink():
    """One SMTP sink per test session (shared by every directory that imports it)."""
    global _sink
    if _sink is None:
        _sink = SmtpSink().start()
    yield _sink.handler
    if _sink is not None:
        _sink.stop()
        _sink = None


def smtp_url() -> str:
    assert _sink is not None, "the smtp_sink fixture is not running"
    return _sink.url
