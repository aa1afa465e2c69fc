"""The wait after a failed attempt of a loop that follows the store (the forwarders, the webhook dispatch):
exponential, with jitter, cut short when the loop is told to stop."""

from __future__ import annotations

import asyncio
import contextlib
import random

__all__ = ["pause_after_failure"]


async def pause_after_failure(stop: asyncio.Event, failures: int, first_seconds: float, most_seconds: float) -> None:
    """Wait `first_seconds` doubled for each failure in a row after the first, at most `most_seconds`, times a
    random half to whole (so that loops failing together do not try again together); or until `stop` is set."""
    delay = min(most_seconds, first_seconds * 2 ** min(failures - 1, 16))
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), delay * random.uniform(0.5, 1.0))
