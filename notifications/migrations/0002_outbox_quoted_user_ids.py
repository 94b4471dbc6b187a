# Who an email quotes, so an erasure cancels pending email by id (notifications.outbox.outbox_cancel).
# The GIN index covers pending rows only: sent ones are never looked up by it.

import django.contrib.postgres.fields
import django.contrib.postgres.indexes
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('notifications', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='outboxemail',
            name='quoted_user_ids',
            field=django.contrib.postgres.fields.ArrayField(base_field=models.BigIntegerField(), blank=True, db_default=[], default=list),
        ),
        migrations.AddIndex(
            model_name='outboxemail',
            index=django.contrib.postgres.indexes.GinIndex(condition=models.Q(('status', 'pending')), fields=['quoted_user_ids'], name='outbox_quoted_pending_idx'),
        ),
    ]
