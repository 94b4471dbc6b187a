"""Rooms and who belongs to them (a room's messages live in its event stream), and
the sessions the sockets are signed in with."""

from typing import Any

from django.conf import settings
from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import models

from events.models import Stream

from .layer import room_group


class Room(models.Model):
    name = models.CharField(max_length=64, unique=True)
    stream = models.OneToOneField(Stream, on_delete=models.PROTECT, related_name="room")
    is_private = models.BooleanField(default=False)
    # Set with the chat.room.archived event (chat.services.room_archive): no new messages.
    is_archived = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def group_name(self) -> str:
        """The Channels group: derived from the id, never from the (Unicode) name."""
        return room_group(self.pk)


class Membership(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    is_moderator = models.BooleanField(default=False)
    # The highest seq the user has told us they saw (the read marker).
    last_read_seq = models.BigIntegerField(default=0)
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["room", "user"], name="membership_room_user_unique")]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.room_id}"


class MentionNotice(models.Model):
    """A mention waiting to be emailed (chat.mentions): one per (user, event), so a
    replay of the log adds nothing. Checked again when its batch is sent."""

    class Status(models.TextChoices):
        PENDING = "pending"
        QUEUED = "queued"
        DROPPED = "dropped"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="+")
    event_id = models.BigIntegerField()
    seq = models.BigIntegerField()
    created_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "event_id"], name="mention_user_event_unique")]
        indexes = [
            models.Index(fields=["created_at"], name="mention_pending_idx", condition=models.Q(status="pending")),
        ]

    def __str__(self) -> str:
        return f"mention of {self.user_id} in {self.room_id}#{self.seq}"


class MessageState(models.Model):
    """The current version of a corrected message: a read model of the
    chat.message.edited / .redacted events, written in the same transaction as
    the event (chat.services' corrections; chat.erasure). A message never corrected
    has no row. What it means for readers: chat.messages."""

    stream = models.ForeignKey(Stream, on_delete=models.PROTECT, related_name="+")
    # The seq of the chat.message.posted event.
    seq = models.BigIntegerField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    text = models.TextField(blank=True)
    edited_at = models.DateTimeField(null=True, blank=True)
    edit_count = models.PositiveIntegerField(default=0)
    redacted_at = models.DateTimeField(null=True, blank=True)
    redacted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["stream", "seq"], name="message_state_stream_seq_unique")]

    def __str__(self) -> str:
        return f"{self.stream_id}#{self.seq} state"


class UserSession(AbstractBaseSession):
    """Django's database session (key, data, expiry) and the id of the user signed
    in with it, written with the data at every save (chat.sessions): a socket's
    handshake reads its session and its user in one query. The data stays what
    Django checks; the column only finds the user."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        # A session saved for a user deleted meanwhile must not fail the request:
        # its user is simply not found (anonymous).
        db_constraint=False,
    )

    class Meta:
        db_table = "chat_session"

    @classmethod
    def get_session_store_class(cls) -> type[Any]:
        from .sessions import SessionStore

        return SessionStore
