"""A one-line progress display for long replays, shown only when stderr is a terminal."""

from __future__ import annotations

import time
from typing import TextIO


class Progress:
    """Redraws `   40%  big.pcap (3/5)  1,234,567 DNS messages  310,000/s` in place, on a terminal only: the share
    of all the captures' bytes replayed before this file, the file, and this file's messages so far."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._label = ""
        self._started = time.perf_counter()
        self._drawn = False

    @classmethod
    def on_terminal(cls, stream: TextIO) -> Progress | None:
        return cls(stream) if stream.isatty() else None

    def __call__(self, label: str, messages: int, share_done: float) -> None:
        if label != self._label:  # a new file: its rate is its own
            self._label, self._started = label, time.perf_counter()
        elapsed = time.perf_counter() - self._started
        rate = f"  {messages / elapsed:,.0f}/s" if messages and elapsed > 0 else ""
        self._stream.write(f"\r\033[K  {share_done:4.0%}  {label}  {messages:,} DNS messages{rate}")
        self._stream.flush()
        self._drawn = True

    def done(self) -> None:
        if self._drawn:
            self._stream.write("\r\033[K")
            self._stream.flush()
