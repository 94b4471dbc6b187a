"""A verifiable log: every event carries `content_hash` (sha256 of its data's
canonical jsonb text) and `hash`, chained per stream over the previous event's
hash (32 zero bytes for the first), and the stream keeps `head_hash`. The append
statement computes both (events.services._INSERT); events.verify recomputes them.

Existing rows are backfilled by walking each stream in seq order. The UPDATE
trigger refuses that, so the migration disables it for the backfill only and
enables it again in the same transaction (the migration runs as the table owner;
nothing else can see the table without the trigger).

Erasure (GDPR): `events_erase_texts(actor_id)` is the one way event data may
change. It sets the transaction-local flag `events.erasure` that the trigger
honours, and only for replacing the data of that actor's chat.message.* events
by `{"erased": true}` (keeping `target_seq`), every other column unchanged. The
chain still verifies: it covers content_hash, which is kept.

Migration 0007 replaces the chat-specific trigger and function by forms that
take the types to erase as a parameter (events.schemas registers them).
"""

from django.db import migrations, models

ZERO = "decode(repeat('00', 32), 'hex')"

FORWARD = f"""
ALTER TABLE events_stream ADD COLUMN head_hash bytea NOT NULL DEFAULT {ZERO};
ALTER TABLE events_event ADD COLUMN content_hash bytea, ADD COLUMN hash bytea;

-- The chain link. Fields are joined by newlines; client_id is length-prefixed
-- ('-' for none) because it is free text; created_at as integer microseconds.
CREATE FUNCTION events_chain_hash(
    prev bytea, seq bigint, type text, schema_version integer, actor_id bigint,
    client_id text, created_at timestamptz, content_hash bytea
) RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT sha256(prev || convert_to(concat_ws(E'\\n',
        seq::text, type, schema_version::text, coalesce(actor_id::text, ''),
        coalesce(octet_length(client_id)::text || ':' || client_id, '-'),
        ((extract(epoch FROM created_at) * 1000000)::bigint)::text,
        encode(content_hash, 'hex')), 'UTF8'))
$$;

ALTER TABLE events_event DISABLE TRIGGER events_event_no_update_delete;
DO $$
DECLARE
    r record;
    prev bytea;
    current_stream bigint := NULL;
    ch bytea;
    h bytea;
BEGIN
    FOR r IN SELECT id, stream_id, seq, type, schema_version, data, actor_id, client_id, created_at
             FROM events_event ORDER BY stream_id, seq LOOP
        IF current_stream IS DISTINCT FROM r.stream_id THEN
            prev := {ZERO};
            current_stream := r.stream_id;
        END IF;
        ch := sha256(convert_to(r.data::text, 'UTF8'));
        h := events_chain_hash(prev, r.seq, r.type, r.schema_version, r.actor_id, r.client_id, r.created_at, ch);
        UPDATE events_event SET content_hash = ch, hash = h WHERE id = r.id;
        prev := h;
    END LOOP;
    UPDATE events_stream s SET head_hash = e.hash FROM events_event e WHERE e.stream_id = s.id AND e.seq = s.head;
END $$;
ALTER TABLE events_event ENABLE TRIGGER events_event_no_update_delete;
ALTER TABLE events_event ALTER COLUMN content_hash SET NOT NULL, ALTER COLUMN hash SET NOT NULL;

-- What erased data looks like: the text gone, the reference to the target kept.
CREATE FUNCTION events_erased_data(data jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN data ? 'target_seq'
        THEN jsonb_build_object('erased', true, 'target_seq', data -> 'target_seq')
        ELSE '{{"erased": true}}'::jsonb END
$$;

"""

# Kept apart so that migration 0007 can restore them when it is reversed.
REFUSE_CHANGE = """
CREATE OR REPLACE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND current_setting('events.erasure', true) = 'on'
       AND OLD.type LIKE 'chat.message.%'
       AND NEW.data = events_erased_data(OLD.data)
       AND (NEW.id, NEW.stream_id, NEW.seq, NEW.uuid, NEW.type, NEW.schema_version, NEW.actor_id,
            NEW.client_id, NEW.created_at, NEW.txid, NEW.content_hash, NEW.hash)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.stream_id, OLD.seq, OLD.uuid, OLD.type, OLD.schema_version, OLD.actor_id,
            OLD.client_id, OLD.created_at, OLD.txid, OLD.content_hash, OLD.hash)
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'events are immutable: % on events_event is refused', TG_OP
        USING ERRCODE = 'integrity_constraint_violation',
              HINT = 'Append a correcting event instead.';
END;
$$;
"""

ERASE_TEXTS = """
CREATE FUNCTION events_erase_texts(p_actor_id bigint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    n bigint;
BEGIN
    PERFORM set_config('events.erasure', 'on', true);
    UPDATE events_event SET data = events_erased_data(data)
     WHERE actor_id = p_actor_id AND type LIKE 'chat.message.%' AND NOT data ? 'erased';
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM set_config('events.erasure', 'off', true);
    RETURN n;
END;
$$;
"""

BACKWARD = """
DROP FUNCTION events_erase_texts(bigint);
CREATE OR REPLACE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are immutable: % on events_event is refused', TG_OP
        USING ERRCODE = 'integrity_constraint_violation',
              HINT = 'Append a correcting event instead.';
END;
$$;
DROP FUNCTION events_erased_data(jsonb);
DROP FUNCTION events_chain_hash(bytea, bigint, text, integer, bigint, text, timestamptz, bytea);
ALTER TABLE events_event DROP COLUMN hash, DROP COLUMN content_hash;
ALTER TABLE events_stream DROP COLUMN head_hash;
"""


class Migration(migrations.Migration):
    dependencies = [("events", "0003_projections_outbox")]

    operations = [
        migrations.RunSQL(
            FORWARD + REFUSE_CHANGE + ERASE_TEXTS,
            BACKWARD,
            state_operations=[
                migrations.AddField(
                    model_name="stream",
                    name="head_hash",
                    field=models.BinaryField(default=bytes(32), editable=False),
                ),
                migrations.AddField(
                    model_name="event",
                    name="content_hash",
                    field=models.BinaryField(editable=False),
                ),
                migrations.AddField(
                    model_name="event",
                    name="hash",
                    field=models.BinaryField(editable=False),
                ),
            ],
        ),
    ]
