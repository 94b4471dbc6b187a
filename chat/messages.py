"""What a posted message says now, and whether a member of its room may see it.

The one rule, from two sources: the chat.message.posted event's data, and the
message's chat.MessageState row (the read model of its edits and redaction,
written with those events; a message never corrected has none).

- Erased (a GDPR erasure scrubbed the event's data to `{"erased": true}`) or
  redacted: hidden — no text at all.
- Edited: the latest edit's text (MessageState.text).
- Otherwise: the posted text.

Replay, gap fill and scrollback (chat.events' frames via chat.selectors), mention
emails (chat.mentions), the digest (chat.digest) and the auditors' timeline
(chat.selectors.room_timeline) all read messages through `current_text`. The
digest must drop hidden messages in SQL, before its LIMIT, so the rule's
visibility half is also given as SQL (`VISIBLE_SQL`), built here from the same
names; tests/integration/chat/test_messages.py proves both forms agree. Search
(chat.search) matches the text in SQL, where it is stored: it also takes from
here which column holds the current text (`EDITED_SQL`, `POSTED_TEXT_SQL`,
`EDITED_TEXT_SQL`), and reads its hits' text through `current_text`;
tests/integration/chat/test_search.py proves the column choice agrees.
"""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from events.schemas import upcast

from .models import MessageState

# The key `events_erase_texts` leaves in a scrubbed event's data.
ERASED = "erased"


@dataclass(frozen=True)
class Corrected:
    """A message's chat.MessageState row: its latest edit and whether it is redacted."""

    text: str
    edited: bool
    redacted: bool


@dataclass(frozen=True)
class CurrentText:
    """What message `seq` says now; `text` is empty when the message is hidden."""

    seq: int
    author_id: int | None
    text: str
    edited: bool
    redacted: bool
    erased: bool

    @property
    def hidden(self) -> bool:
        return self.redacted or self.erased

    @property
    def shown(self) -> str | None:
        """The text a member of the room may read, or None when there is none."""
        return None if self.hidden else self.text


def is_erased(data: dict[str, Any]) -> bool:
    """Data scrubbed by a GDPR erasure (events_erase_texts)."""
    return data.get(ERASED) is True


def is_hidden(data: dict[str, Any], corrected: Corrected | None) -> bool:
    """Whether an event's text may not be shown: its own data was erased, or the
    message it shows (itself, or an edit's target) is redacted."""
    return is_erased(data) or (corrected is not None and corrected.redacted)


def corrected_from_row(text: str | None, edit_count: int | None, redacted_at: datetime | None) -> Corrected | None:
    """A MessageState row's columns (all None from a LEFT JOIN without a row) as `Corrected`."""
    if edit_count is None:
        return None
    return Corrected(text=text or "", edited=edit_count > 0, redacted=redacted_at is not None)


def current_text(*, seq: int, author_id: int | None, data: dict[str, Any], corrected: Corrected | None) -> CurrentText:
    """The rule: `data` is the posted event's (upcast) data, `corrected` its MessageState row."""
    erased = is_erased(data)
    redacted = corrected is not None and corrected.redacted
    edited = corrected is not None and corrected.edited
    text = corrected.text if corrected is not None and edited else str(data.get("message", ""))
    return CurrentText(
        seq=seq,
        author_id=author_id,
        text="" if erased or redacted else text,
        edited=edited,
        redacted=redacted,
        erased=erased,
    )


# The same rule in SQL for bulk reads over events_event `e`: join each posted
# event's MessageState row as `ms` with STATE_JOIN_SQL, select STATE_COLUMNS_SQL
# (for `corrected_from_row`), and keep only VISIBLE_SQL rows.
STATE_JOIN_SQL = f"LEFT JOIN {MessageState._meta.db_table} ms ON ms.stream_id = e.stream_id AND ms.seq = e.seq"
STATE_COLUMNS_SQL = "ms.text, ms.edit_count, ms.redacted_at"
VISIBLE_SQL = f"NOT COALESCE(e.data -> '{ERASED}' = 'true'::jsonb, FALSE) AND ms.redacted_at IS NULL"

# Where the current text is stored, for SQL that matches it in place (chat.search,
# whose trigram indexes, chat migration 0005, are on exactly these two expressions):
# the latest edit's text when the message is edited, else the posted text. Only
# meaningful for VISIBLE_SQL rows (a hidden message has no current text).
EDITED_SQL = "COALESCE(ms.edit_count > 0, FALSE)"
EDITED_TEXT_SQL = "ms.text"
POSTED_TEXT_SQL = "(e.data ->> 'message')"


def current_text_of_row(
    *, seq: int, author_id: int | None, type: str, version: int, data: dict[str, Any] | str, state: tuple[Any, ...]
) -> CurrentText:
    """`current_text` of a posted event read in SQL with STATE_COLUMNS_SQL: its
    type, schema version and data (raw jsonb, which Django reads as text), and
    those columns as `state`."""
    loaded = json.loads(data) if isinstance(data, str) else data
    return current_text(
        seq=seq, author_id=author_id, data=upcast(type, version, loaded), corrected=corrected_from_row(*state)
    )
