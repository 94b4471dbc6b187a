"""Email preferences and the outbox.

Both tables predate this app (they were `chat.Preferences` and
`events.OutboxEmail`): they keep their names, constraints and indexes
(notifications migration 0001 moved them in the migration state only).
"""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models


def _default_language() -> str:
    return settings.LANGUAGE_CODE


class Preferences(models.Model):
    """A user's email choices and language. Users without a row get the defaults."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preferences"
    )
    digest_email = models.BooleanField(default=True)
    mention_email = models.BooleanField(default=True)
    blog_email = models.BooleanField(default=True)
    language = models.CharField(max_length=10, choices=settings.LANGUAGES, default=_default_language)

    class Meta:
        db_table = "chat_preferences"
        verbose_name_plural = "preferences"

    def __str__(self) -> str:
        return f"preferences of {self.user_id}"


class OutboxEmail(models.Model):
    """One email to send, rendered when it was queued. UNIQUE(recipient, kind, key)
    makes queueing idempotent: a replay or a second run inserts nothing new."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        FAILED = "failed"

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    to_address = models.CharField(max_length=254)
    kind = models.CharField(max_length=32)
    key = models.CharField(max_length=200)
    subject = models.CharField(max_length=300)
    text_body = models.TextField()
    html_body = models.TextField()
    headers = models.JSONField(default=dict, blank=True)
    language = models.CharField(max_length=10)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # The users whose words the email quotes (a mention's author, a digest's quoted
    # lines, a blog post's author): an erasure cancels pending email by these ids
    # (notifications.outbox.outbox_cancel), never by searching the text.
    quoted_user_ids = ArrayField(models.BigIntegerField(), default=list, blank=True, db_default=[])

    class Meta:
        db_table = "events_outboxemail"
        constraints = [
            models.UniqueConstraint(fields=["recipient", "kind", "key"], name="outbox_recipient_kind_key_unique"),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at", "id"],
                name="outbox_due_idx",
                condition=models.Q(status="pending"),
            ),
            # Pending rows only: what an erasure looks up (quoted_user_ids @> ARRAY[id]).
            GinIndex(
                fields=["quoted_user_ids"], name="outbox_quoted_pending_idx", condition=models.Q(status="pending")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.key} → {self.to_address} ({self.status})"
