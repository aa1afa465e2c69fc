"""Feed sources as changes (docs/architecture.md): what the Kubernetes watch and the feeds folder report, and when.

Both sources read GlobalThreatFeed manifests from somewhere that can change under them and report the same
four changes: a feed was added or changed (`FeedUpserted`), was deleted (`FeedDeleted`), has a manifest we
refuse (`FeedInvalid`), and "everything there is has now been reported" (`FeedsSynced`, after each full read).
`FeedTracker` is the memory that makes this exact: it remembers what it has reported for every name, so a
relist after 410 Gone, a watch resumed after a dropped connection, a status write echoed back as MODIFIED or a
folder poll report only what really changed, once. `Backoff` is the delay between reconnection attempts.

An invalid manifest never removes a feed: the consumer keeps whatever it has for that name (the last good spec
and set) and shows the message; only `FeedDeleted` ends a feed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from dnswatch.feeds.spec import FeedSpec, FeedSpecError, feed_spec_from_manifest
from dnswatch.kubewatch import Backoff  # one backoff for every long-lived stream, agent and collector

__all__ = [
    "INVALID_SPEC",
    "Backoff",
    "FeedChange",
    "FeedInvalid",
    "FeedDeleted",
    "FeedSink",
    "FeedTracker",
    "FeedUpserted",
    "FeedsSynced",
    "deliver",
    "invalid_spec_status_patch",
]

INVALID_SPEC = "InvalidSpec"
"""The `status.errorConditions` type a source writes for a manifest it refuses; cleared once the spec is valid."""

_MAX_ERROR_CONDITIONS = 10


@dataclass(frozen=True)
class FeedUpserted:
    """A feed appeared, or its spec changed: pull and match with this spec from now on."""

    spec: FeedSpec
    origin: str
    """Where the manifest came from: `GlobalThreatFeed/c2`, or a file path in folder mode."""


@dataclass(frozen=True)
class FeedDeleted:
    """The feed's manifest is gone: stop pulling and matching it."""

    name: str


@dataclass(frozen=True)
class FeedInvalid:
    """A manifest was refused; the feed of that name (if any) keeps its last good spec and set."""

    name: str | None
    """The feed's name; None when the manifest (or the whole file) has none that can be read."""
    message: str
    """What is wrong, naming the field (`spec.pull.period: "1m" is shorter than the minimum 5m`)."""
    origin: str
    """Where the manifest came from, as in `FeedUpserted.origin`."""


@dataclass(frozen=True)
class FeedsSynced:
    """Every feed the source holds has been reported; names never upserted since a start are not feeds."""

    count: int
    """How many valid feeds the source holds now."""


FeedChange = FeedUpserted | FeedDeleted | FeedInvalid | FeedsSynced


class FeedSink(Protocol):
    """A consumer of changes in callback form (`deliver` calls it)."""

    def upserted(self, spec: FeedSpec) -> Any: ...
    def removed(self, name: str) -> Any: ...
    def invalid(self, name: str | None, message: str) -> Any: ...


def deliver(change: FeedChange, sink: FeedSink) -> Any:
    """Call the sink's method for one change (nothing for `FeedsSynced`); returns what the method returns."""
    if isinstance(change, FeedUpserted):
        return sink.upserted(change.spec)
    if isinstance(change, FeedDeleted):
        return sink.removed(change.name)
    if isinstance(change, FeedInvalid):
        return sink.invalid(change.name, change.message)
    return None


class FeedTracker:
    """What a source has reported per feed name, turning full listings and single events into changes."""

    def __init__(self, *, allow_file_urls: bool = False) -> None:
        self._allow_file_urls = allow_file_urls
        self._fingerprints: dict[str, str] = {}
        self._valid: set[str] = set()
        self._problems: dict[str, str] = {}

    @property
    def names(self) -> frozenset[str]:
        """Names of the feeds held: ever valid and not deleted (one whose manifest turned invalid keeps its spec)."""
        return frozenset(self._valid)

    def relisted(self, manifests: Iterable[tuple[str, dict, str]]) -> list[FeedChange]:
        """The changes from a complete listing of (name, manifest, origin); ends with `FeedsSynced`."""
        changes: list[FeedChange] = []
        seen: set[str] = set()
        for name, manifest, origin in sorted(manifests, key=lambda item: item[0]):
            seen.add(name)
            changes += self.applied(name, manifest, origin)
        for name in sorted(set(self._fingerprints) - seen):
            changes += self.deleted(name)
        changes.append(FeedsSynced(len(self._valid)))
        return changes

    def applied(self, name: str, manifest: dict, origin: str) -> list[FeedChange]:
        """An ADDED or MODIFIED manifest: a change only when what makes the spec differs from last time."""
        fingerprint = _fingerprint(manifest)
        if self._fingerprints.get(name) == fingerprint:
            return []  # a status write, a label, a resync: nothing the feed depends on
        self._fingerprints[name] = fingerprint
        try:
            # Push feeds too: the collector is where their sets are pushed (`dnswatch feeds push`).
            spec = feed_spec_from_manifest(manifest, allow_file_urls=self._allow_file_urls, allow_push=True)
        except FeedSpecError as error:
            self._problems[name] = str(error)
            return [FeedInvalid(name, str(error), origin)]
        self._problems.pop(name, None)
        self._valid.add(name)
        return [FeedUpserted(spec, origin)]

    def deleted(self, name: str) -> list[FeedChange]:
        """A DELETED manifest (or one missing from a listing)."""
        if self._fingerprints.pop(name, None) is None:
            return []
        self._valid.discard(name)
        self._problems.pop(name, None)
        return [FeedDeleted(name)]

    def problems(self) -> dict[str, str]:
        """Why each refused manifest was refused, by name (a copy: another thread may read it)."""
        return dict(self._problems)

    def problem(self, name: str) -> str | None:
        """Why the last manifest seen for `name` was refused; None when it was valid (or never seen)."""
        return self._problems.get(name)


def _fingerprint(manifest: dict) -> str:
    # Everything but metadata and status: resourceVersion, generation and our own status writes change
    # those without changing the feed.
    relevant = {key: value for key, value in manifest.items() if key not in ("metadata", "status")}
    relevant["name"] = (manifest.get("metadata") or {}).get("name") if isinstance(manifest, dict) else None
    return json.dumps(relevant, sort_keys=True, default=str)


def invalid_spec_status_patch(manifest: dict, problem: str | None) -> dict | None:
    """The `status` merge patch that makes the object's InvalidSpec condition say `problem` (None: valid).

    None when the status already says so, which is what stops a status write, echoed back by the watch as
    MODIFIED, from causing another one. Other condition types are kept; the list stays within 10.
    """
    status = manifest.get("status") or {}
    conditions = [c for c in status.get("errorConditions") or [] if isinstance(c, dict)]
    others = [c for c in conditions if c.get("type") != INVALID_SPEC]
    wanted = others if problem is None else (others + [{"type": INVALID_SPEC, "message": problem}])
    wanted = wanted[-_MAX_ERROR_CONDITIONS:]
    if wanted == conditions:
        return None
    return {"errorConditions": wanted}
