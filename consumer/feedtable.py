"""Feeds as `dnswatch feeds list|sync|push -o table` shows them (pure): one row per feed, the columns fixed,
and one per manifest the collector refused."""

from __future__ import annotations

from dnswatch.feeds.feedinfo import FeedInfo, RefusedManifest

__all__ = ["REFUSED_COLUMNS", "TABLE_COLUMNS", "WIDE_COLUMNS", "refused_row", "table_row", "wide_row"]

TABLE_COLUMNS = ("NAME", "CONTENT", "MODE", "ENTRIES", "REJECTED", "VERSION", "LAST SYNC", "ERRORS")
"""The columns of `-o table`."""
REFUSED_COLUMNS = ("ORIGIN", "NAME", "WHY")
"""The columns of the refused manifests' section of `feeds list`."""
WIDE_COLUMNS = (*TABLE_COLUMNS, "SHA256", "URL")
"""The columns of `-o wide`: the table's, the start of the set's digest and where it is pulled from
(redacted)."""


def table_row(feed: FeedInfo) -> tuple[str, ...]:
    """One `-o table` row; ERRORS shows the newest condition's type and how many times in a row it happened
    (`PullFailed x3`), then how many other types there are (`PullFailed x3 +1`)."""
    conditions = feed.status.error_conditions
    errors = "-"
    if conditions:
        newest = conditions[-1]
        errors = f"{newest.type} x{newest.count}" + (f" +{len(conditions) - 1}" if len(conditions) > 1 else "")
    return (feed.name, feed.content or "-", feed.mode, str(feed.status.entries), str(feed.status.rejected_lines),
            str(feed.status.version), feed.status.last_successful_sync or "-", errors)


def refused_row(manifest: RefusedManifest) -> tuple[str, ...]:
    """One row of the refused manifests' section: where, which feed, and why on one line."""
    return (manifest.origin, manifest.name or "-", " ".join(manifest.message.split()))


def wide_row(feed: FeedInfo) -> tuple[str, ...]:
    """One `-o wide` row (SHA256: its first 12 hex digits, enough to tell two sets apart)."""
    return (*table_row(feed), (feed.status.sha256 or "-")[:12], feed.url or "-")
