"""The search index (chat.search): trigram and bigram GIN indexes on the current
text of messages, which lives in two places — the posted event's data (never
corrected messages) and chat.MessageState (edited ones; redacted or erased ones
have no text there). Both are written in the transaction that changes the text,
so the index can never find a text after its redaction has committed.

pg_trgm covers queries with a run of 3+ letters in any script (C.UTF-8 and any
UTF-8 ctype classify kana and kanji as letters), and whole 2-letter words
("QA") through its word-boundary trigrams. Shorter Japanese words (会議, 雑談)
have no trigram: `chat_search_bigrams` lists a text's 2-character windows that
hold a non-ASCII character, for a second GIN index over the texts that have
one. See README, "Search".
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


# Lower-cased 2-character windows that hold a non-ASCII character: CJK text has
# no spaces, so every window is a possible word. Only texts with such a
# character are indexed (the partial indexes below): English messages never
# call it. PL/pgSQL, because it keeps its compiled form per connection, where a
# SQL-language function with a FROM clause would be planned again by every
# INSERT (measured: ~45 µs against ~10 µs per append). GIN removes duplicate keys.
_BIGRAMS = r"""
CREATE OR REPLACE FUNCTION chat_search_bigrams(t text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    cs text[] := string_to_array(lower(t), NULL);
    out text[] := '{}';
BEGIN
    FOR i IN 1 .. coalesce(array_length(cs, 1), 0) - 1 LOOP
        IF ascii(cs[i]) > 127 OR ascii(cs[i + 1]) > 127 THEN
            out := out || (cs[i] || cs[i + 1]);
        END IF;
    END LOOP;
    RETURN out;
END
$$
"""
# A text with a non-ASCII character. chat.search repeats this exact expression
# so that the planner can use the partial indexes.
NON_ASCII = r"~ '[^\x01-\x7f]'"

_INDEXES = [
    "CREATE INDEX IF NOT EXISTS chat_search_posted_trgm ON events_event "
    "USING gin ((data ->> 'message') gin_trgm_ops) WHERE type = 'chat.message.posted'",
    "CREATE INDEX IF NOT EXISTS chat_search_posted_bigram ON events_event "
    "USING gin (chat_search_bigrams(data ->> 'message')) "
    f"WHERE type = 'chat.message.posted' AND (data ->> 'message') {NON_ASCII}",
    "CREATE INDEX IF NOT EXISTS chat_search_state_trgm ON chat_messagestate "
    "USING gin (text gin_trgm_ops) WHERE redacted_at IS NULL",
    "CREATE INDEX IF NOT EXISTS chat_search_state_bigram ON chat_messagestate "
    f"USING gin (chat_search_bigrams(text)) WHERE redacted_at IS NULL AND text {NON_ASCII}",
]
_DROP = [
    "DROP INDEX IF EXISTS chat_search_posted_trgm",
    "DROP INDEX IF EXISTS chat_search_posted_bigram",
    "DROP INDEX IF EXISTS chat_search_state_trgm",
    "DROP INDEX IF EXISTS chat_search_state_bigram",
    "DROP FUNCTION IF EXISTS chat_search_bigrams(text)",
]


class Migration(migrations.Migration):
    dependencies = [("chat", "0004_close_archived_streams"), ("events", "0005_stream_closed")]

    operations = [
        migrations.RunPython(_create_extension, migrations.RunPython.noop),
        migrations.RunSQL(_BIGRAMS, migrations.RunSQL.noop),
        migrations.RunSQL(_INDEXES, _DROP),
    ]
