"""Many events quickly, for tests and benchmarks that need a big log.

One `event_append` call per event would take minutes for 100,000 events; this
appends them in one server-side loop with exactly the append statement's rules:
gapless seq after the head, content hash, the stream's hash chain
(`events_chain_hash`), increasing created_at, and the head moved at the end.
"""

from django.db import connection, transaction

_FUNCTION = """
CREATE OR REPLACE FUNCTION pg_temp.bulk_append(stream bigint, actor bigint, n integer, prefix text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    seq bigint;
    prev bytea;
    ts timestamptz;
    payload jsonb;
    ch bytea;
BEGIN
    SELECT head, head_hash INTO seq, prev FROM events_stream WHERE id = stream FOR UPDATE;
    FOR i IN 1..n LOOP
        seq := seq + 1;
        ts := clock_timestamp();
        payload := jsonb_build_object('message', prefix || i);
        ch := sha256(convert_to(payload::text, 'UTF8'));
        prev := events_chain_hash(prev, seq, 'chat.message.posted', 1, actor, NULL, ts, ch);
        INSERT INTO events_event (stream_id, seq, uuid, type, schema_version, data, actor_id, created_at,
                                  content_hash, hash)
        VALUES (stream, seq, gen_random_uuid(), 'chat.message.posted', 1, payload, actor, ts, ch, prev);
    END LOOP;
    UPDATE events_stream SET head = seq, head_hash = prev WHERE id = stream;
END;
$$;
"""


def bulk_append(*, stream_id: int, actor_id: int, count: int, prefix: str = "message ") -> None:
    """Append `count` messages "<prefix>1" .. "<prefix><count>" to a stream, in one transaction."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_FUNCTION)
        cursor.execute("SELECT pg_temp.bulk_append(%s, %s, %s, %s)", [stream_id, actor_id, count, prefix])
