"""What every harness checks besides its own invariants: a hang is a failure, as a crash is.

libFuzzer's own `-timeout` counts whole seconds and only catches an input that never ends; a parser that
takes 200 ms for a 4 KiB input is the same hole on a busy node (one hostile packet per second stalls the
agent), so each input is timed here, in CPU time of the fuzzing thread: on a shared machine a call can wait
tens of milliseconds for a core without doing any more work, and that is no hang. A slow first run is run
twice more before it counts (a garbage collection can still land in any one call); an input is a hang only
when every run of it is over the limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

HANG_MS = 50.0
RETRIES = 2


class Hang(Exception):
    """One input took longer than `HANG_MS` on every try: atheris reports it, and saves it, as a crash."""


class InvariantBroken(AssertionError):
    """A harness's cheap cross-check failed: the code under test gave an answer that cannot be right."""


def check(condition: bool, what: str) -> None:
    """Raise `InvariantBroken(what)` unless `condition` (kept under `python -O`, unlike `assert`)."""
    if not condition:
        raise InvariantBroken(what)


def bounded(one_input: Callable[[bytes], None], limit_ms: float = HANG_MS) -> Callable[[bytes], None]:
    """`one_input`, failing with `Hang` for an input slower than `limit_ms` on each of 1 + RETRIES runs."""

    def timed(data: bytes) -> None:
        best = None
        for _ in range(1 + RETRIES):
            started = time.thread_time()
            one_input(data)
            elapsed = (time.thread_time() - started) * 1000
            if elapsed <= limit_ms:
                return
            best = elapsed if best is None else min(best, elapsed)
        raise Hang(f"one input of {len(data)} bytes took {best:.1f} ms of CPU at best (limit {limit_ms:g} ms)")

    timed.__name__ = getattr(one_input, "__name__", "timed")
    return timed


@dataclass(frozen=True)
class Target:
    """One harness: what it fuzzes and how to seed it."""

    name: str
    """What `python -m fuzz NAME` calls it."""
    covers: str
    """One line: the code under test and the oracle."""
    one_input: Callable[[bytes], None]
    """Runs one input; raises on a finding (anything but the documented rejections is one)."""
    seeds: Callable[[], list[bytes]]
    """The seed inputs, built from the repository's captures and feeds when the run starts."""
    max_len: int = 4096
    """libFuzzer's -max_len: the largest input it makes (seeds are kept below it)."""
