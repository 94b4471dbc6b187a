"""chat_session: the sessions with their user's id (chat.sessions). Live sessions
are copied from Django's django_session, so nobody is signed out by the upgrade."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.utils import timezone

_BATCH = 2000


def copy_live_sessions(apps, schema_editor):
    from django.contrib.sessions.backends.db import SessionStore

    from chat.sessions import user_id_of

    Session = apps.get_model("sessions", "Session")
    UserSession = apps.get_model("chat", "UserSession")
    store = SessionStore()
    batch = []
    live = Session.objects.using(schema_editor.connection.alias).filter(expire_date__gt=timezone.now())
    for session in live.iterator(chunk_size=_BATCH):
        data = store.decode(session.session_data)
        batch.append(
            UserSession(
                session_key=session.session_key,
                session_data=session.session_data,
                expire_date=session.expire_date,
                user_id=user_id_of(data),
            )
        )
        if len(batch) >= _BATCH:
            UserSession.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    UserSession.objects.bulk_create(batch, ignore_conflicts=True)


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0006_preferences_to_notifications"),
        ("sessions", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="UserSession",
            fields=[
                (
                    "session_key",
                    models.CharField(max_length=40, primary_key=True, serialize=False, verbose_name="session key"),
                ),
                ("session_data", models.TextField(verbose_name="session data")),
                ("expire_date", models.DateTimeField(db_index=True, verbose_name="expire date")),
                (
                    "user",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={"db_table": "chat_session"},
        ),
        migrations.RunPython(copy_live_sessions, migrations.RunPython.noop),
    ]
