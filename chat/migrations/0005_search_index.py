"""The search index (chat.search): trigram GIN indexes on the current text of
messages, which lives in two places — the posted event's data (never corrected
messages) and chat.MessageState (edited ones; redacted or erased ones have no
text there). Both are written in the transaction that changes the text, so the
index can never find a text after its redaction has committed.

pg_trgm covers queries with a run of 3+ letters in any script (C.UTF-8 and any
UTF-8 ctype classify kana and kanji as letters), and whole 2-letter words
("QA") through its word-boundary trigrams. Shorter Japanese words (会議, 雑談)
have no trigram; in the text with every character doubled (会会議議) they have
two, so a second trigram index on that doubled text — only for texts with a
non-ASCII character — finds any 2-character substring. See README, "Search".
"""

from django.db import migrations

_EXTENSION_HELP = (
    "The search index needs PostgreSQL's pg_trgm extension, and CREATE EXTENSION pg_trgm failed: {error}. "
    "Install the contrib modules (Debian: the postgresql-15 package ships them) and either run this migration "
    "as a role allowed to create extensions (a superuser, or the database owner on PostgreSQL 13+ since pg_trgm "
    "is trusted), or have an administrator run: CREATE EXTENSION pg_trgm; in this database."
)


def _create_extension(apps, schema_editor):  # type: ignore[no-untyped-def]
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
        if cursor.fetchone():
            return
        try:
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        except Exception as exc:
            raise RuntimeError(_EXTENSION_HELP.format(error=str(exc).strip())) from exc


# chat.search repeats these expressions exactly, so that the planner matches
# them with the indexes. The doubled text is built-in functions only (a
# PL/pgSQL bigram function cost ~0.3 ms per append: it sets up its expressions
# again in every transaction).
_DOUBLED = r"regexp_replace(lower({column}), '(.)', '\1\1', 'g')"
_NON_ASCII = r"{column} ~ '[^\x01-\x7f]'"


def _index(name: str, table: str, column: str, where: str, doubled: bool = False) -> str:
    expression = _DOUBLED.format(column=column) if doubled else column
    return f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin (({expression}) gin_trgm_ops) WHERE {where}"


_MESSAGE = "(data ->> 'message')"
_POSTED = "type = 'chat.message.posted'"
_INDEXES = [
    _index("chat_search_posted_trgm", "events_event", _MESSAGE, _POSTED),
    _index(
        "chat_search_posted_doubled",
        "events_event",
        _MESSAGE,
        f"{_POSTED} AND {_NON_ASCII.format(column=_MESSAGE)}",
        doubled=True,
    ),
    _index("chat_search_state_trgm", "chat_messagestate", "text", "redacted_at IS NULL"),
    _index(
        "chat_search_state_doubled",
        "chat_messagestate",
        "text",
        f"redacted_at IS NULL AND {_NON_ASCII.format(column='text')}",
        doubled=True,
    ),
]
_DROP = [
    "DROP INDEX IF EXISTS chat_search_posted_trgm",
    "DROP INDEX IF EXISTS chat_search_posted_doubled",
    "DROP INDEX IF EXISTS chat_search_state_trgm",
    "DROP INDEX IF EXISTS chat_search_state_doubled",
]


class Migration(migrations.Migration):
    dependencies = [("chat", "0004_close_archived_streams"), ("events", "0005_stream_closed")]

    operations = [
        migrations.RunPython(_create_extension, migrations.RunPython.noop),
        migrations.RunSQL(_INDEXES, _DROP),
    ]
