"""The email outbox: projections queue rendered emails, a Celery task sends them.

Queueing is idempotent: rows are keyed UNIQUE(recipient, kind, key) and inserted
with ON CONFLICT DO NOTHING, so a replayed projection, a digest run twice or a
task killed half-way queues nothing twice. Sending is at-least-once: a sender
claims one due row at a time with SELECT … FOR UPDATE SKIP LOCKED (two senders
never take the same row), sends it, and records the outcome in the same
transaction. A sender killed between the SMTP transfer and the commit sends
that one email again on the next run; the deterministic Message-ID lets
receiving systems drop the copy.

Temporary failures (SMTP 4xx, connection refused or lost, timeouts) are retried
with exponential backoff; permanent ones (5xx, an invalid address) and
OUTBOX_MAX_ATTEMPTS exhausted mark the row failed.

Each row records the users whose words it quotes, so an erasure cancels the
pending email of and about a person by id (`outbox_cancel`), never by text.
"""

import json
import logging
import random
import smtplib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, mailers
from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from config import metrics

from .models import OutboxEmail

logger = logging.getLogger(__name__)

_COLUMNS = (
    "recipient_id, to_address, kind, key, subject, text_body, html_body, headers, language, quoted_user_ids, "
    "status, attempts, next_attempt_at, last_error, created_at"
)
_ROW = "(%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s::bigint[], 'pending', 0, %s, '', %s)"


@dataclass(frozen=True)
class OutboxDraft:
    """A rendered email ready to queue."""

    recipient_id: int
    to_address: str
    kind: str
    key: str
    subject: str
    text_body: str
    html_body: str
    language: str
    headers: dict[str, str] = field(default_factory=dict)
    # The users whose words the email quotes (OutboxEmail.quoted_user_ids).
    quoted_user_ids: frozenset[int] = frozenset()


@dataclass
class SendReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0


def outbox_enqueue(*, drafts: Sequence[OutboxDraft]) -> int:
    """Queue emails, skipping any whose (recipient, kind, key) exists; return how many were new."""
    if not drafts:
        return 0
    now = timezone.now()
    params: list[Any] = []
    for d in drafts:
        params += [d.recipient_id, d.to_address, d.kind, d.key, d.subject[:300], d.text_body, d.html_body]
        params += [json.dumps(d.headers), d.language, sorted(d.quoted_user_ids), now, now]
    sql = (
        f"INSERT INTO {OutboxEmail._meta.db_table} ({_COLUMNS}) VALUES {', '.join([_ROW] * len(drafts))} "
        "ON CONFLICT (recipient_id, kind, key) DO NOTHING RETURNING id"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return len(cursor.fetchall())


def outbox_cancel(*, user_id: int) -> int:
    """Mark failed ("erased") every pending email to the user or quoting the user's
    words; return how many. By ids only: a user named "al" cancels nothing of "alice"."""
    pending = OutboxEmail.objects.filter(status=OutboxEmail.Status.PENDING)
    quoting = Q(recipient_id=user_id) | Q(quoted_user_ids__contains=[user_id])
    return pending.filter(quoting).update(status=OutboxEmail.Status.FAILED, last_error="erased")


def outbox_message_id(row: OutboxEmail) -> str:
    """The same for every attempt at one row, so receivers can drop a resent copy. It names
    the row's creation time as well as its id: a database restored from a backup hands out
    the ids of rows created after the backup again, for other emails."""
    domain = urlsplit(settings.SITE_URL).hostname or "localhost"
    created = int(row.created_at.timestamp() * 1_000_000)
    return f"<outbox.{row.pk}.{created}.{row.kind}@{domain}>"


def _message(row: OutboxEmail) -> EmailMultiAlternatives:
    headers = {
        "Message-ID": outbox_message_id(row),
        "Content-Language": row.language,
        "X-Chat-Email": row.kind,  # lets mail rules (and tests) tell the kinds apart
    }
    headers.update(row.headers)
    message = EmailMultiAlternatives(row.subject, row.text_body, settings.DEFAULT_FROM_EMAIL, [row.to_address])
    message.extra_headers = headers
    message.attach_alternative(row.html_body, "text/html")
    return message


def _is_permanent(exc: Exception) -> bool:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return bool(codes) and all(500 <= code < 600 for code in codes)
    if isinstance(exc, smtplib.SMTPResponseException):
        return 500 <= exc.smtp_code < 600
    # Disconnects, refused connections, timeouts: the server may be back later.
    # A ValueError is an address Django refuses to send to: never going to work.
    return isinstance(exc, ValueError | UnicodeError)


def _backoff(attempts: int) -> timedelta:
    base = settings.OUTBOX_RETRY_SECONDS * 2 ** max(attempts - 1, 0)
    seconds = min(base, settings.OUTBOX_RETRY_MAX_SECONDS) * random.uniform(1.0, 1.25)
    return timedelta(seconds=seconds)


def _claim(now: datetime) -> OutboxEmail | None:
    due = OutboxEmail.objects.filter(status=OutboxEmail.Status.PENDING, next_attempt_at__lte=now)
    return due.select_for_update(skip_locked=True).order_by("next_attempt_at", "id").first()


def _close(mailer: BaseEmailBackend) -> None:
    try:
        mailer.close()
    except Exception:  # a broken connection may fail to QUIT; it is dropped either way
        logger.debug("closing the mailer failed", exc_info=True)


def _deliver(mailer: BaseEmailBackend, row: OutboxEmail, report: SendReport) -> None:
    """Send one claimed row and record the outcome on it (the caller commits)."""
    row.attempts += 1
    now = timezone.now()
    started = time.perf_counter()
    try:
        mailer.open()  # opened here, send_messages leaves it open for the next row
        mailer.send_messages([_message(row)])
    except Exception as exc:
        _close(mailer)  # the connection's state is unknown; open a fresh one next time
        row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        permanent = _is_permanent(exc) or row.attempts >= settings.OUTBOX_MAX_ATTEMPTS
        metrics.email_failed(permanent=permanent, seconds=time.perf_counter() - started)
        if permanent:
            row.status = OutboxEmail.Status.FAILED
            report.failed += 1
            logger.warning(
                "email %s to user %s failed for good: %s",
                row.pk,
                row.recipient_id,
                row.last_error,
                extra={"user_id": row.recipient_id, "email_id": row.pk},
            )
        else:
            row.next_attempt_at = now + _backoff(row.attempts)
            report.retried += 1
            logger.info(
                "email %s to user %s will be retried: %s",
                row.pk,
                row.recipient_id,
                row.last_error,
                extra={"user_id": row.recipient_id, "email_id": row.pk},
            )
    else:
        metrics.email_sent(seconds=time.perf_counter() - started)
        row.status = OutboxEmail.Status.SENT
        row.sent_at = now
        report.sent += 1
    row.save(update_fields=["attempts", "status", "sent_at", "next_attempt_at", "last_error"])


@dataclass(frozen=True)
class Backlog:
    """Emails waiting: how many, and how long the most overdue one has been due."""

    pending: int
    overdue_seconds: float


def outbox_backlog() -> Backlog:
    """Pending rows only (the partial index outbox_due_idx): cheap however many were sent."""
    due = OutboxEmail.objects.filter(status=OutboxEmail.Status.PENDING)
    first = due.order_by("next_attempt_at", "id").values_list("next_attempt_at", flat=True).first()
    overdue = max((timezone.now() - first).total_seconds(), 0.0) if first else 0.0
    return Backlog(pending=due.count(), overdue_seconds=overdue)


def outbox_send(*, limit: int | None = None) -> SendReport:
    """Send up to `limit` due emails, one row per transaction, over one SMTP connection."""
    report = SendReport()
    mailer = mailers.default
    try:
        for _ in range(limit or settings.OUTBOX_BATCH_SIZE):
            with transaction.atomic():
                row = _claim(timezone.now())
                if row is None:
                    break
                _deliver(mailer, row, report)
    finally:
        _close(mailer)
    return report
