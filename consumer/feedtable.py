"""Feeds as `dnswatch feeds list|get|sync -o table` shows them (pure): one row per feed, the columns fixed."""

from __future__ import annotations

from dnswatch.feeds.feedinfo import FeedInfo

__all__ = ["TABLE_COLUMNS", "WIDE_COLUMNS", "table_row", "wide_row"]

TABLE_COLUMNS = ("NAME", "CONTENT", "MODE", "ENTRIES", "VERSION", "LAST SYNC", "ERRORS")
"""The columns of `-o table`."""
WIDE_COLUMNS = ("NAME", "CONTENT", "MODE", "ENTRIES", "REJECTED", "VERSION", "LAST SYNC", "ERRORS", "SHA256", "URL")
"""The columns of `-o wide`: the table's, the lines rejected, the start of the set's digest and where it is
pulled from (redacted)."""


def table_row(feed: FeedInfo) -> tuple[str, ...]:
    """One `-o table` row; ERRORS shows the newest condition's type and how many times in a row it happened
    (`PullFailed x3`), then how many other types there are (`PullFailed x3 +1`)."""
    conditions = feed.status.error_conditions
    errors = "-"
    if conditions:
        newest = conditions[-1]
        errors = f"{newest.type} x{newest.count}" + (f" +{len(conditions) - 1}" if len(conditions) > 1 else "")
    return (feed.name, feed.content or "-", feed.mode, str(feed.status.entries), str(feed.status.version),
            feed.status.last_successful_sync or "-", errors)


def wide_row(feed: FeedInfo) -> tuple[str, ...]:
    """One `-o wide` row (SHA256: its first 12 hex digits, enough to tell two sets apart)."""
    name, content, mode, entries, version, last_sync, errors = table_row(feed)
    return (name, content, mode, entries, str(feed.status.rejected_lines), version, last_sync, errors,
            (feed.status.sha256 or "-")[:12], feed.url or "-")
