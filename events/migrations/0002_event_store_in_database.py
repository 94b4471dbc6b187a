"""What the database itself guarantees about events: defaults filled in at insert
(time, id, writing transaction) and immutability — UPDATE, DELETE and TRUNCATE
are refused by triggers, whoever issues them."""

from django.db import migrations

FORWARD = """
ALTER TABLE events_event ALTER COLUMN txid SET DEFAULT (pg_current_xact_id()::text::bigint);
ALTER TABLE events_event ALTER COLUMN created_at SET DEFAULT clock_timestamp();
ALTER TABLE events_event ALTER COLUMN uuid SET DEFAULT gen_random_uuid();

CREATE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are immutable: % on events_event is refused', TG_OP
        USING ERRCODE = 'integrity_constraint_violation',
              HINT = 'Append a correcting event instead.';
END;
$$;

CREATE TRIGGER events_event_no_update_delete
    BEFORE UPDATE OR DELETE ON events_event
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();

CREATE TRIGGER events_event_no_truncate
    BEFORE TRUNCATE ON events_event
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();
"""

BACKWARD = """
DROP TRIGGER events_event_no_truncate ON events_event;
DROP TRIGGER events_event_no_update_delete ON events_event;
DROP FUNCTION events_refuse_change();
"""


class Migration(migrations.Migration):
    dependencies = [("events", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
