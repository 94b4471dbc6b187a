"""Search over the current text of the messages a user may read.

What a message says now and who may see it is chat.messages' rule: search takes
from there which of the two stored columns holds a visible message's current
text (the posted event's data, or the chat.MessageState row of an edited one),
matches each column through its own index (chat migration 0005), and renders
its hits through `current_text`. Both columns are written in the transaction
that changes the text, so an edit is found by its new text only, and a
redaction or erasure hides the message from search the moment it commits.

Each word of the query must occur in the message (substring, case-insensitive);
"quoted words" are one phrase. How a word is looked up depends on its longest
run of letters: 3+ → the trigram index (any script); 2 with a non-ASCII
character (会議) → the trigram index of the text with every character doubled
(会会議議 has the trigrams 会会議 and 会議議); 2 ASCII letters → a whole word,
through pg_trgm's word-boundary trigrams; shorter → it only narrows the other
words' matches.
"""

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connection, transaction
from django.db.backends.utils import CursorWrapper
from django.db.models import Q
from django.utils.html import escape

from .errors import ChatError
from .events import MESSAGE_POSTED
from .messages import (
    EDITED_SQL,
    EDITED_TEXT_SQL,
    POSTED_TEXT_SQL,
    STATE_COLUMNS_SQL,
    STATE_JOIN_SQL,
    VISIBLE_SQL,
    current_text_of_row,
)
from .models import Membership, Room

QUERY_MAX_CHARS = 200
TERMS_MAX = 8
_TERMS = re.compile(r'"([^"]*)"|(\S+)')
_WORD_RUN = re.compile(r"\w+")
_ASCII_WORD = re.compile(r"[a-z0-9]{2}", re.ASCII)
# The doubled-text indexes' expression and predicate (chat migration 0005), repeated exactly.
_DOUBLED = r"regexp_replace(lower({column}), '(.)', '\1\1', 'g')"
_NON_ASCII = r"{column} ~ '[^\x01-\x7f]'"
SNIPPET_CHARS = 280
# The log is searched newest first in windows of positions, the first this
# large, each next one this many times larger (see _windows).
FIRST_WINDOW = 5_000
WINDOW_GROWTH = 4


@dataclass(frozen=True)
class Term:
    text: str
    # "trigram", "bigram" (a 2-character run with a non-ASCII character, found in
    # the doubled text), "word" (a 2-letter ASCII word) or "filter" (no index:
    # narrows the other terms).
    kind: str
    key: str = ""

    def pattern(self) -> re.Pattern[str]:
        """Where the term occurs in a text, as the database matches it."""
        if self.kind == "word":
            return re.compile(rf"(?<!\w){re.escape(self.key)}(?!\w)", re.IGNORECASE)
        return re.compile(re.escape(self.text), re.IGNORECASE)


@dataclass(frozen=True)
class SearchQuery:
    terms: tuple[Term, ...]
    room: str | None = None
    author: str | None = None
    before: datetime | None = None
    after: datetime | None = None
    cursor: int | None = None
    limit: int = 20


@dataclass(frozen=True)
class Segment:
    text: str
    match: bool


@dataclass(frozen=True)
class Hit:
    position: int
    room: str
    seq: int
    id: str
    username: str
    ts: datetime
    text: str
    edited: bool
    segments: list[Segment] = field(default_factory=list)

    @property
    def highlight(self) -> str:
        """The snippet as HTML: user text escaped, each match in <mark>."""
        return "".join(f"<mark>{escape(s.text)}</mark>" if s.match else escape(s.text) for s in self.segments)


@dataclass(frozen=True)
class Results:
    hits: list[Hit]
    next_cursor: int | None


def _term(text: str) -> Term | None:
    runs = _WORD_RUN.findall(text)
    if not runs:
        return None
    longest = max(runs, key=len)
    if len(longest) >= 3:
        return Term(text=text, kind="trigram")
    if len(longest) == 2:
        if not longest.isascii():
            return Term(text=text, kind="bigram", key=longest)
        if _ASCII_WORD.fullmatch(longest.lower()):
            return Term(text=text, kind="word", key=longest.lower())
    return Term(text=text, kind="filter")


def search_terms(raw: str) -> tuple[Term, ...]:
    """Parse a query into its terms, or refuse it with a sentence for the person."""
    text = unicodedata.normalize("NFC", raw).strip()
    if not text:
        raise ChatError("invalid_request", "Type something to search for.")
    if len(text) > QUERY_MAX_CHARS:
        raise ChatError("invalid_request", f"A search is at most {QUERY_MAX_CHARS} characters long.")
    if "\x00" in text:
        raise ChatError("invalid_request", "The search contains a character that cannot be searched for.")
    words = [quoted or plain for quoted, plain in _TERMS.findall(text)]
    terms: list[Term] = []
    for word in words:
        term = _term(word.strip())
        if term is not None and term not in terms:
            terms.append(term)
    if len(terms) > TERMS_MAX:
        raise ChatError("invalid_request", f"A search has at most {TERMS_MAX} words.")
    if not any(t.kind != "filter" for t in terms):
        raise ChatError(
            "invalid_request",
            "Search for a word of at least 3 letters, or 2 Japanese or Chinese characters "
            "(or a 2-letter word such as 'QA').",
        )
    return tuple(terms)


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _conditions(column: str, terms: tuple[Term, ...], params: list[Any]) -> str:
    parts = []
    for term in terms:
        if term.kind == "bigram":
            non_ascii, doubled = _NON_ASCII.format(column=column), _DOUBLED.format(column=column)
            parts.append(f"{non_ascii} AND {doubled} ILIKE %s")
            params.append(_like("".join(c * 2 for c in term.key)))
        elif term.kind == "word":
            # A whole word: with the threshold at 1 (set below), `<%` holds when the
            # text has the word's trigrams with its boundaries: "  q", " qa", "qa ".
            parts.append(f"%s <%% {column}")
            params.append(term.key)
        parts.append(f"{column} ILIKE %s")
        params.append(_like(term.text))
    return " AND ".join(parts)


def _filters(
    query: SearchQuery, scope: "_Scope", author_id: int | None, window: tuple[int, int], params: list[Any]
) -> str:
    parts = [f"{scope.position} >= %s", f"{scope.position} < %s"]
    params.extend(window)
    optional: list[tuple[str, object]] = [
        ("e.id < %s", query.cursor),
        ("e.actor_id = %s", author_id),
        ("e.created_at < %s", query.before),
        ("e.created_at >= %s", query.after),
    ]
    for condition, value in optional:
        if value is not None:
            parts.append(condition)
            params.append(value)
    return "".join(f" AND {p}" for p in parts)


@dataclass(frozen=True)
class _Scope:
    """Where a user's search looks: one room's stream, or every room except the
    private ones the user is not a member of (usually a short list)."""

    stream: int | None
    hidden: list[int]
    head: int = 0

    @property
    def position(self) -> str:
        """What orders the scope's events newest first: the room's seq, or the log's position."""
        return "e.seq" if self.stream is not None else "e.id"

    def sql(self, column: str, params: list[Any]) -> str:
        if self.stream is not None:
            params.append(self.stream)
            return f"{column} = %s"
        params.append(self.hidden)
        return f"NOT ({column} = ANY(%s::bigint[]))"


def _matches(
    query: SearchQuery,
    *,
    scope: _Scope,
    author_id: int | None,
    window: tuple[int, int],
    edited: bool,
    params: list[Any],
) -> str:
    """The visible posted messages of one window whose current text has every
    term, among those not edited (matched in the posted text) or edited (matched
    in the latest edit's text): chat.messages' rule, one indexed column at a time."""
    column, which = (EDITED_TEXT_SQL, EDITED_SQL) if edited else (POSTED_TEXT_SQL, f"NOT {EDITED_SQL}")
    where = scope.sql("e.stream_id", params) + " AND " + _conditions(column, query.terms, params)
    where += _filters(query, scope, author_id, window, params)
    return f"""
        SELECT e.id, e.stream_id, e.seq, e.uuid, e.actor_id, e.created_at, e.schema_version, e.data,
               {STATE_COLUMNS_SQL}
        FROM events_event e
        {STATE_JOIN_SQL}
        WHERE e.type = '{MESSAGE_POSTED}' AND {which} AND {VISIBLE_SQL} AND {where}"""


def _sql(
    query: SearchQuery, *, scope: _Scope, author_id: int | None, window: tuple[int, int], limit: int
) -> tuple[str, list[Any]]:
    """One window of the log: matches with window[0] <= position < window[1], newest first."""
    users = get_user_model()._meta.db_table
    params: list[Any] = []
    posted = _matches(query, scope=scope, author_id=author_id, window=window, edited=False, params=params)
    edited = _matches(query, scope=scope, author_id=author_id, window=window, edited=True, params=params)
    params.append(limit)
    # Sorting on `id + 0` keeps the planner from walking the window backwards by
    # primary key hoping to meet a match soon; names are joined to the page's rows only.
    sql = f"""
        SELECT r.name, coalesce(u.username, ''), h.*
        FROM (
            SELECT * FROM ({posted} UNION ALL {edited}) matches
            ORDER BY matches.id + 0 DESC
            LIMIT %s
        ) h
        JOIN chat_room r ON r.stream_id = h.stream_id
        LEFT JOIN {users} u ON u.id = h.actor_id
        ORDER BY h.id DESC"""
    return sql, params


def _scope(*, user_id: int, room: str | None) -> _Scope | None:
    """None when the room does not exist or the user may not read it."""
    if room is not None:
        readable = Room.objects.filter(Q(is_private=False) | Q(memberships__user_id=user_id), name=room)
        found = readable.values_list("stream_id", "stream__head").first()
        return _Scope(stream=found[0], hidden=[], head=found[1]) if found is not None else None
    members = Membership.objects.filter(user_id=user_id).values("room_id")
    hidden = Room.objects.filter(is_private=True).exclude(pk__in=members).values_list("stream_id", flat=True)
    return _Scope(stream=None, hidden=list(hidden))


def _top(cursor: CursorWrapper, query: SearchQuery, scope: _Scope) -> int:
    """Where the first window ends (exclusive): the head, or the cursor's message."""
    if scope.stream is None:
        if query.cursor is not None:
            return query.cursor
        cursor.execute("SELECT coalesce(max(id), 0) + 1 FROM events_event")
    elif query.cursor is not None:
        cursor.execute("SELECT coalesce(max(seq), %s) FROM events_event WHERE id = %s", [scope.head + 1, query.cursor])
    else:
        return scope.head + 1
    row = cursor.fetchone()
    return int(row[0]) if row else 0


def _windows(top: int) -> Iterator[tuple[int, int]]:
    """Ranges of positions below `top`, newest first, each WINDOW_GROWTH times the
    last: a common word fills a page from the newest few thousand events without
    visiting its every match; a rare one costs a few index probes. In one room
    the positions are its seqs (its own index), in the whole log the log's."""
    size = FIRST_WINDOW
    while top > 0:
        low = max(top - size, 0)
        yield low, top
        top, size = low, size * WINDOW_GROWTH


def messages_search(*, user_id: int, query: SearchQuery) -> Results:
    """The messages `user_id` may read whose current text has every term, newest
    first (log order); `next_cursor` continues after the last one."""
    author_id = None
    if query.author is not None:
        author_id = get_user_model().objects.filter(username=query.author).values_list("pk", flat=True).first()
        if author_id is None:
            return Results(hits=[], next_cursor=None)
    scope = _scope(user_id=user_id, room=query.room)
    if scope is None:
        return Results(hits=[], next_cursor=None)
    rows: list[tuple[Any, ...]] = []
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = %s", [int(settings.CHAT_SEARCH_TIMEOUT_MS)])
            cursor.execute("SET LOCAL pg_trgm.word_similarity_threshold = 1")
            for window in _windows(_top(cursor, query, scope)):
                wanted = query.limit + 1 - len(rows)
                sql, params = _sql(query, scope=scope, author_id=author_id, window=window, limit=wanted)
                cursor.execute(sql, params)
                rows.extend(cursor.fetchall())
                if len(rows) > query.limit:
                    break
    except DatabaseError as exc:
        if getattr(exc.__cause__, "sqlstate", None) == "57014":  # query_canceled: the timeout
            raise ChatError("unavailable", "This search took too long. Add words or filters, then retry.") from exc
        raise
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    hits = []
    for room, username, position, _stream, seq, uuid, author_id, created_at, version, data, *state in rows:
        current = current_text_of_row(
            seq=seq, author_id=author_id, type=MESSAGE_POSTED, version=version, data=data, state=tuple(state)
        )
        if current.shown is None:  # VISIBLE_SQL left it out already; the Python rule has the last word
            continue
        hits.append(
            Hit(
                position=position,
                room=room,
                seq=seq,
                id=str(uuid),
                username=username,
                ts=created_at,
                text=current.shown,
                edited=current.edited,
                segments=highlight(current.shown, query.terms),
            )
        )
    return Results(hits=hits, next_cursor=hits[-1].position if more and hits else None)


def highlight(text: str, terms: tuple[Term, ...], *, width: int = SNIPPET_CHARS) -> list[Segment]:
    """The text (cut to about `width` characters around the first match) as plain
    and matching segments; a person's text is never treated as markup."""
    spans: list[tuple[int, int]] = []
    for term in terms:
        spans.extend(m.span() for m in term.pattern().finditer(text) if m.end() > m.start())
    spans.sort()
    merged: list[list[int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    lo, hi = 0, len(text)
    if len(text) > width:
        first = merged[0][0] if merged else 0
        lo = max(0, min(first - width // 3, len(text) - width))
        hi = lo + width
    segments: list[Segment] = []
    if lo > 0:
        segments.append(Segment("…", False))
    at = lo
    for start, end in merged:
        if end <= lo or start >= hi:
            continue
        start, end = max(start, lo), min(end, hi)
        if start > at:
            segments.append(Segment(text[at:start], False))
        segments.append(Segment(text[start:end], True))
        at = end
    if at < hi:
        segments.append(Segment(text[at:hi], False))
    if hi < len(text):
        segments.append(Segment("…", False))
    return segments
