"""The daily digest: one email per opted-in user summarising yesterday in their rooms.

Day D is the calendar day in TIME_ZONE; the beat task sends D = yesterday at
DIGEST_HOUR, so consecutive digests cover the time since the previous one.
Exactly once per user and day: the outbox key is the date, rows are inserted
with ON CONFLICT DO NOTHING, and users who already have theirs are skipped, so
a second run (beat firing twice, a redelivered task, a worker killed half-way
and restarted) queues only what is missing.

It scales with rooms and users, not with events: one SQL aggregate per run
(GROUP BY stream, actor over the day, ranked in SQL), one LATERAL index scan
for the latest lines of each active room (chat.messages' rule: redacted and erased
ones never shown, edited ones in their current version), then the members who want
it (notifications.preferences' `recipients_opted_in`) in keyset pages of DIGEST_BATCH_SIZE
users, each page rendered and queued in its own transaction.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.urls import reverse

from notifications.drafting import email_draft
from notifications.links import absolute_url
from notifications.models import OutboxEmail
from notifications.outbox import OutboxDraft, outbox_enqueue
from notifications.preferences import Recipient, recipients_opted_in

from .events import MESSAGE_POSTED
from .messages import STATE_COLUMNS_SQL, STATE_JOIN_SQL, VISIBLE_SQL, current_text_of_row
from .models import Membership

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

# The latest lines of each active room: hidden messages are dropped before the
# LIMIT, by chat.messages' rule in SQL; the text is then chosen by current_text.
_LATEST = f"""
SELECT s.stream_id, l.seq, l.type, l.schema_version, l.data, l.actor_id, l.text, l.edit_count, l.redacted_at
FROM unnest(%(streams)s::bigint[], %(last)s::bigint[]) AS s(stream_id, last_seq)
CROSS JOIN LATERAL (
    SELECT e.seq, e.type, e.schema_version, e.data, e.actor_id, {STATE_COLUMNS_SQL}
    FROM events_event e
    {STATE_JOIN_SQL}
    WHERE e.stream_id = s.stream_id AND e.seq <= s.last_seq AND e.type = %(type)s AND e.created_at >= %(start)s
      AND {VISIBLE_SQL}
    ORDER BY e.seq DESC LIMIT %(lines)s
) l
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
    for stream_id, seq, type_, version, data, actor_id, *state in sorted(latest, key=lambda r: (r[0], r[1])):
        current = current_text_of_row(
            seq=seq, author_id=actor_id, type=type_, version=version, data=data, state=tuple(state)
        )
        if current.hidden:  # VISIBLE_SQL dropped it already; the Python rule has the last word
            continue
        line = _first_line(current.text)
        by_stream[stream_id].latest.append(
            {"seq": seq, "user_id": actor_id, "username": names.get(actor_id, ""), "line": line}
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


def _recipients(*, rooms: list[int], key: str) -> QuerySet:
    """Members of the active rooms who want the digest (notifications.preferences' one rule)
    and do not have this day's yet, as recipients_opted_in's rows in id order."""
    members = Membership.objects.filter(room_id__in=rooms).values("user_id")
    already = OutboxEmail.objects.filter(recipient_id=OuterRef("id"), kind=KIND, key=key)
    return recipients_opted_in(kind=KIND, user_ids=members).filter(~Exists(already)).order_by("id")


def digest_send(*, day: date, dry_run: bool = False, progress: Progress | None = None) -> DigestReport:
    """Queue day `day`'s digest for every opted-in member of a room active that day."""
    rooms = room_digests(day=day)
    if not rooms:
        return DigestReport(day=day, rooms=0, users=0, queued=0)
    recipients = _recipients(rooms=list(rooms), key=day.isoformat())
    total = recipients.count()
    done = queued = 0
    after = 0
    if progress:
        progress(0, total)
    while True:
        with transaction.atomic():
            page = list(recipients.filter(id__gt=after)[: settings.DIGEST_BATCH_SIZE])
            if not page:
                break
            member_of: dict[int, list[int]] = {}
            ids = [row["id"] for row in page]
            for user_id, room_id in Membership.objects.filter(room_id__in=list(rooms), user_id__in=ids).values_list(
                "user_id", "room_id"
            ):
                member_of.setdefault(user_id, []).append(room_id)
            drafts = [
                _draft(
                    Recipient(
                        user_id=row["id"], username=row["username"], email=row["email"], language=row["language"]
                    ),
                    day,
                    [rooms[r] for r in member_of[row["id"]]],
                )
                for row in page
            ]
            if not dry_run:
                queued += outbox_enqueue(drafts=drafts)
        after = page[-1]["id"]
        done += len(page)
        if progress:
            progress(done, total)
        if len(page) < settings.DIGEST_BATCH_SIZE:
            break
    logger.info("digest of %s: %d rooms, %d users, %d emails queued", day, len(rooms), done, queued)
    return DigestReport(day=day, rooms=len(rooms), users=done, queued=queued)
