# Preferences (from chat) and OutboxEmail (from events) join this app in the
# migration state only: their tables keep their names, rows, constraints and
# indexes. Existing permissions follow them (their content types are renamed).

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import notifications.models

# (old app label, model) of the content types that move here.
_MOVED = [('chat', 'preferences'), ('events', 'outboxemail')]


def _move_content_types(apps, schema_editor, forward=True):
    ContentType = apps.get_model('contenttypes', 'ContentType')
    for old, model in _MOVED:
        source, target = (old, 'notifications') if forward else ('notifications', old)
        if not ContentType.objects.filter(app_label=target, model=model).exists():
            ContentType.objects.filter(app_label=source, model=model).update(app_label=target)


def _move_back(apps, schema_editor):
    _move_content_types(apps, schema_editor, forward=False)


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('chat', '0006_preferences_to_notifications'),
        ('events', '0006_outboxemail_to_notifications'),
        ('contenttypes', '0002_remove_content_type_name'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='Preferences',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('digest_email', models.BooleanField(default=True)),
                        ('mention_email', models.BooleanField(default=True)),
                        ('blog_email', models.BooleanField(default=True)),
                        ('language', models.CharField(choices=[('en', 'English'), ('ja', '日本語')], default=notifications.models._default_language, max_length=10)),
                        ('user', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='notification_preferences', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'verbose_name_plural': 'preferences',
                        'db_table': 'chat_preferences',
                    },
                ),
                migrations.CreateModel(
                    name='OutboxEmail',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('to_address', models.CharField(max_length=254)),
                        ('kind', models.CharField(max_length=32)),
                        ('key', models.CharField(max_length=200)),
                        ('subject', models.CharField(max_length=300)),
                        ('text_body', models.TextField()),
                        ('html_body', models.TextField()),
                        ('headers', models.JSONField(blank=True, default=dict)),
                        ('language', models.CharField(max_length=10)),
                        ('status', models.CharField(choices=[('pending', 'Pending'), ('sent', 'Sent'), ('failed', 'Failed')], default='pending', max_length=10)),
                        ('attempts', models.PositiveIntegerField(default=0)),
                        ('next_attempt_at', models.DateTimeField()),
                        ('last_error', models.TextField(blank=True, default='')),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('sent_at', models.DateTimeField(blank=True, null=True)),
                        ('recipient', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'events_outboxemail',
                        'indexes': [models.Index(condition=models.Q(('status', 'pending')), fields=['next_attempt_at', 'id'], name='outbox_due_idx')],
                        'constraints': [models.UniqueConstraint(fields=('recipient', 'kind', 'key'), name='outbox_recipient_kind_key_unique')],
                    },
                ),
            ],
        ),
        migrations.RunPython(_move_content_types, _move_back, elidable=True),
    ]
