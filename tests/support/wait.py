"""Waiting for a condition in tests: poll it, never sleep a fixed time."""

import time
from collections.abc import Callable


def wait_until[T](condition: Callable[[], T], timeout: float = 30.0, what: str = "condition") -> T:
    """The first truthy value of `condition()`, polled every 50 ms; AssertionError after `timeout`."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
