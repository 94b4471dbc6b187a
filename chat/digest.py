"""The daily digest: one email per opted-in user summarising yesterday in their rooms.

Day D is the calendar day in TIME_ZONE; the beat task sends D = yesterday at
DIGEST_HOUR, so consecutive digests cover the time since the previous one.
Exactly once per user and day: the outbox key is the date, rows are inserted
with ON CONFLICT DO NOTHING, and users who already have theirs are skipped, so
a second run (beat firing twice, a redelivered task, a worker killed half-way
and restarted) queues only what is missing.

It scales with rooms and users, not with events: one SQL aggregate per run
(GROUP BY stream, actor over the day, ranked in SQL), one LATERAL index scan
for the latest lines of each active room (current text of edited messages from
chat.MessageState; redacted and erased ones never shown), then the members in keyset pages of
DIGEST_BATCH_SIZE users, each page rendered and queued in its own transaction.
"""

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.urls import reverse

from events.schemas import upcast
from notifications.drafting import email_draft
from notifications.links import absolute_url
from notifications.outbox import OutboxDraft, outbox_enqueue
from notifications.preferences import Recipient

from .events import MESSAGE_POSTED

logger = logging.getLogger(__name__)

KIND = "digest"
TOP_AUTHORS = 3
LATEST_LINES = 3
_LINE_CHARS = 140

_ROOM_STATS = """
WITH counts AS (
    SELECT e.stream_id, e.actor_id, count(*) AS n, max(e.seq) AS last_seq
    FROM events_event e
    WHERE e.type = %(type)s AND e.created_at >= %(start)s AND e.created_at < %(end)s
    GROUP BY e.stream_id, e.actor_id
), ranked AS (
    SELECT c.*, row_number() OVER (PARTITION BY c.stream_id ORDER BY c.n DESC, c.actor_id) AS rank
    FROM counts c
)
SELECT room.id, room.name, room.stream_id, sum(r.n)::bigint, max(r.last_seq),
       array_agg(r.actor_id ORDER BY r.rank) FILTER (WHERE r.rank <= %(top)s),
       array_agg(r.n ORDER BY r.rank) FILTER (WHERE r.rank <= %(top)s)
FROM ranked r JOIN chat_room room ON room.stream_id = r.stream_id
GROUP BY room.id, room.name, room.stream_id
"""

_LATEST = """
SELECT s.stream_id, l.seq, l.type, l.schema_version, l.data, l.actor_id, l.edited_text
FROM unnest(%(streams)s::bigint[], %(last)s::bigint[]) AS s(stream_id, last_seq)
CROSS JOIN LATERAL (
    SELECT e.seq, e.type, e.schema_version, e.data, e.actor_id,
           CASE WHEN ms.edit_count > 0 THEN ms.text END AS edited_text
    FROM events_event e
    LEFT JOIN chat_messagestate ms ON ms.stream_id = e.stream_id AND ms.seq = e.seq
    WHERE e.stream_id = s.stream_id AND e.seq <= s.last_seq AND e.type = %(type)s AND e.created_at >= %(start)s
      AND NOT (e.data ? 'erased') AND ms.redacted_at IS NULL  -- never show a redacted or erased text
    ORDER BY e.seq DESC LIMIT %(lines)s
) l
"""

# Members of the active rooms who want the digest and do not have this day's yet.
_RECIPIENTS = """
SELECT u.id, u.username, u.email, COALESCE(p.language, %(language)s), array_agg(m.room_id)
FROM chat_membership m
JOIN {users} u ON u.id = m.user_id
LEFT JOIN chat_preferences p ON p.user_id = u.id
WHERE m.room_id = ANY(%(rooms)s) AND u.id > %(after)s AND u.is_active AND u.email <> ''
  AND COALESCE(p.digest_email, TRUE)
  AND NOT EXISTS (
      SELECT 1 FROM events_outboxemail o WHERE o.recipient_id = u.id AND o.kind = %(kind)s AND o.key = %(key)s
  )
GROUP BY u.id, u.username, u.email, p.language
ORDER BY u.id
LIMIT %(limit)s
"""

_COUNT = """
SELECT count(DISTINCT u.id)
FROM chat_membership m
JOIN {users} u ON u.id = m.user_id
LEFT JOIN chat_preferences p ON p.user_id = u.id
WHERE m.room_id = ANY(%(rooms)s) AND u.is_active AND u.email <> '' AND COALESCE(p.digest_email, TRUE)
  AND NOT EXISTS (
      SELECT 1 FROM events_outboxemail o WHERE o.recipient_id = u.id AND o.kind = %(kind)s AND o.key = %(key)s
  )
"""

Progress = Callable[[int, int], None]


@dataclass
class RoomDigest:
    room_id: int
    name: str
    url: str
    count: int
    authors: list[dict[str, Any]] = field(default_factory=list)
    latest: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class DigestReport:
    day: date
    rooms: int
    users: int
    queued: int


def digest_window(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a calendar day in TIME_ZONE (DST-safe: both ends are midnights)."""
    tz = ZoneInfo(settings.TIME_ZONE)
    return datetime.combine(day, time.min, tzinfo=tz), datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= _LINE_CHARS else line[: _LINE_CHARS - 1] + "…"


def room_digests(*, day: date) -> dict[int, RoomDigest]:
    """Per active room of the day: message count, top authors, latest lines (aggregated in SQL)."""
    start, end = digest_window(day)
    with connection.cursor() as cursor:
        cursor.execute(_ROOM_STATS, {"type": MESSAGE_POSTED, "start": start, "end": end, "top": TOP_AUTHORS})
        stats = cursor.fetchall()
    if not stats:
        return {}
    rooms: dict[int, RoomDigest] = {}
    by_stream: dict[int, RoomDigest] = {}
    author_ids: set[int] = set()
    tops: dict[int, list[tuple[int, int]]] = {}
    for room_id, name, stream_id, count, _last, actors, counts in stats:
        url = absolute_url(reverse("chat:room", args=[name]))
        rooms[room_id] = by_stream[stream_id] = RoomDigest(room_id=room_id, name=name, url=url, count=count)
        tops[room_id] = [(a, n) for a, n in zip(actors or [], counts or [], strict=True) if a is not None]
        author_ids.update(a for a, _ in tops[room_id])
    params: dict[str, Any] = {
        "streams": [s[2] for s in stats],
        "last": [s[4] for s in stats],
        "type": MESSAGE_POSTED,
        "start": start,
        "lines": LATEST_LINES,
    }
    with connection.cursor() as cursor:
        cursor.execute(_LATEST, params)
        latest = cursor.fetchall()
    author_ids.update(row[5] for row in latest if row[5] is not None)
    names = dict(get_user_model().objects.filter(id__in=author_ids).values_list("id", "username"))
    for room_id, pairs in tops.items():
        rooms[room_id].authors = [{"username": names.get(a, ""), "count": n} for a, n in pairs]
    for stream_id, seq, type_, version, data, actor_id, edited in sorted(latest, key=lambda r: (r[0], r[1])):
        data = json.loads(data) if isinstance(data, str) else data  # Django reads raw jsonb as text
        text = edited if edited is not None else str(upcast(type_, version, data).get("message", ""))
        by_stream[stream_id].latest.append(
            {"seq": seq, "user_id": actor_id, "username": names.get(actor_id, ""), "line": _first_line(text)}
        )
    return rooms


def _draft(recipient: Recipient, day: date, rooms: list[RoomDigest]) -> OutboxDraft:
    rooms = sorted(rooms, key=lambda r: (-r.count, r.name))
    return email_draft(
        recipient=recipient,
        kind=KIND,
        key=day.isoformat(),
        template="email/digest",
        context={"day": day, "rooms": rooms, "total": sum(r.count for r in rooms)},
        quoted_user_ids=[line["user_id"] for room in rooms for line in room.latest],
    )


def digest_send(*, day: date, dry_run: bool = False, progress: Progress | None = None) -> DigestReport:
    """Queue day `day`'s digest for every opted-in member of a room active that day."""
    rooms = room_digests(day=day)
    users_table = connection.ops.quote_name(get_user_model()._meta.db_table)
    base: dict[str, Any] = {"rooms": list(rooms), "kind": KIND, "key": day.isoformat()}
    if not rooms:
        return DigestReport(day=day, rooms=0, users=0, queued=0)
    with connection.cursor() as cursor:
        cursor.execute(_COUNT.format(users=users_table), base)
        total = cursor.fetchone()[0]
    done = queued = 0
    after = 0
    if progress:
        progress(0, total)
    while True:
        params: dict[str, Any] = {
            **base,
            "language": settings.LANGUAGE_CODE,
            "after": after,
            "limit": settings.DIGEST_BATCH_SIZE,
        }
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(_RECIPIENTS.format(users=users_table), params)
                page = cursor.fetchall()
            if not page:
                break
            drafts = [
                _draft(Recipient(user_id=uid, username=un, email=em, language=lang), day, [rooms[r] for r in ids])
                for uid, un, em, lang, ids in page
            ]
            if not dry_run:
                queued += outbox_enqueue(drafts=drafts)
        after = page[-1][0]
        done += len(page)
        if progress:
            progress(done, total)
        if len(page) < settings.DIGEST_BATCH_SIZE:
            break
    logger.info("digest of %s: %d rooms, %d users, %d emails queued", day, len(rooms), done, queued)
    return DigestReport(day=day, rooms=len(rooms), users=done, queued=queued)
