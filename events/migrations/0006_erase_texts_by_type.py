"""Erasure without app names in the event store: `events_erase_texts(actor_id,
types)` scrubs the actor's events of the types it is given (the registered
personal-text types, see events.schemas and events.services.actor_erase), and
the immutability trigger lets through, under the transaction-local
`events.erasure` flag, only the replacement of a row's data by its erased form
with every other column unchanged, whatever its type.

The trigger no longer restricts the type: it cannot know the registry, which
lives in Python. What keeps an erasure honest is `verify_log`, which accepts an
erased row only for a registered personal-text type whose actor's erasure is
recorded in the log. The one-argument function of migration 0004 is dropped, so
nothing can still erase by chat's old type pattern.
"""

import importlib

from django.db import migrations

_0004 = importlib.import_module("events.migrations.0004_hash_chain_and_erasure")

FORWARD = """
DROP FUNCTION events_erase_texts(bigint);

CREATE OR REPLACE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND current_setting('events.erasure', true) = 'on'
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

CREATE FUNCTION events_erase_texts(p_actor_id bigint, p_types text[]) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    n bigint;
BEGIN
    PERFORM set_config('events.erasure', 'on', true);
    UPDATE events_event SET data = events_erased_data(data)
     WHERE actor_id = p_actor_id AND type = ANY(p_types) AND NOT data ? 'erased';
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM set_config('events.erasure', 'off', true);
    RETURN n;
END;
$$;
"""

BACKWARD = "DROP FUNCTION events_erase_texts(bigint, text[]);" + _0004.REFUSE_CHANGE + _0004.ERASE_TEXTS


class Migration(migrations.Migration):
    dependencies = [("events", "0005_stream_closed")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
