"""Rooms and who belongs to them. A room's messages live in its event stream."""

from django.conf import settings
from django.db import models

from events.models import Stream


class Room(models.Model):
    name = models.CharField(max_length=64, unique=True)
    stream = models.OneToOneField(Stream, on_delete=models.PROTECT, related_name="room")
    is_private = models.BooleanField(default=False)
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
        return f"chat.room.{self.pk}"


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
