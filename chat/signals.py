"""Where Django changes a socket's rights without a service of ours to call:
its signals, each handed to one chat.revocation service (which acts after commit).

- sign-out (`user_logged_out`) and any deletion of a session row (sign-out's
  flush, a key cycled at sign-in or password change, an admin, `clearsessions`);
- a session saved with an expiry in the past;
- a user saved (a new password, deactivation) or deleted;
- a membership removed (or added back);
- a room saved (made private, or public again).
"""

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from . import revocation
from .models import Membership, Room, UserSession


def _logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    key = getattr(getattr(request, "session", None), "session_key", None)
    if key:
        revocation.session_revoke(session_key=key)


def _session_deleted(sender: Any, instance: UserSession, **kwargs: Any) -> None:
    # An expired row (clearsessions) has no socket left: each closed at its expiry.
    if instance.expire_date > timezone.now():
        revocation.session_revoke(session_key=instance.session_key)


def _session_saved(sender: Any, instance: UserSession, created: bool, **kwargs: Any) -> None:
    if instance.expire_date <= timezone.now():
        revocation.session_revoke(session_key=instance.session_key)
    elif created:
        # Django never reuses a key, but a script that re-creates rows may.
        revocation.session_restore(session_key=instance.session_key)


def _user_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    proof = revocation.user_proof(instance)
    # set_password() keeps the new raw password in `_password` until save() returns.
    if not created and (getattr(instance, "_password", None) is not None or proof == revocation.INACTIVE):
        revocation.user_revoke(user_id=instance.pk, proof=proof)
    else:
        revocation.user_proof_record(user_id=instance.pk, proof=proof)


def _user_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    revocation.user_revoke(user_id=instance.pk, proof=revocation.INACTIVE)


def _membership_deleted(sender: Any, instance: Membership, **kwargs: Any) -> None:
    revocation.membership_revoke(room_id=instance.room_id, user_id=instance.user_id)


def _membership_saved(sender: Any, instance: Membership, created: bool, **kwargs: Any) -> None:
    if created:
        revocation.membership_grant(room_id=instance.room_id, user_id=instance.user_id)


def _room_saved(sender: Any, instance: Room, update_fields: Any = None, **kwargs: Any) -> None:
    if update_fields is None or "is_private" in update_fields:
        revocation.room_privacy_record(room_id=instance.pk, is_private=instance.is_private)


def connect() -> None:
    user_logged_out.connect(_logged_out, dispatch_uid="chat.revoke.logged_out")
    post_delete.connect(_session_deleted, sender=UserSession, dispatch_uid="chat.revoke.session_deleted")
    post_save.connect(_session_saved, sender=UserSession, dispatch_uid="chat.revoke.session_saved")
    User = get_user_model()
    post_save.connect(_user_saved, sender=User, dispatch_uid="chat.revoke.user_saved")
    post_delete.connect(_user_deleted, sender=User, dispatch_uid="chat.revoke.user_deleted")
    post_delete.connect(_membership_deleted, sender=Membership, dispatch_uid="chat.revoke.membership_deleted")
    post_save.connect(_membership_saved, sender=Membership, dispatch_uid="chat.revoke.membership_saved")
    post_save.connect(_room_saved, sender=Room, dispatch_uid="chat.revoke.room_saved")
