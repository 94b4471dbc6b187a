"""The fixed windows of chat.ratelimit (window = time.time() // seconds, the same
clock in the test and its servers), so a test of the limit never straddles a
window boundary by chance."""

import asyncio
import time


def window_of(seconds: float, now: float | None = None) -> int:
    return int((time.time() if now is None else now) // seconds)


def _wait(seconds: float, need: float) -> float:
    """How long to sleep so that at least `need` s of a window remain (0: they do now)."""
    now = time.time()
    left = seconds - now % seconds
    return 0.0 if left >= need else left + 0.01


def fresh_window(seconds: float, need: float) -> int:
    """Block until at least `need` s of the current window remain; its index."""
    time.sleep(_wait(seconds, need))
    return window_of(seconds)


async def afresh_window(seconds: float, need: float) -> int:
    """fresh_window, for async tests."""
    await asyncio.sleep(_wait(seconds, need))
    return window_of(seconds)
