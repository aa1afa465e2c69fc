"""GlobalThreatFeeds of two API groups as one set of feeds (docs/globalthreatfeed.md#calicos-resources).

A cluster running Calico holds its feeds as `projectcalico.org/v3` GlobalThreatFeeds; the collector reads
them beside its own `dnswatch.dev/v1` ones, so they need no rewriting. Each group is watched by a source of
its own; `FeedMerge` turns their changes into the changes of one source. When both groups hold a feed of
the same name, **the first group given (ours, `dnswatch.dev/v1`) wins**: a `dnswatch.dev/v1` feed is
written for dnswatch on purpose, so it overrides Calico's of the same name, and the Calico one is shown
among the refused manifests as shadowed, until the dnswatch one is deleted and it takes over. Pure.
"""

from __future__ import annotations

from collector.core.watchloop import FeedChange, FeedDeleted, FeedInvalid, FeedsSynced, FeedUpserted
from dnswatch.feeds.feedinfo import RefusedManifest

__all__ = ["CALICO_GROUP", "FeedMerge", "calico_status"]

CALICO_GROUP = "projectcalico.org"


class FeedMerge:
    """The changes of several sources (index 0 first in precedence) as the changes of one."""

    def __init__(self, sources: int) -> None:
        self._present: list[dict[str, str]] = [{} for _ in range(sources)]
        """Per source: the names it holds an object of (valid or not), with the object's origin."""
        self._specs: list[dict[str, FeedUpserted]] = [{} for _ in range(sources)]
        """Per source: the last valid manifest of each name."""
        self._last: list[dict[str, FeedUpserted | FeedInvalid]] = [{} for _ in range(sources)]
        """Per source: the last change of each name it holds."""
        self._synced = [False] * sources

    def winner(self, name: str) -> int | None:
        """The source whose object of that name is the feed (the first holding one), or None."""
        return next((index for index, present in enumerate(self._present) if name in present), None)

    def take(self, index: int, change: FeedChange) -> list[FeedChange]:
        """The merged changes that one change of source `index` makes."""
        started = all(self._synced)
        if isinstance(change, FeedsSynced):
            self._synced[index] = True
            if not all(self._synced):
                return []
            synced = FeedsSynced(sum(1 for name in self._names() if self._in_force(name) is not None))
            return [synced] if started else [*self._state(), synced]
        if isinstance(change, FeedInvalid) and change.name is None:
            return [change]
        if isinstance(change, (FeedUpserted, FeedInvalid)):
            name = change.spec.name if isinstance(change, FeedUpserted) else change.name
            assert name is not None
            self._present[index][name] = change.origin
            self._last[index][name] = change
            if isinstance(change, FeedUpserted):
                self._specs[index][name] = change
            if not started:
                # Until every source has listed, nobody knows which object of a name wins: a Calico feed
                # listed first must not be pulled as the feed, only to be replaced by ours a moment later.
                return []
            # The winner's change is the feed's (it may take over from a later source's object of that name).
            return [change] if index == self.winner(name) else []  # else shadowed
        assert isinstance(change, FeedDeleted)
        name = change.name
        was = self.winner(name)
        self._present[index].pop(name, None)
        self._specs[index].pop(name, None)
        self._last[index].pop(name, None)
        now = self.winner(name)
        if was != index or not started:
            return []
        if now is None:
            return [change]
        taking_over = self._specs[now].get(name)
        return [taking_over] if taking_over is not None else [change]

    def shadowed(self) -> list[RefusedManifest]:
        """The objects not used because a source first in precedence holds one of the same name."""
        refused = []
        for name in sorted(self._names()):
            first = self.winner(name)
            assert first is not None
            for later in range(first + 1, len(self._present)):
                origin = self._present[later].get(name)
                if origin is not None:
                    refused.append(RefusedManifest(origin, name, f"not used: {self._present[first][name]} "
                                                                 f"of the same name takes precedence"))
        return refused

    def _state(self) -> list[FeedChange]:
        """Each name's winning manifest: its last valid spec, then its refusal if the last one was refused."""
        changes: list[FeedChange] = []
        for name in sorted(self._names()):
            first = self.winner(name)
            assert first is not None
            spec, last = self._specs[first].get(name), self._last[first][name]
            changes += [c for c in (spec, last if isinstance(last, FeedInvalid) else None) if c is not None]
        return changes

    def _names(self) -> set[str]:
        return {name for present in self._present for name in present}

    def _in_force(self, name: str) -> FeedUpserted | None:
        first = self.winner(name)
        return None if first is None else self._specs[first].get(name)


def calico_status(status: dict) -> dict:
    """The part of a status a `projectcalico.org/v3` object holds: Calico's fields only (`lastSuccessfulSync`,
    `errorConditions` of `type` and `message`), which Calico's API server accepts; the rest (entries,
    version, counts) stays in the collector, shown by `dnswatch feeds get`."""
    shown: dict = {}
    if "lastSuccessfulSync" in status:
        shown["lastSuccessfulSync"] = status["lastSuccessfulSync"]
    if "errorConditions" in status:
        shown["errorConditions"] = [{"type": c.get("type"), "message": c.get("message")}
                                    for c in status["errorConditions"] or [] if isinstance(c, dict)]
    return shown
