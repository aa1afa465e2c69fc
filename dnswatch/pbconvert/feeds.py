"""Feeds between protobuf messages (dnswatch_pb.v1 feeds and distribution) and the feed model, both ways.

The collector's servicers turn `FeedInfo` and feedwire's `FeedSnapshot` / `FeedDelta` / `FeedRemoved` into
messages; the consumer's command (`feed_from_pb`, `sync_from_pb`) and the agent's feed stream
(`update_from_pb`) turn messages back.
"""

from __future__ import annotations

from datetime import timedelta

from dnswatch.feeds.lines import DOMAIN_NAME_SET, IP_SET
from dnswatch.feeds.feedinfo import FeedInfo, RefusedManifest
from dnswatch.feeds.status import ErrorCondition, FeedStatus
from dnswatch.feeds.wire import GAPS_ZLIB, LINES, FeedDelta, FeedRemoved, FeedSnapshot, FeedUpdate, UnusableFeed
from dnswatch.urlredact import redact_urls, redacted_url
from dnswatch_pb.v1 import distribution_pb2, feeds_pb2

__all__ = ["SYNCED", "feed_from_pb", "feed_to_pb", "refused_from_pb", "refused_to_pb", "sync_from_pb", "sync_to_pb",
           "update_from_pb", "update_to_pb"]

_CONTENTS = {DOMAIN_NAME_SET: feeds_pb2.FEED_CONTENT_DOMAIN_NAME_SET, IP_SET: feeds_pb2.FEED_CONTENT_IP_SET}
_CONTENT_NAMES = {number: name for name, number in _CONTENTS.items()}
_MODES = {"Enabled": feeds_pb2.FEED_MODE_ENABLED, "Disabled": feeds_pb2.FEED_MODE_DISABLED}
_MODE_NAMES = {number: name for name, number in _MODES.items()}
_ENCODINGS = {GAPS_ZLIB: distribution_pb2.SET_ENCODING_GAPS_ZLIB, LINES: distribution_pb2.SET_ENCODING_LINES}
_ENCODING_NAMES = {number: name for name, number in _ENCODINGS.items()}


# ---------------------------------------------------------------------------------------------- feeds


def feed_to_pb(feed: FeedInfo) -> feeds_pb2.Feed:
    """The consumer API's message. URLs are redacted here once more: whatever a FeedInfo was built from, no
    consumer token ever reads a feed URL's password or query values."""
    status = feed.status
    message = feeds_pb2.Feed(
        name=feed.name,
        content=_CONTENTS.get(feed.content, feeds_pb2.FEED_CONTENT_UNSPECIFIED),
        mode=_MODES.get(feed.mode, feeds_pb2.FEED_MODE_UNSPECIFIED),
        description=feed.description,
        url=redacted_url(feed.url) if feed.url else "",
        format=feed.format,
        match_subdomains=feed.match_subdomains,
        status=feeds_pb2.FeedStatus(
            error_conditions=[_condition_to_pb(c) for c in status.error_conditions],
            entries=status.entries,
            rejected_lines=status.rejected_lines,
            sha256=status.sha256,
            version=status.version,
            rejected_samples=[feeds_pb2.RejectedSample(line=r["line"], text=r["text"], reason=r["reason"])
                              for r in feed.rejected()],
        ),
        push=feed.pushed,
        source=feed.source,
    )
    if feed.period_seconds is not None:
        message.period.FromTimedelta(timedelta(seconds=feed.period_seconds))
    if status.last_successful_sync:
        message.status.last_successful_sync.FromJsonString(status.last_successful_sync)
    return message


def feed_from_pb(message: feeds_pb2.Feed) -> FeedInfo:
    status = message.status
    last_sync = None
    if status.HasField("last_successful_sync"):
        last_sync = status.last_successful_sync.ToDatetime().strftime("%Y-%m-%dT%H:%M:%SZ")
    return FeedInfo(
        name=message.name,
        content=_CONTENT_NAMES.get(message.content, ""),
        mode=_MODE_NAMES.get(message.mode, ""),
        status=FeedStatus(
            last_successful_sync=last_sync,
            error_conditions=tuple(_condition_from_pb(c) for c in status.error_conditions),
            entries=status.entries,
            rejected_lines=status.rejected_lines,
            sha256=status.sha256,
            version=status.version,
            rejected_samples=tuple((sample.line, sample.text) for sample in status.rejected_samples),
        ),
        description=message.description,
        url=message.url,
        period_seconds=message.period.ToTimedelta().total_seconds() if message.HasField("period") else None,
        format=message.format,
        match_subdomains=message.match_subdomains,
        pushed=message.push,
        source=message.source,
    )


def refused_to_pb(refused: RefusedManifest) -> feeds_pb2.RefusedManifest:
    return feeds_pb2.RefusedManifest(origin=refused.origin, name=refused.name, message=redact_urls(refused.message))


def refused_from_pb(message: feeds_pb2.RefusedManifest) -> RefusedManifest:
    return RefusedManifest(message.origin, message.name, message.message)


def sync_to_pb(feed: FeedInfo, outcome: str, message: str) -> feeds_pb2.SyncFeedResponse:
    """The answer to a sync: the feed afterwards, and what the pull did (`dnswatch.feeds.outcomes.OUTCOMES`)."""
    return feeds_pb2.SyncFeedResponse(feed=feed_to_pb(feed), outcome=outcome, message=redact_urls(message))


def sync_from_pb(message: feeds_pb2.SyncFeedResponse) -> tuple[FeedInfo, str, str]:
    """(the feed, the outcome, why) of a sync's answer; the outcome is empty from an older collector."""
    return feed_from_pb(message.feed), message.outcome, message.message


def _condition_to_pb(condition: ErrorCondition) -> feeds_pb2.ErrorCondition:
    message = feeds_pb2.ErrorCondition(type=condition.type, message=redact_urls(condition.message),
                                       count=condition.count)
    if condition.last_time:
        message.last_time.FromJsonString(condition.last_time)
    return message


def _condition_from_pb(message: feeds_pb2.ErrorCondition) -> ErrorCondition:
    last_time = None
    if message.HasField("last_time"):
        last_time = message.last_time.ToDatetime().strftime("%Y-%m-%dT%H:%M:%SZ")
    return ErrorCondition(message.type, message.message, max(1, message.count), last_time)


# ---------------------------------------------------------------------------------------------- distribution


def update_to_pb(update: FeedUpdate) -> distribution_pb2.FeedUpdate:
    if isinstance(update, FeedSnapshot):
        return distribution_pb2.FeedUpdate(snapshot=distribution_pb2.FeedSnapshot(
            name=update.name, content=_CONTENTS[update.content], version=update.version, sha256=update.sha256,
            encoding=_ENCODINGS[update.encoding], payload=update.payload, entries=update.entries,
            digest=update.digest, more=update.more, labels=dict(update.labels), severity=update.severity))
    if isinstance(update, FeedDelta):
        return distribution_pb2.FeedUpdate(delta=distribution_pb2.FeedDelta(
            name=update.name, content=_CONTENTS[update.content], from_version=update.from_version,
            to_version=update.to_version, sha256=update.sha256, encoding=_ENCODINGS[update.encoding],
            added=update.added, removed=update.removed, entries=update.entries, digest=update.digest,
            labels=dict(update.labels), severity=update.severity))
    if isinstance(update, FeedRemoved):
        return distribution_pb2.FeedUpdate(removed=distribution_pb2.FeedRemoved(name=update.name))
    raise TypeError(f"not a feed update: {update!r}")


SYNCED = distribution_pb2.FeedUpdate(synced=distribution_pb2.Synced())
"""The message that ends the initial state of a feed stream."""


def update_from_pb(message: distribution_pb2.FeedUpdate) -> FeedUpdate | None:
    """The domain form of one stream message; None for `synced`. A content or encoding not known here raises
    `UnusableFeed` (the agent then drops that feed and resubscribes for a snapshot: new encodings
    get new values)."""
    kind = message.WhichOneof("update")
    if kind == "snapshot":
        m = message.snapshot
        return FeedSnapshot(name=m.name, content=_content(m.name, m.content), version=m.version, sha256=m.sha256,
                            payload=m.payload, entries=m.entries, digest=m.digest,
                            encoding=_encoding(m.name, m.encoding), more=m.more, **_context(m))
    if kind == "delta":
        m = message.delta
        return FeedDelta(name=m.name, content=_content(m.name, m.content), from_version=m.from_version,
                         to_version=m.to_version, sha256=m.sha256, added=m.added, removed=m.removed,
                         entries=m.entries, digest=m.digest, encoding=_encoding(m.name, m.encoding), **_context(m))
    if kind == "removed":
        return FeedRemoved(message.removed.name)
    if kind == "synced":
        return None
    raise UnusableFeed("", "a feed update with no known field set")


def _context(message: distribution_pb2.FeedSnapshot | distribution_pb2.FeedDelta) -> dict:
    """The labels and severity of a snapshot or delta; none from a collector that sends neither."""
    return {"labels": tuple(sorted(message.labels.items())),
            "severity": message.severity if message.HasField("severity") else None}


def _content(name: str, number: int) -> str:
    if number not in _CONTENT_NAMES:
        raise UnusableFeed(name, f"feed {name!r}: unknown feed content {number}")
    return _CONTENT_NAMES[number]


def _encoding(name: str, number: int) -> str:
    if number not in _ENCODING_NAMES:
        raise UnusableFeed(name, f"feed {name!r}: unknown set encoding {number}")
    return _ENCODING_NAMES[number]
