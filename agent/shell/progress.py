"""A one-line progress display for long replays, shown only when stderr is a terminal."""

from __future__ import annotations

import time
from typing import TextIO


class Progress:
    """Redraws `  42%  1,234,567 packets  310,000 packets/s` in place; silent when not on a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._started = time.perf_counter()
        self._drawn = False

    @classmethod
    def on_terminal(cls, stream: TextIO) -> Progress | None:
        return cls(stream) if stream.isatty() else None

    def __call__(self, done_bytes: int, total_bytes: int, packets: int) -> None:
        elapsed = time.perf_counter() - self._started
        percent = 100 * done_bytes / total_bytes if total_bytes else 0
        rate = packets / elapsed if elapsed > 0 else 0
        self._stream.write(f"\r  {percent:3.0f}%  {packets:,} packets  {rate:,.0f} packets/s ")
        self._stream.flush()
        self._drawn = True

    def done(self) -> None:
        if self._drawn:
            self._stream.write("\r\033[K")
            self._stream.flush()
