"""A one-line text progress bar for management commands (on stderr), redrawn at
most a few times a second so it costs nothing on big logs."""

import time
from typing import Any

from django.core.management.base import OutputWrapper


class ProgressBar:
    def __init__(self, *, label: str, unit: str, stream: Any, total: int = 0) -> None:
        self.label = label
        self.unit = unit
        self.stream = stream
        if isinstance(stream, OutputWrapper):
            stream.style_func = None  # a progress bar on stderr, not an error
        self.total = total
        self.done = 0
        self.drawn_at = 0.0

    def __call__(self, n: int) -> None:
        """Count `n` more items done."""
        self.set(self.done + n, self.total)

    def set(self, done: int, total: int) -> None:
        self.done, self.total = done, total
        now = time.monotonic()
        if now - self.drawn_at >= 0.25 or done >= total:
            self.drawn_at = now
            share = min(done / total, 1.0) if total else 1.0
            bar = "#" * int(share * 30)
            self._write(f"\r{self.label} [{bar:<30}] {done}/{total} {self.unit}")

    def end(self) -> None:
        self._write("\n")

    def _write(self, text: str) -> None:
        if isinstance(self.stream, OutputWrapper):
            self.stream.write(text, ending="")
        else:
            self.stream.write(text)
        self.stream.flush()
