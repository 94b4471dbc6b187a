"""Mention notifications: `@username` in a message emails that user — unless they
read the room up to that message within NOTIFY_MENTION_DELAY.

Two steps. The `mentions` projection (events.projections) turns each posted
message into MentionNotice rows, one per mentioned member, unique per (user,
event), in the same transaction as its checkpoint. `mentions_flush` (a beat
task) then takes each user whose oldest pending notice is older than the delay,
and in one transaction with the notices locked: drops those read meanwhile
(Membership.last_read_seq >= seq), redacted or erased (chat.messages), in rooms
the user left, or of a user who switched mention emails off; queues ONE email for the rest of that
window (outbox key = the first mention's event id); marks them done.
"""

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from events.models import Event
from notifications.drafting import email_draft
from notifications.links import absolute_url
from notifications.outbox import outbox_enqueue
from notifications.preferences import Recipient, recipients_opted_in

from .events import MESSAGE_POSTED, event_data
from .messages import CurrentText
from .models import Membership, MentionNotice, Room
from .selectors import current_texts

logger = logging.getLogger(__name__)

# `@name` not preceded by a word character (so e-mail addresses are not mentions);
# Django usernames are letters, digits and @ . + - _ ; a trailing dot ends a sentence.
_MENTION = re.compile(r"(?<![\w@])@([\w.+-]+)")

_SNIPPET_CHARS = 300


def mentioned_usernames(text: str) -> set[str]:
    return {m.rstrip(".-+") for m in _MENTION.findall(text)} - {""}


class MentionsProjection:
    """chat.message.posted → MentionNotice (pending) for each mentioned member."""

    name = "mentions"

    def apply(self, events: Sequence[Event]) -> None:
        posted = [e for e in events if e.type == MESSAGE_POSTED and e.actor_id is not None]
        texts = {e.id: str(event_data(e).get("message", "")) for e in posted}
        names = {e.id: mentioned_usernames(texts[e.id]) for e in posted}
        wanted = set().union(*names.values()) if names else set()
        if not wanted:
            return
        users = dict(get_user_model().objects.filter(username__in=wanted).values_list("username", "id"))
        rooms = {r.stream_id: r for r in Room.objects.filter(stream_id__in={e.stream_id for e in posted})}
        members = set(
            Membership.objects.filter(room__in=rooms.values(), user_id__in=users.values()).values_list(
                "room_id", "user_id"
            )
        )
        # Replaying old history (a rebuild, a new projection) must not email old mentions.
        too_old = timezone.now() - timedelta(seconds=settings.NOTIFY_MENTION_MAX_AGE)
        notices = []
        for event in posted:
            room = rooms.get(event.stream_id)
            if room is None:
                continue
            for name in names[event.id]:
                user_id = users.get(name)
                if user_id is None or user_id == event.actor_id or (room.pk, user_id) not in members:
                    continue
                status = MentionNotice.Status.DROPPED if event.created_at < too_old else MentionNotice.Status.PENDING
                notices.append(
                    MentionNotice(
                        user_id=user_id,
                        room=room,
                        event_id=event.id,
                        seq=event.seq,
                        created_at=event.created_at,
                        status=status,
                    )
                )
        MentionNotice.objects.bulk_create(notices, ignore_conflicts=True)


@dataclass(frozen=True)
class FlushReport:
    emails: int
    mentions: int
    dropped: int


def _recipient(user_id: int) -> Recipient | None:
    row = recipients_opted_in(kind="mention", user_ids=[user_id]).first()
    if row is None:
        return None
    return Recipient(user_id=row["id"], username=row["username"], email=row["email"], language=row["language"])


def _keep(user_id: int, notices: list[MentionNotice]) -> list[tuple[MentionNotice, CurrentText]]:
    """The notices still worth an email, checked now (at send time), with the
    current text of their messages: unread, in a room the user is still in, and
    neither redacted nor erased (chat.messages)."""
    read = dict(
        Membership.objects.filter(user_id=user_id, room_id__in={n.room_id for n in notices}).values_list(
            "room_id", "last_read_seq"
        )
    )
    texts = current_texts(messages=[(n.room.stream_id, n.seq) for n in notices])
    kept = []
    for n in notices:
        current = texts.get((n.room.stream_id, n.seq))
        if n.room_id in read and read[n.room_id] < n.seq and current is not None and not current.hidden:
            kept.append((n, current))
    return kept


def _mention_items(kept: list[tuple[MentionNotice, CurrentText]]) -> list[dict[str, object]]:
    authors = {c.author_id for _, c in kept if c.author_id is not None}
    names = dict(get_user_model().objects.filter(id__in=authors).values_list("id", "username"))
    items = []
    for n, current in kept:
        text = current.text
        items.append(
            {
                "room": n.room.name,
                "url": absolute_url(reverse("chat:room", args=[n.room.name])),
                "username": names.get(current.author_id, "") if current.author_id is not None else "",
                "message": text if len(text) <= _SNIPPET_CHARS else text[: _SNIPPET_CHARS - 1] + "…",
                "created_at": n.created_at,
            }
        )
    return items


def _flush_user(user_id: int, now: datetime, delay: timedelta) -> FlushReport:
    with transaction.atomic():
        pending = list(
            MentionNotice.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(user_id=user_id, status=MentionNotice.Status.PENDING)
            .select_related("room")
            .order_by("created_at", "event_id")
        )
        if not pending or pending[0].created_at > now - delay:
            return FlushReport(emails=0, mentions=0, dropped=0)
        window_end = pending[0].created_at + delay
        batch = [n for n in pending if n.created_at <= window_end]
        recipient = _recipient(user_id)
        keep = _keep(user_id, batch) if recipient is not None else []
        emails = 0
        if recipient is not None and keep:
            draft = email_draft(
                recipient=recipient,
                kind="mention",
                key=f"mention:{batch[0].event_id}",
                template="email/mention",
                context={"mentions": _mention_items(keep), "count": len(keep)},
                quoted_user_ids=sorted({c.author_id for _, c in keep if c.author_id is not None}),
            )
            emails = outbox_enqueue(drafts=[draft])
        kept = {n.pk for n, _ in keep}
        MentionNotice.objects.filter(pk__in=kept).update(status=MentionNotice.Status.QUEUED)
        MentionNotice.objects.filter(pk__in=[n.pk for n in batch if n.pk not in kept]).update(
            status=MentionNotice.Status.DROPPED
        )
    logger.info("mentions of user %s: %d emailed, %d dropped", user_id, len(keep), len(batch) - len(keep))
    return FlushReport(emails=emails, mentions=len(keep), dropped=len(batch) - len(keep))


def mentions_flush(*, now: datetime | None = None, limit: int = 500) -> FlushReport:
    """Email every user whose oldest pending mention is older than NOTIFY_MENTION_DELAY."""
    now = now or timezone.now()
    delay = timedelta(seconds=settings.NOTIFY_MENTION_DELAY)
    due = (
        MentionNotice.objects.filter(status=MentionNotice.Status.PENDING, created_at__lte=now - delay)
        .values_list("user_id", flat=True)
        .distinct()
    )
    emails = mentions = dropped = 0
    for user_id in list(due[:limit]):
        report = _flush_user(user_id, now, delay)
        emails, mentions, dropped = emails + report.emails, mentions + report.mentions, dropped + report.dropped
    return FlushReport(emails=emails, mentions=mentions, dropped=dropped)
