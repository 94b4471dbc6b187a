"""GDPR erasure of a person's message texts (`manage.py erase_user`).

The log stays append-only and verifiable: `events.services.actor_erase` records
the erasure (`chat.user.erased`, chat's registered erasure type) and scrubs the
person's events of every type registered as carrying personal text (chat's are
the chat.message.* types, see chat.events); `verify_log` accepts those rows
because the erasure event names their author.

The read model then renders the person's messages as redacted everywhere
(replay, gap fill, scrollback, emails and digests built later), and emails not
yet sent that may quote them are marked failed.
"""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from events.models import Event
from events.services import actor_erase
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
        erased = actor_erase(actor_id=user_id, erasure_type=USER_ERASED)
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
        seq=erased.event.seq,
        events_scrubbed=erased.events_scrubbed,
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
