"""The collector's feed state: every feed's spec, status and set in force, kept in step with the store.

The hub sits between the parts that change feeds and the parts that show or ship them:

    source (folder or Kubernetes) --FeedChange--> hub.apply ---------> puller.set_feed / remove_feed
    puller --PullResult--> hub.record_pull --> store (last good set + status), compiled set, subscribers
    Feeds servicer  <-- hub.feeds / hub.feed / hub.sync
    FeedDistribution servicer <-- hub.subscribe + hub.updates_for(name, held_version)

A restart restores every stored set at its version before any pull (`restore`), so agents resuming with a
version get nothing or a delta, not a snapshot. A subscriber is told only *which* feeds changed; it asks
`updates_for` with the version it last sent, so a slow stream skips the versions it missed instead of
queueing them, and every subscriber shares the same encoded snapshot and delta of a version.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

from dnswatch.feeds.entrylines import EntryLines
from dnswatch.feeds.formats import NEWLINE_DELIMITED, FeedFormat
from dnswatch.feeds.spec import DEFAULT_SEVERITY, FeedSpec
from dnswatch.feeds.wire import FeedDelta, FeedRemoved, FeedUpdate
from dnswatch.urlredact import redact_urls, redacted_url
from dnswatch.errors import DnswatchError
from dnswatch.feeds.feedinfo import FeedInfo, RefusedManifest
from collector.core.feedsets import CompiledFeed, compile_feed, delta_between, update_from
from dnswatch.feeds.outcomes import REFUSED, UNCHANGED, UPDATED
from collector.core.pulling import Validators
from collector.core.pushing import judge_push
from dnswatch.feeds.status import MAX_ERROR_CONDITIONS, ErrorCondition, FeedStatus
from collector.core.watchloop import INVALID_SPEC, FeedChange, FeedDeleted, FeedInvalid, FeedsSynced, FeedUpserted
from collector.shell.puller import FeedPuller, FeedState, PullResult
from collector.store import Store, StoreError, VersionConflict

__all__ = ["FeedDisabled", "FeedHub", "FeedHubError", "PushRefused", "StatusSink", "Subscription", "UnknownFeed",
           "WrongFeedKind"]

log = logging.getLogger(__name__)

StatusSink = Callable[[str, dict], Awaitable[object]]
"""Where a feed's status goes besides the store (Kubernetes mode: the GlobalThreatFeed's status subresource)."""
Refusals = Callable[[], "list[RefusedManifest]"]
"""The manifests the source refuses now (each source knows its own; the hub only shows them)."""

_MATCH_SUBDOMAINS = "matchSubdomains"
"""Kept in the stored status beside FeedStatus's fields: how the stored set was compiled, so a restart rebuilds
the very table agents hold at that version (FeedStatus.from_dict ignores the extra key)."""
_VALIDATORS = "validators"
"""Kept in the stored status too: the ETag / Last-Modified of the stored set's body and which feed (URL,
content, format) it came from, so a restarted collector's first pull of an unchanged feed is a conditional GET
answered 304, not the whole body again."""
_REJECTED_SAMPLES = "rejectedSamples"
"""Kept in the stored status too: a few rejected lines of the set in force, which `dnswatch feeds get` shows
after a restart as before it (FeedStatus.to_dict leaves them out: the resource's status has no such field)."""
_PUSHED_FORMAT = "pushedFormat"
"""Kept in the stored status of a push feed: the format its set in force was pushed in."""
_CONTEXT = "context"
"""Kept in the stored status too: the labels and severity the stored set was sent with, so a restart serves the
version agents hold with what it meant, and a manifest that did not change makes no new version."""
_OLDER_VERSIONS_KEPT = 2  # compiled older sets kept in memory as delta sources; the store keeps more


class FeedHubError(DnswatchError):
    """A request about feeds that cannot be served; the message says why."""


class UnknownFeed(FeedHubError):
    """No feed of that name."""


class FeedDisabled(FeedHubError):
    """The feed is `mode: Disabled` (or its spec is not known yet), so it is not pulled."""


class WrongFeedKind(FeedHubError):
    """A push to a pulled feed, or a sync of a push feed."""


class PushRefused(FeedHubError):
    """A pushed body that cannot be read or yields no usable entry; the set in force stays."""


@dataclass(eq=False)
class _Feed:
    name: str
    status: FeedStatus = FeedStatus()
    spec: FeedSpec | None = None
    """None for a feed restored from the store whose manifest the source has not reported yet."""
    content: str = ""
    current: CompiledFeed | None = None
    older: dict[int, CompiledFeed] = field(default_factory=dict)
    deltas: dict[int, FeedDelta | None] = field(default_factory=dict)
    """Deltas to `current` by the version they start from (None: the snapshot is the better answer)."""
    invalid: str | None = None
    """The message of the last refused manifest of this name, until a valid one comes."""
    source: str = ""
    """Where the manifest in force came from (`FeedUpserted.origin`)."""
    pushed_format: str = ""
    """A push feed's: the format kind the set in force was pushed in (its samples read in that light)."""
    validators: Validators = Validators()
    """ETag / Last-Modified of the set in force, as the puller last reported them (or the store kept)."""
    validators_for: str = ""
    """Which feed those validators describe (`_identity` of its spec); restored ones apply only to it."""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held while a delta to `current` is made, so concurrent subscribers make it once."""
    results: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held while a pull result is installed: results of one feed apply in order."""
    pushes: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held from reading the status a push starts from to installing its set: pushes apply one at a time."""

    @property
    def distributed(self) -> bool:
        return self.current is not None and (self.spec is None or self.spec.enabled)


class Subscription:
    """Which feeds changed since the subscriber last looked; one per agent stream."""

    def __init__(self) -> None:
        self._changed: set[str] = set()
        self._event = asyncio.Event()
        self.closed = False
        """The hub is shutting down: the stream should end."""

    def notify(self, name: str) -> None:
        self._changed.add(name)
        self._event.set()

    def close(self) -> None:
        self.closed = True
        self._event.set()

    async def changed(self) -> set[str] | None:
        """Waits for at least one change; the names of the feeds that changed since the last call, or None
        once the hub is closing."""
        await self._event.wait()
        if self.closed:
            return None
        self._event.clear()
        names, self._changed = self._changed, set()
        return names


class FeedHub:
    """The feeds of one collector. Build it, `attach` the puller, `restore`, then feed it changes and results."""

    def __init__(self, store: Store, *, status_sink: StatusSink | None = None,
                 snapshot_part_bytes: int | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                 refusals: Refusals | None = None) -> None:
        """`status_sink` also receives every new status; `snapshot_part_bytes` overrides the part size (tests);
        `clock` dates pushes; `refusals` tells which manifests the source refuses."""
        self._store = store
        self._status_sink = status_sink
        self._refusals = refusals
        self._clock = clock
        self._part_bytes = snapshot_part_bytes
        self._puller: FeedPuller | None = None
        self._feeds: dict[str, _Feed] = {}
        self._subscriptions: set[Subscription] = set()
        self._closing = False

    def attach(self, puller: FeedPuller) -> None:
        """The puller whose results come to `record_pull`; feeds the source reports are handed to it."""
        self._puller = puller

    # ------------------------------------------------------------------------------------------ start-up

    async def restore(self) -> int:
        """Load every stored feed (last good set, version, status); the number of sets restored."""
        restored = 0
        for header in await self._store.list_feeds():
            feed = self._feeds.setdefault(header.name, _Feed(header.name))
            feed.status = _status_from_store(header.name, header.status)
            feed.validators, feed.validators_for = _validators_from_store(header.status)
            feed.content = header.content
            kept_format = (header.status or {}).get(_PUSHED_FORMAT)
            feed.pushed_format = kept_format if isinstance(kept_format, str) else ""
            if header.version == 0:
                continue
            stored = await self._store.load_feed(header.name)
            if stored is None:
                continue
            subdomains = bool((header.status or {}).get(_MATCH_SUBDOMAINS, False))
            labels, severity = _context_from_store(header.status)
            try:
                feed.current = await asyncio.to_thread(
                    compile_feed, stored.name, stored.content, stored.version, stored.sha256, stored.entries,
                    subdomains, labels, severity)
            except ValueError as error:
                log.error("feed %s: the stored set cannot be used (%s); it is pulled again", header.name, error)
                continue
            # The store's row is the truth about the set in force, whatever the saved status says.
            feed.status = replace(feed.status, version=stored.version, sha256=stored.sha256,
                                  entries=len(stored.entries))
            restored += 1
        log.info("restored %d feed sets from the %s store", restored, self._store.backend)
        return restored

    # ------------------------------------------------------------------------------------------ sources

    async def apply(self, change: FeedChange) -> None:
        """Take one change from the folder or Kubernetes source."""
        if isinstance(change, FeedUpserted):
            await self._upsert(change.spec)
            self._feeds[change.spec.name].source = change.origin
        elif isinstance(change, FeedDeleted):
            await self._remove(change.name)
        elif isinstance(change, FeedInvalid):
            message = redact_urls(change.message)  # it may quote the manifest's URL, credentials and all
            log.warning("feed manifest refused: %s", message)
            feed = self._feeds.get(change.name) if change.name else None
            if feed is not None:
                feed.invalid = message
        elif isinstance(change, FeedsSynced):
            # Feeds restored from the store whose manifest is gone (deleted while the collector was away).
            for name in [n for n, f in self._feeds.items() if f.spec is None and f.invalid is None]:
                log.info("feed %s: no manifest any more; its stored set is dropped", name)
                await self._remove(name)

    async def _upsert(self, spec: FeedSpec) -> None:
        puller = self._require_puller()
        feed = self._feeds.get(spec.name)
        if feed is None:
            feed = self._feeds[spec.name] = _Feed(spec.name, content=spec.content)
        old, was_distributed = feed.spec, feed.distributed
        feed.spec, feed.invalid = spec, None
        current = feed.current
        recompile = (current is not None and current.content == spec.content
                     and (current.match_subdomains != spec.match_subdomains
                          or (current.labels, current.severity) != (spec.labels, spec.severity)))
        if spec.pushed:
            # Nothing to pull: the set in force (restored, or pushed before) stays until the next push.
            if old is not None and not old.pushed:
                puller.remove_feed(spec.name)
            if recompile:
                async with feed.results:
                    await self._recompile(feed, spec)
        else:
            state: FeedState | None = None
            if old is None or old.pushed:
                # What the store kept: the puller's schedule starts from it, and its first pull is conditional
                # when the set in force came from this very feed - unless the set's lines are wanted and not
                # held (bodies are kept in memory only): a 304 would leave events without their `line` until
                # the feed changed, so a line feed's first pull after a restart downloads its body once.
                same = (feed.current is not None and feed.validators_for == _identity(spec)
                        and not _lines_wanted(feed.current, spec))
                state = FeedState(feed.status, feed.validators if same else Validators())
            if recompile:
                async with feed.results:  # not interleaved with a pull result installing another version
                    status = await self._recompile(feed, spec)
                state = replace(state if state is not None else puller.state(feed.name), status=status)
            puller.set_feed(spec, state)
        if was_distributed != feed.distributed or recompile:
            self._notify(spec.name)

    async def _recompile(self, feed: _Feed, spec: FeedSpec) -> FeedStatus:
        # Same entries, other tagged hashes (or other labels or severity): agents need it as a new version, or
        # their digests disagree (or their events say what the feed no longer does).
        current = feed.current
        assert current is not None
        version = max(current.version, feed.status.version) + 1
        compiled = await asyncio.to_thread(compile_feed, feed.name, current.content, version, current.sha256,
                                           current.entries, spec.match_subdomains, spec.labels, spec.severity,
                                           current.lines)
        status = replace(feed.status, version=version)
        await self._save_set(feed, compiled, status)
        return status

    async def _remove(self, name: str) -> None:
        feed = self._feeds.pop(name, None)
        if self._puller is not None:
            self._puller.remove_feed(name)
        try:
            await self._store.delete_feed(name)
        except StoreError as error:
            log.error("feed %s: cannot delete it from the store: %s", name, error)
        if feed is not None:
            self._notify(name)

    # ------------------------------------------------------------------------------------------ pulls

    async def record_pull(self, result: PullResult) -> None:
        """The puller's `on_result`: install a new set, or keep the one in force with the new status."""
        feed = self._feeds.get(result.feed)
        if feed is None:
            return  # removed while it was pulled
        async with feed.results:  # per feed: compiling one large feed does not hold up the others' results
            if self._feeds.get(result.feed) is not feed:
                return
            status = result.status
            if feed.spec is not None:
                feed.validators, feed.validators_for = result.state.validators, _identity(feed.spec)
            if result.outcome == UPDATED and result.parsed is not None:
                spec = feed.spec
                content = spec.content if spec is not None else feed.content
                subdomains = spec.match_subdomains if spec is not None else False
                labels, severity = _context_of(spec, feed.current)
                lines = await asyncio.to_thread(_lines_of, result, spec, content)
                compiled = await asyncio.to_thread(compile_feed, feed.name, content, status.version, status.sha256,
                                                   result.parsed.entries, subdomains, labels, severity, lines)
                await self._save_set(feed, compiled, status)
            else:
                if result.outcome == UNCHANGED and result.body is not None and feed.current is not None:
                    # The same set from another body (lines moved, comments changed): lines are the latest body's.
                    lines = await asyncio.to_thread(_lines_of, result, feed.spec, feed.current.content)
                    feed.current = replace(feed.current, lines=lines)
                if status == feed.status:
                    return
                feed.status = status
                try:
                    await self._store.save_status(feed.name, _stored_status(status, feed))
                except StoreError as error:
                    log.error("feed %s: cannot save its status: %s", feed.name, error)
            await self._write_status(feed)

    async def _save_set(self, feed: _Feed, compiled: CompiledFeed, status: FeedStatus) -> None:
        try:
            await self._store.save_feed(feed.name, content=compiled.content, version=compiled.version,
                                        sha256=compiled.sha256, entries=compiled.entries,
                                        status=_stored_status(status, feed, compiled))
        except VersionConflict as error:
            log.error("feed %s: the store holds version %d already (another collector?): %s",
                      feed.name, error.current_version, error)
        except StoreError as error:
            log.error("feed %s: cannot save version %d: %s; it is served but lost on restart",
                      feed.name, compiled.version, error)
        previous = feed.current
        if previous is not None and previous.version != compiled.version:
            feed.older[previous.version] = previous
            for version in sorted(feed.older)[:-_OLDER_VERSIONS_KEPT]:
                del feed.older[version]
        feed.current, feed.status, feed.content, feed.deltas = compiled, status, compiled.content, {}
        self._notify(feed.name)

    async def _write_status(self, feed: _Feed) -> None:
        if self._status_sink is None:
            return
        try:
            # As shown (an InvalidSpec condition included), so a write does not erase what the source wrote.
            await self._status_sink(feed.name, _info(feed).status.to_dict())
        except Exception as error:  # noqa: BLE001 - a status write must never stop the feeds
            log.warning("feed %s: cannot write its status: %s", feed.name, error)

    # ------------------------------------------------------------------------------------------ consumers

    def feeds(self) -> list[FeedInfo]:
        """Every feed, sorted by name."""
        return [_info(self._feeds[name]) for name in sorted(self._feeds)]

    def spec(self, name: str) -> FeedSpec | None:
        """The manifest in force of a feed as the source read it; None for no such feed, or none read yet."""
        feed = self._feeds.get(name)
        return feed.spec if feed is not None else None

    def refused(self) -> list[RefusedManifest]:
        """The manifests the source refuses now, by origin; their messages redacted (they may quote a URL)."""
        found = self._refusals() if self._refusals is not None else []
        return sorted((replace(r, message=redact_urls(r.message)) for r in found), key=lambda r: r.origin)

    def feed(self, name: str) -> FeedInfo:
        """One feed; UnknownFeed when there is none."""
        feed = self._feeds.get(name)
        if feed is None:
            raise UnknownFeed(f"no feed named {name!r}")
        return _info(feed)

    async def sync(self, name: str) -> tuple[FeedInfo, PullResult]:
        """Pull the feed now; once the pull has ended, the feed and what the pull did. UnknownFeed or
        FeedDisabled. It returns within the puller's pull timeout (see FeedPuller.sync_now)."""
        feed = self._feeds.get(name)
        if feed is None:
            raise UnknownFeed(f"no feed named {name!r}")
        if feed.spec is None:
            raise FeedDisabled(f"feed {name!r}: its manifest has not been read yet; try again shortly")
        if feed.spec.pushed:
            raise WrongFeedKind(f"feed {name!r} is a push feed (it has no spec.pull): its set comes from "
                                f"`dnswatch feeds push {name} FILE`, not from a pull")
        if not feed.spec.enabled:
            raise FeedDisabled(f"feed {name!r} is Disabled; set spec.mode to Enabled to pull it")
        try:
            result = await self._require_puller().sync_now(name)
        except KeyError:
            raise UnknownFeed(f"no feed named {name!r}") from None
        return self.feed(name), result

    async def push(self, name: str, body: bytes, fmt: FeedFormat | None = None) -> tuple[FeedInfo, str]:
        """Make `body` (read in `fmt`, by default the feed's format) the set in force of the push feed `name`:
        versioned, stored and distributed like a pulled set. The feed afterwards and the outcome (UPDATED, or
        UNCHANGED for the set in force). UnknownFeed, WrongFeedKind for a pulled feed, PushRefused for a body
        with no usable entry (the set in force stays)."""
        feed = self._feeds.get(name)
        if feed is None:
            raise UnknownFeed(f"no feed named {name!r}")
        spec = feed.spec
        if spec is None:
            raise FeedDisabled(f"feed {name!r}: its manifest has not been read yet; try again shortly")
        if not spec.pushed:
            raise WrongFeedKind(f"feed {name!r} is pulled from its spec.pull.http.url; only a push feed (one "
                                f"with no spec.pull) takes pushed sets")
        async with feed.pushes:
            verdict = await asyncio.to_thread(  # parsing a million lines must not stall the event loop
                judge_push, feed.status, body, content=spec.content, fmt=fmt or spec.format, now=self._clock(),
                match_subdomains=spec.match_subdomains)
            if verdict.outcome == REFUSED:
                raise PushRefused(f"feed {name!r}: {verdict.message}")
            feed.pushed_format = (fmt or spec.format).kind
            await self.record_pull(PullResult(name, verdict.outcome, FeedState(verdict.status), verdict.parsed,
                                              body=body if feed.pushed_format == NEWLINE_DELIMITED.kind else None))
        return self.feed(name), verdict.outcome

    # ------------------------------------------------------------------------------------------ events

    def entry_lines(self) -> dict[tuple[str, int], EntryLines]:
        """The bodies of the versions still held, by (feed, version): where an event's `line` is found."""
        held: dict[tuple[str, int], EntryLines] = {}
        for feed in self._feeds.values():
            for compiled in (feed.current, *feed.older.values()):
                if compiled is not None and compiled.lines is not None:
                    held[(feed.name, compiled.version)] = compiled.lines
        return held

    # ------------------------------------------------------------------------------------------ agents

    def distributed(self) -> list[str]:
        """The feeds agents should hold now (a set in force, not Disabled), sorted by name."""
        return sorted(name for name, feed in self._feeds.items() if feed.distributed)

    def close(self) -> None:
        """End every subscription (the collector is stopping)."""
        self._closing = True
        for subscription in self._subscriptions:
            subscription.close()

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[Subscription]:
        """Hear of every feed whose distributed set changes, from now until the block ends."""
        subscription = Subscription()
        if self._closing:
            subscription.close()
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)

    async def updates_for(self, name: str, held_version: int | None) -> list[FeedUpdate]:
        """What brings an agent holding `held_version` of `name` (None: nothing) up to date; [] when it is."""
        feed = self._feeds.get(name)
        if feed is None or not feed.distributed:
            return [FeedRemoved(name)] if held_version is not None else []
        current = feed.current
        assert current is not None
        delta = None
        if held_version is not None and 0 < held_version < current.version:
            delta = await self._delta(feed, current, held_version)
        return update_from(current, held_version, delta, self._part_bytes)

    async def _delta(self, feed: _Feed, current: CompiledFeed, from_version: int) -> FeedDelta | None:
        async with feed.lock:  # a thousand agents resuming at once make each delta once
            if feed.current is current and from_version in feed.deltas:
                return feed.deltas[from_version]
            old = feed.older.get(from_version)
            if old is None:
                old = await self._load_version(feed.name, from_version, current)
            change = None if old is None else await asyncio.to_thread(delta_between, old, current)
            if feed.current is current:
                feed.deltas[from_version] = change
            return change

    async def _load_version(self, name: str, version: int, current: CompiledFeed) -> CompiledFeed | None:
        try:
            stored = await self._store.load_version(name, version)
        except StoreError as error:
            log.warning("feed %s: cannot load version %d for a delta: %s", name, version, error)
            return None
        if stored is None:
            return None  # pruned: the agent gets a snapshot
        return await asyncio.to_thread(compile_feed, name, current.content, stored.version, stored.sha256,
                                       stored.entries, current.match_subdomains)

    # ------------------------------------------------------------------------------------------ helpers

    def _notify(self, name: str) -> None:
        for subscription in self._subscriptions:
            subscription.notify(name)

    def _require_puller(self) -> FeedPuller:
        if self._puller is None:
            raise RuntimeError("FeedHub.attach(puller) must come before feeds are applied")
        return self._puller


def _info(feed: _Feed) -> FeedInfo:
    status = feed.status
    if feed.invalid is not None:
        others = tuple(c for c in status.error_conditions if c.type != INVALID_SPEC)
        status = replace(status, error_conditions=(*others, ErrorCondition(INVALID_SPEC, feed.invalid)
                                                   )[-MAX_ERROR_CONDITIONS:])
    spec = feed.spec
    if spec is None:
        return FeedInfo(feed.name, feed.content, "Enabled", status)
    if spec.pushed:
        return FeedInfo(feed.name, spec.content, spec.mode, status, description=spec.description,
                        format=feed.pushed_format or spec.format.kind, match_subdomains=spec.match_subdomains,
                        pushed=True,
                        source=feed.source)
    # Shown to every consumer: the URL's password and query values (a feed's API key) stay with the request.
    return FeedInfo(feed.name, spec.content, spec.mode, status, description=spec.description,
                    url=redacted_url(spec.url),
                    period_seconds=spec.period_seconds, format=spec.format.kind,
                    match_subdomains=spec.match_subdomains, source=feed.source)


def _stored_status(status: FeedStatus, feed: _Feed, compiled: CompiledFeed | None = None) -> dict:
    """The status to store with the set `compiled` (default: the feed's set in force)."""
    saved = status.to_dict()
    if status.rejected_samples:
        saved[_REJECTED_SAMPLES] = [[number, text] for number, text in status.rejected_samples]
    if feed.pushed_format:
        saved[_PUSHED_FORMAT] = feed.pushed_format
    compiled = compiled if compiled is not None else feed.current
    if compiled is not None:
        saved[_MATCH_SUBDOMAINS] = compiled.match_subdomains
        saved[_CONTEXT] = {"labels": dict(compiled.labels), "severity": compiled.severity}
    if feed.validators_for and (feed.validators.etag or feed.validators.last_modified):
        saved[_VALIDATORS] = {"for": feed.validators_for, "etag": feed.validators.etag,
                              "lastModified": feed.validators.last_modified}
    return saved


def _lines_of(result: PullResult, spec: FeedSpec | None, content: str) -> EntryLines | None:
    """The pulled body's lines, when they are lines: a structured body (JSON, CSV, STIX...) has no line to show."""
    if result.body is None or spec is None:
        return None
    if not spec.pushed and spec.format.kind != NEWLINE_DELIMITED.kind:
        return None
    return EntryLines.from_body(result.body, content)


def _lines_wanted(current: CompiledFeed, spec: FeedSpec) -> bool:
    """Whether the set in force should have its body's lines and has not."""
    return current.lines is None and spec.format.kind == NEWLINE_DELIMITED.kind


def _context_of(spec: FeedSpec | None, current: CompiledFeed | None) -> tuple[tuple[tuple[str, str], ...], int]:
    """The labels and severity a new set of the feed goes with: the spec's, or (no manifest yet) its set's."""
    if spec is not None:
        return spec.labels, spec.severity
    if current is not None:
        return current.labels, current.severity
    return (), DEFAULT_SEVERITY


def _context_from_store(saved: dict | None) -> tuple[tuple[tuple[str, str], ...], int]:
    kept = (saved or {}).get(_CONTEXT)
    if not isinstance(kept, dict):
        return (), DEFAULT_SEVERITY  # stored by a collector older than feed labels
    labels = kept.get("labels") if isinstance(kept.get("labels"), dict) else {}
    severity = kept.get("severity")
    return (tuple(sorted((str(k), str(v)) for k, v in labels.items())),
            severity if isinstance(severity, int) and not isinstance(severity, bool) else DEFAULT_SEVERITY)


def _validators_from_store(saved: dict | None) -> tuple[Validators, str]:
    kept = (saved or {}).get(_VALIDATORS)
    if not isinstance(kept, dict) or not isinstance(kept.get("for"), str):
        return Validators(), ""
    etag, modified = kept.get("etag"), kept.get("lastModified")
    return (Validators(etag if isinstance(etag, str) else None, modified if isinstance(modified, str) else None),
            kept["for"])


def _identity(spec: FeedSpec) -> str:
    """What the validators of a body are valid for: the same URL read as the same content and format.

    A digest, not the URL itself: the store keeps it, and the URL may hold credentials.
    """
    return "sha256:" + hashlib.sha256(repr((spec.url, spec.content, spec.format)).encode()).hexdigest()


def _status_from_store(name: str, saved: dict) -> FeedStatus:
    try:
        status = FeedStatus.from_dict(saved or {})
    except ValueError as error:
        log.warning("feed %s: the stored status cannot be read (%s); starting from an empty one", name, error)
        return FeedStatus()
    kept = (saved or {}).get(_REJECTED_SAMPLES)
    samples = tuple((item[0], item[1]) for item in kept if _is_sample(item)) if isinstance(kept, list) else ()
    return replace(status, rejected_samples=samples)


def _is_sample(item: object) -> bool:
    return (isinstance(item, list) and len(item) == 2 and isinstance(item[0], int) and isinstance(item[1], str))
