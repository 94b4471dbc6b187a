"""GDPR erasure of a person's message texts (`manage.py erase_user`).

The log stays append-only and verifiable: the erasure is itself an event
(`chat.user.erased` in the `audit:erasure` stream), then the database function
`events_erase_texts` (events migration 0004) replaces the data of the person's
chat.message.* events by `{"erased": true}` — the one UPDATE the immutability
trigger lets through, and only from inside that function. Each event's chain
hash covers its `content_hash`, which is kept, so `verify_log` still passes and
accepts those rows only because the erasure event names their author.

The read model then renders the person's messages as redacted everywhere
(replay, gap fill, scrollback, emails and digests built later), and emails not
yet sent that may quote them are marked failed.
"""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from events.models import Event
from events.services import event_append, stream_create
from events.verify import ERASURE_STREAM
from notifications.outbox import outbox_cancel

from .events import MESSAGE_POSTED, USER_ERASED
from .models import MessageState

_BATCH = 2000


@dataclass(frozen=True)
class Erasure:
    user_id: int
    seq: int
    events_scrubbed: int
    messages_hidden: int
    emails_cancelled: int


def user_erase(*, user_id: int) -> Erasure:
    """Erase every message text of a user, in one transaction; the account is deactivated."""
    user = get_user_model().objects.get(pk=user_id)
    now = timezone.now()
    with transaction.atomic():
        stream = stream_create(key=ERASURE_STREAM)
        appended = event_append(stream_id=stream.pk, type=USER_ERASED, data={"user_id": user_id}, actor_id=None)
        with connection.cursor() as cursor:
            cursor.execute("SELECT events_erase_texts(%s)", [user_id])
            row = cursor.fetchone()
        scrubbed = int(row[0]) if row else 0
        hidden = 0
        posted = Event.objects.filter(actor_id=user_id, type=MESSAGE_POSTED).values_list("stream_id", "seq")
        batch: list[MessageState] = []
        for stream_id, seq in posted.iterator(chunk_size=_BATCH):
            batch.append(MessageState(stream_id=stream_id, seq=seq, author_id=user_id, text="", redacted_at=now))
            if len(batch) >= _BATCH:
                hidden += _hide(batch)
                batch = []
        hidden += _hide(batch)
        cancelled = outbox_cancel(user_id=user_id)
        type(user).objects.filter(pk=user_id).update(is_active=False)
    return Erasure(
        user_id=user_id,
        seq=appended.event.seq,
        events_scrubbed=scrubbed,
        messages_hidden=hidden,
        emails_cancelled=cancelled,
    )


def _hide(batch: list[MessageState]) -> int:
    if not batch:
        return 0
    MessageState.objects.bulk_create(
        batch,
        update_conflicts=True,
        unique_fields=["stream", "seq"],
        update_fields=["text", "redacted_at"],
    )
    return len(batch)
