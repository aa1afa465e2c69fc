"""The feed sets an agent holds, kept up to date from the collector's feed stream (docs/grpc-api.md).

Pure: feedwire's `FeedSnapshot` / `FeedDelta` / `FeedRemoved` in, sets out. The shell (agent/shell/
feedclient.py) reads the gRPC stream, turns its messages into these values and hands them to `HeldFeeds.apply`
one by one; when the stream says `synced` it builds a `Matcher` from `matcher_feeds()`. Resubscribing after a
lost stream announces `versions()`, so the collector sends only what changed meanwhile.

A snapshot or delta that cannot be used (undecodable, a delta from a version not held, a digest that differs
from the collector's) raises `UnusableFeed`, naming the feed: the shell then `forget`s it and resubscribes
without its version, which brings a fresh snapshot. The sets held before stay usable throughout.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from dnswatch.feeds.domainset import DomainSet
from dnswatch.feeds.lines import DOMAIN_NAME_SET, IP_SET
from dnswatch.feeds.wire import (FeedDelta, FeedRemoved, FeedSnapshot, FeedUpdate, UnusableFeed, WireError,
                                 apply_domain_delta, apply_ip_delta, domains_from_snapshot, ip_entries_from_snapshot,
                                 join_snapshot_parts)
from dnswatch.feeds.ipset import IPSet
from dnswatch.feeds.spec import DEFAULT_SEVERITY
from agent.core.sighting import FeedContext


@dataclass(frozen=True, slots=True)
class HeldFeed:
    """One feed as the agent holds it."""

    name: str
    """The feed's name, as events report it in `record.feeds`."""
    content: str
    """`DomainNameSet` or `IPSet`."""
    version: int
    """The collector's version of the set (FeedStatus.version), announced when resubscribing."""
    domains: DomainSet | None = None
    """The set of a DomainNameSet (its tagged hashes carry `matchSubdomains`)."""
    ips: frozenset[str] = frozenset()
    """The canonical entries of an IPSet (the form its deltas apply to)."""
    labels: tuple[tuple[str, str], ...] = ()
    """The feed's labels at this version, carried into its events."""
    severity: int = DEFAULT_SEVERITY
    """The severity of the feed's events at this version (100 from a collector that sends none)."""

    @property
    def entries(self) -> int:
        return len(self.domains) if self.domains is not None else len(self.ips)


class HeldFeeds:
    """The feeds held, by name, and the parts of any snapshot still arriving."""

    def __init__(self) -> None:
        self._feeds: dict[str, HeldFeed] = {}
        self._parts: dict[str, list[FeedSnapshot]] = {}

    def versions(self) -> dict[str, int]:
        """`SubscribeRequest.have`: the version of every feed held."""
        return {name: feed.version for name, feed in self._feeds.items()}

    def feeds(self) -> list[HeldFeed]:
        """The feeds held, sorted by name."""
        return [self._feeds[name] for name in sorted(self._feeds)]

    def forget(self, name: str) -> None:
        """Drop a feed (and any parts of its snapshot), so the next subscription brings its snapshot."""
        self._feeds.pop(name, None)
        self._parts.pop(name, None)

    def start_stream(self) -> None:
        """A new subscription starts: parts of a snapshot from a stream that broke off are useless."""
        self._parts.clear()

    def apply(self, update: FeedUpdate) -> None:
        """Take one update into the held feeds. Raises `UnusableFeed` when it cannot be applied."""
        if isinstance(update, FeedRemoved):
            self.forget(update.name)
        elif isinstance(update, FeedSnapshot):
            self._take_part(update)
        elif isinstance(update, FeedDelta):
            self._apply_delta(update)
        else:
            raise TypeError(f"not a feed update: {update!r}")

    def contexts(self) -> dict[str, FeedContext]:
        """`Matcher(..., contexts=held.contexts())`: what each feed's matches carry besides the entry."""
        return {feed.name: FeedContext(str(feed.version), feed.labels, feed.severity) for feed in self.feeds()}

    def matcher_feeds(self) -> tuple[list[tuple[str, DomainSet]], list[tuple[str, IPSet]]]:
        """`Matcher(*held.matcher_feeds())`: the DomainNameSets and the IPSets, each sorted by name."""
        feeds = self.feeds()
        domain_feeds = [(f.name, f.domains) for f in feeds if f.content == DOMAIN_NAME_SET and f.domains is not None]
        ip_feeds = [(f.name, IPSet.from_entries(sorted(f.ips))) for f in feeds if f.content == IP_SET]
        return domain_feeds, ip_feeds

    # -- updates

    def _take_part(self, part: FeedSnapshot) -> None:
        series = self._parts.setdefault(part.name, [])
        series.append(part)
        if part.more:
            return
        del self._parts[part.name]
        try:
            snapshot = join_snapshot_parts(series)
            if snapshot.content == DOMAIN_NAME_SET:
                held = HeldFeed(snapshot.name, snapshot.content, snapshot.version,
                                domains=domains_from_snapshot(snapshot))
            else:
                held = HeldFeed(snapshot.name, snapshot.content, snapshot.version,
                                ips=ip_entries_from_snapshot(snapshot))
        except WireError as error:
            raise UnusableFeed(part.name, str(error)) from error
        self._feeds[held.name] = replace(held, **_context(snapshot))

    def _apply_delta(self, change: FeedDelta) -> None:
        held = self._feeds.get(change.name)
        if held is None or held.version != change.from_version or held.content != change.content:
            have = f"version {held.version}" if held is not None else "no version"
            raise UnusableFeed(change.name, f"feed {change.name!r}: a delta from version {change.from_version} "
                                            f"arrived while {have} is held")
        try:
            if held.content == DOMAIN_NAME_SET:
                assert held.domains is not None
                result = HeldFeed(held.name, held.content, change.to_version,
                                  domains=apply_domain_delta(held.domains, change))
            else:
                result = HeldFeed(held.name, held.content, change.to_version, ips=apply_ip_delta(held.ips, change))
        except WireError as error:
            raise UnusableFeed(change.name, str(error)) from error
        self._feeds[change.name] = replace(result, **_context(change))


def _context(update: FeedSnapshot | FeedDelta) -> dict:
    severity = update.severity if update.severity is not None else DEFAULT_SEVERITY
    return {"labels": update.labels, "severity": severity}
