# Preferences moved to the notifications app (notifications 0001 takes it into its
# state). State only: the table chat_preferences and its rows stay where they are.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('chat', '0005_search_index'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name='Preferences')],
            database_operations=[],
        ),
    ]
