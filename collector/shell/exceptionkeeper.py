"""The collector's alert exceptions: held by name, applied to the events the store ingests and re-applied
to the events stored before whenever the active set changes (docs/alert-operations.md).

The set is active at an instant: an exception added, changed or removed, or one whose startTime, endTime or
period passes, changes it. Each change gives the store a new marker at once (every event ingested from then
on is marked by it) and re-marks the stored events in pages, off the event loop (`remark_events`); a change
during a re-mark starts it again with the newer set. After a re-mark, the events written while it ran are
re-marked once more, so a batch prepared with the older set just before the change is marked too.

    keeper = ExceptionKeeper(store)
    keeper.replace({"ci": manifest})        # from the folder or the Kubernetes source
    task = asyncio.create_task(keeper.run())
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from dnswatch.alerting.exceptions import AlertException, ExceptionSet, next_boundary, read_alert_exception

__all__ = ["ExceptionKeeper"]

log = logging.getLogger(__name__)


class ExceptionKeeper:
    """The exceptions by name and the marker in force. Only the event loop that runs `run` may call it."""

    def __init__(self, store: Any, *, clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
                 page_size: int = 5000) -> None:
        self._store = store
        self._clock = clock
        self._page_size = page_size
        self._exceptions: dict[str, AlertException] = {}
        self._key: tuple[tuple[str, str], ...] | None = None
        self._changed = asyncio.Event()
        self.remarks = 0
        """Re-marks completed (for tests and logs)."""
        self.last_remark_seconds: float | None = None
        """How long the last re-mark took."""

    @property
    def exceptions(self) -> list[AlertException]:
        """Every exception held, by name."""
        return [self._exceptions[name] for name in sorted(self._exceptions)]

    def get(self, name: str) -> AlertException | None:
        return self._exceptions.get(name)

    def replace(self, manifests: Mapping[str, Mapping[str, Any]]) -> None:
        """Hold exactly these exceptions (name -> manifest), read and validated here."""
        self._exceptions = {name: read_alert_exception(manifest, name) for name, manifest in manifests.items()}
        for exception in self._exceptions.values():
            for condition in exception.conditions:
                log.warning("AlertException %s is not applied: %s", exception.name, condition.message)
        self._changed.set()

    def upsert(self, name: str, manifest: Mapping[str, Any]) -> AlertException:
        exception = self._exceptions[name] = read_alert_exception(manifest, name)
        self._changed.set()
        return exception

    def delete(self, name: str) -> None:
        if self._exceptions.pop(name, None) is not None:
            self._changed.set()

    def active_set(self) -> ExceptionSet:
        return ExceptionSet(self._exceptions.values(), self._clock())

    async def run(self, *, first_replace: bool = False) -> None:
        """Apply the set whenever it changes (or a start or end passes), for ever. With `first_replace`, only
        once the source has said what the exceptions are (`replace`): the marks stored stay as they are until
        then, rather than being cleared and made again at every start."""
        if first_replace:
            await self._changed.wait()
        while True:
            now = self._clock()
            active = ExceptionSet(self._exceptions.values(), now)
            if active.key != self._key:
                self._key = active.key
                marker = active.mark if active else None
                self._store.set_event_marker(marker)
                await self._remark(marker)
                if self._changed.is_set() and self._key != ExceptionSet(self._exceptions.values(),
                                                                        self._clock()).key:
                    continue  # changed again meanwhile: at once, with the newer set
            boundary = next_boundary(self._exceptions.values(), now)
            timeout = None if boundary is None else max(0.0, (boundary - self._clock()).total_seconds()) + 0.01
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout)
            except asyncio.TimeoutError:
                pass

    async def _remark(self, marker: Any) -> None:
        started = time.monotonic()
        before = await self._store.latest_event_seq()
        changed = await self._store.remark_events(marker, page_size=self._page_size)
        if marker is not None and await self._store.latest_event_seq() != before:
            changed += await self._store.remark_events(marker, page_size=self._page_size, after_seq=before)
        self.last_remark_seconds = time.monotonic() - started
        self.remarks += 1
        log.info("alert exceptions: %d active, %d stored events re-marked in %.1f s",
                 len(self._key or ()), changed, self.last_remark_seconds)

    async def excepted_counts(self) -> dict[str, int]:
        """Stored events marked by each exception."""
        return await self._store.excepted_counts()
