"""`manage.py verify_log [--room R]`: walk every stream's hash chain (or one room's)
and report the first broken link; exit code 1 when one is found.

Progress goes to stderr, the verdicts to stdout.
"""

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Sum
from tqdm import tqdm

from events.models import Stream
from events.verify import log_verify


class Command(BaseCommand):
    help = "Verify the hash chains of the event log; exit 1 on the first broken link."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--room", help="Verify only this room's stream (room name).")
        parser.add_argument("--stream", help="Verify only this stream (stream key, e.g. blog).")

    def handle(self, *args: Any, **options: Any) -> None:
        streams: list[Stream] | None = None
        if options["room"]:
            streams = list(Stream.objects.filter(room__name=options["room"]))
            if not streams:
                raise CommandError(f"There is no room named {options['room']!r}.")
        elif options["stream"]:
            streams = list(Stream.objects.filter(key=options["stream"]))
            if not streams:
                raise CommandError(f"There is no stream with key {options['stream']!r}.")
        qs = Stream.objects.filter(pk__in=[s.pk for s in streams]) if streams is not None else Stream.objects.all()
        total = qs.aggregate(total=Sum("head"))["total"] or 0
        # tqdm redraws one line with "\r": no line ending or error colour from the wrapper.
        self.stderr.ending, self.stderr.style_func = "", None
        progress = tqdm(total=total, desc="verifying", unit=" events", file=self.stderr, mininterval=0.25)
        checked = events = 0
        for verdict in log_verify(streams=streams, progress=progress.update):
            checked += 1
            events += verdict.events
            if verdict.broken is not None:
                progress.close()
                b = verdict.broken
                self.stdout.write(
                    f"BROKEN {b.stream_key} seq {b.seq}: {b.what}\n  expected {b.expected}\n  found    {b.found}"
                )
                sys.exit(1)
        progress.close()
        self.stdout.write(f"OK: {checked} streams, {events} events verified.")
