"""`manage.py erase_user USER`: erase a person's message texts (chat.erasure)."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from chat.erasure import user_erase


class Command(BaseCommand):
    help = "Erase every message text of a user (GDPR); the log stays verifiable."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("user", help="Username (or numeric id with --id).")
        parser.add_argument("--id", action="store_true", help="USER is a numeric user id.")

    def handle(self, *args: Any, **options: Any) -> None:
        users = get_user_model().objects
        raw = options["user"]
        try:
            user = users.get(pk=int(raw)) if options["id"] else users.get_by_natural_key(raw)
        except (users.model.DoesNotExist, ValueError):
            raise CommandError(f"No user {raw!r}.") from None
        done = user_erase(user_id=user.pk)
        self.stdout.write(
            f"Erased user {user.get_username()} (id {user.pk}): erasure event seq {done.seq}, "
            f"{done.events_scrubbed} events scrubbed, {done.messages_hidden} messages hidden, "
            f"{done.emails_cancelled} pending emails cancelled."
        )
