# The outbox moved to the notifications app (notifications 0001 takes it into its
# state). State only: the table events_outboxemail and its rows stay where they are.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('events', '0005_stream_closed'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name='OutboxEmail')],
            database_operations=[],
        ),
    ]
