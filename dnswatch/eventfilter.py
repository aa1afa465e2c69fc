"""Which events to show (pure): the filter of `dnswatch events list|watch`, of the Events service's requests
and of the collector's event store, one value for all three.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

__all__ = ["EventFilter"]


@dataclass(frozen=True)
class EventFilter:
    """Which events list_events and events_since return; every field set must match (None: any)."""

    namespace: str | None = None
    """The event's source_namespace."""
    pod: str | None = None
    """The pod's name (source_name) or its aggregated name (source_name_aggr, e.g. `web-7d4b9c-*`)."""
    feed: str | None = None
    """A feed named in record.feeds."""
    domain: str | None = None
    """A name in record.suspicious_domains (canonicalized before matching: case, trailing dot, IDN)."""
    type: str | None = None
    """The event's type, e.g. `gtf_suspicious_dns_query`."""
    host: str | None = None
    """The node that reported the event (`host`)."""
    since: dt.datetime | None = None
    """Events whose time is at or after this instant (timezone-aware)."""
    until: dt.datetime | None = None
    """Events whose time is before this instant (timezone-aware)."""
    include_excepted: bool = False
    """Also events an active alert exception matched (left out by default; docs/alert-operations.md)."""
    include_dismissed: bool = False
    """Also dismissed events (left out by default)."""
    dismissed_only: bool = False
    """Only dismissed events (implies include_dismissed)."""
