"""Archived rooms close their streams (events 0005): the append statement
itself refuses new messages to them."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("chat", "0003_archive_message_state"), ("events", "0005_stream_closed")]

    operations = [
        migrations.RunSQL(
            "UPDATE events_stream SET closed = true WHERE id IN (SELECT stream_id FROM chat_room WHERE is_archived)",
            migrations.RunSQL.noop,
        )
    ]
