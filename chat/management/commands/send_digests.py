"""`manage.py send_digests [--date YYYY-MM-DD] [--dry-run]`: queue a day's digests by hand.

Default day: yesterday in TIME_ZONE (what the beat task sends at DIGEST_HOUR).
Users who already have that day's digest are skipped, so it is safe to rerun.
"""

from datetime import date, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from tqdm import tqdm

from chat.digest import digest_send
from notifications.tasks import outbox_send_task


class Command(BaseCommand):
    help = "Queue the daily digest emails of one day."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", help="The day to summarise, YYYY-MM-DD (default: yesterday).")
        parser.add_argument("--dry-run", action="store_true", help="Count, render, queue nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            day = date.fromisoformat(options["date"]) if options["date"] else timezone.localdate() - timedelta(days=1)
        except ValueError as exc:
            raise CommandError("--date must be YYYY-MM-DD.") from exc
        # tqdm redraws one line with "\r": no line ending or error colour from the wrapper.
        self.stderr.ending, self.stderr.style_func = "", None
        bar = tqdm(total=0, desc="digests", unit=" users", file=self.stderr, mininterval=0.25)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        report = digest_send(day=day, dry_run=options["dry_run"], progress=progress)
        bar.close()
        if report.queued:
            outbox_send_task.delay_on_commit()
        done = f"would queue {report.users}" if options["dry_run"] else f"queued {report.queued}"
        self.stdout.write(f"{report.day}: {report.rooms} active rooms, {report.users} users, {done} emails")
