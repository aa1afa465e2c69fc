"""A one-line progress display for long replays, shown only when stderr is a terminal."""

from __future__ import annotations

import time
from typing import TextIO


class Progress:
    """Redraws `  big.pcap (1/2)  1,234,567 DNS messages  310,000/s` in place, on a terminal only."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._started = time.perf_counter()
        self._drawn = False

    @classmethod
    def on_terminal(cls, stream: TextIO) -> Progress | None:
        return cls(stream) if stream.isatty() else None

    def __call__(self, label: str, messages: int) -> None:
        elapsed = time.perf_counter() - self._started
        rate = messages / elapsed if elapsed > 0 else 0
        self._stream.write(f"\r\033[K  {label}  {messages:,} DNS messages  {rate:,.0f}/s")
        self._stream.flush()
        self._drawn = True

    def done(self) -> None:
        if self._drawn:
            self._stream.write("\r\033[K")
            self._stream.flush()
