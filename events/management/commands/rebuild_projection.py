"""`manage.py rebuild_projection NAME`: reset a projection's checkpoint to zero and replay the log.

Safe to run at any time: projections insert their output with unique keys and
ignore conflicts, so the output is the same and no email is queued twice.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from events.projections import projection_names, projection_rebuild


class Command(BaseCommand):
    help = "Reset a projection's checkpoint and re-apply the whole event log."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help=f"One of: {', '.join(projection_names())}")
        parser.add_argument("--batch-size", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = projection_rebuild(name=options["name"], batch_size=options["batch_size"])
        except LookupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{report.name}: replayed {report.events} events in {report.batches} batches")
