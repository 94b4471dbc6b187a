"""Load the demo users and rooms of fixtures/demo.json (idempotent) and print
how to sign in. Messages are posted through the service, once per room."""

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from chat.models import Room
from chat.services import message_post, room_join


class Command(BaseCommand):
    help = "Create the demo users and rooms (safe to run again)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--file", default=str(Path(settings.BASE_DIR) / "fixtures" / "demo.json"))

    def handle(self, *args: Any, **options: Any) -> None:
        demo = json.loads(Path(options["file"]).read_text(encoding="utf-8"))
        User = get_user_model()
        users = {}
        for spec in demo["users"]:
            user, created = User.objects.get_or_create(
                username=spec["username"],
                defaults={
                    "email": spec.get("email", ""),
                    "is_staff": spec.get("is_staff", False),
                    "is_superuser": spec.get("is_superuser", False),
                },
            )
            if created:
                user.set_password(spec["password"])
                user.save(update_fields=["password"])
            users[user.username] = user
        for spec in demo["rooms"]:
            fresh = not Room.objects.filter(name=spec["name"]).exists()
            accesses = {name: room_join(user=users[name], name=spec["name"]) for name in spec["members"]}
            if fresh:
                for author, text in spec.get("messages", []):
                    message_post(access=accesses[author], text=text, client_id=None)
        self.stdout.write("Demo users (username / password):")
        for spec in demo["users"]:
            staff = "  (staff: can open /admin/)" if spec.get("is_staff") else ""
            self.stdout.write(f"  {spec['username']} / {spec['password']}{staff}")
        self.stdout.write("Rooms: " + ", ".join(r["name"] for r in demo["rooms"]))
