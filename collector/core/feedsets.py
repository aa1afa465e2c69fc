"""A feed's set in force as the collector distributes it (docs/grpc-api.md): compiled once per version.

Pure: entries in, a `CompiledFeed` out, holding what every agent that subscribes will be sent, so that a
thousand agents connecting at once cost one encoding, not a thousand. `update_from` decides what brings an
agent holding some version up to date: nothing, a delta, or the snapshot (in parts).

Why the whole snapshot is kept encoded and not rebuilt per subscriber: encoding 1M domains takes about 0.2 s
(dnswatch/feeds/wire.py), while keeping it costs about 5.5 MB per such feed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from dnswatch.feeds.domainset import DomainSet
from dnswatch.feeds.entrylines import EntryLines
from dnswatch.feeds.lines import DOMAIN_NAME_SET, IP_SET, ParsedFeed
from dnswatch.feeds.publicsuffixes import refuse_public_suffixes
from dnswatch.feeds.spec import DEFAULT_SEVERITY
from dnswatch.feeds.wire import (FeedDelta, FeedRemoved, FeedSnapshot, FeedUpdate, delta_worth_sending, domain_delta,
                                 domain_snapshot, ip_delta, ip_snapshot, snapshot_parts)

__all__ = ["CompiledFeed", "compile_feed", "delta_between", "held_after", "update_from"]


@dataclass(frozen=True, eq=False)
class CompiledFeed:
    """One version of a feed's set, in the forms the distribution needs."""

    name: str
    """The feed's name."""
    content: str
    """`DomainNameSet` or `IPSet`."""
    version: int
    """FeedStatus.version of this set (1 or more)."""
    sha256: str
    """FeedStatus.sha256 of this set."""
    entries: tuple[str, ...]
    """The canonical entries, as parsed and stored."""
    match_subdomains: bool
    """Whether plain domain entries were compiled to cover their subdomains."""
    domains: DomainSet | None
    """The compiled DomainNameSet; None for an IPSet."""
    snapshot: FeedSnapshot
    """The whole set, encoded (split into parts only when sent)."""
    labels: tuple[tuple[str, str], ...] = ()
    """The feed's labels at this version (`FeedSpec.labels`), sent with the set."""
    severity: int = DEFAULT_SEVERITY
    """The severity of the feed's events at this version (`FeedSpec.severity`), sent with the set."""
    lines: EntryLines | None = None
    """The body this version was read from, when it was newline-delimited and pulled or pushed by this process
    (not restored from the store): where the collector finds the line of a matched entry."""


def compile_feed(
    name: str, content: str, version: int, sha256: str, entries: tuple[str, ...] | list[str],
    match_subdomains: bool = False, labels: tuple[tuple[str, str], ...] = (), severity: int = DEFAULT_SEVERITY,
    lines: EntryLines | None = None,
) -> CompiledFeed:
    """Compile a stored or freshly pulled set, with the labels and severity it travels with; ValueError for an
    unknown content.

    About half a second for 1M domains (hashing and encoding): callers run it in a worker thread.
    """
    entries = tuple(entries)
    if content == DOMAIN_NAME_SET:
        # A pull refuses what would cover a public suffix, but a set pulled without matchSubdomains may be
        # recompiled with it (the spec changed, no pull since): its exact `com` must not become all of .com.
        widened = refuse_public_suffixes(ParsedFeed(entries), True).entries if match_subdomains else entries
        domains = DomainSet.from_names(widened, match_subdomains)
        snapshot = domain_snapshot(name, version, sha256, domains)
    elif content == IP_SET:
        domains = None
        snapshot = ip_snapshot(name, version, sha256, entries)
    else:
        raise ValueError(f"feed {name!r}: content must be {DOMAIN_NAME_SET} or {IP_SET}, not {content!r}")
    snapshot = replace(snapshot, labels=tuple(labels), severity=severity)
    return CompiledFeed(name, content, version, sha256, entries, match_subdomains, domains, snapshot, tuple(labels),
                        severity, lines)


def delta_between(old: CompiledFeed, new: CompiledFeed) -> FeedDelta | None:
    """The delta from `old` to `new`, or None when the agent is better served by the snapshot.

    None too when the two are not comparable (another content, or subdomain matching switched): the agent's
    table would not be what `old` says it is.
    """
    if old.content != new.content or old.match_subdomains != new.match_subdomains:
        return None
    if new.domains is not None and old.domains is not None:
        change = domain_delta(new.name, old.version, new.version, new.sha256, old.domains, new.domains)
    else:
        change = ip_delta(new.name, old.version, new.version, new.sha256, old.entries, new.entries)
    change = replace(change, labels=new.labels, severity=new.severity)
    return change if delta_worth_sending(change, new.snapshot) else None


def update_from(
    current: CompiledFeed, held_version: int | None, delta: FeedDelta | None, part_bytes: int | None = None
) -> list[FeedUpdate]:
    """What brings an agent that holds `held_version` (None: nothing) of the feed to `current`.

    `delta` is the delta from `held_version` when the caller could make one worth sending (`delta_between`).
    """
    if held_version == current.version:
        return []
    if delta is not None and delta.from_version == held_version and delta.to_version == current.version:
        return [delta]
    if part_bytes is None:
        return list(snapshot_parts(current.snapshot))
    return list(snapshot_parts(current.snapshot, part_bytes))


def held_after(held_version: int | None, updates: list[FeedUpdate]) -> int | None:
    """The version an agent holds once it has applied `updates`, starting from `held_version`."""
    for update in updates:
        if isinstance(update, FeedRemoved):
            held_version = None
        elif isinstance(update, FeedDelta):
            held_version = update.to_version
        else:
            held_version = update.version
    return held_version
