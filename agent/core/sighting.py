"""What the matcher hands to the event pipeline: one DNS message that matched a feed, as seen on the wire.

Only messages that matched reach the pipeline, so these objects are created rarely and may be dataclasses;
the per-packet path never builds them for innocent traffic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dnswatch.feeds.entrylines import EntryLines
from dnswatch.feeds.spec import DEFAULT_SEVERITY


@dataclass(frozen=True, slots=True)
class FeedContext:
    """What a feed's matches carry besides the entry: its version, labels and severity, and where to find lines."""

    version: str | None = None
    """The version of the set matched: the collector's (`"7"`), or `sha256:` and 12 hex digits of a local body."""
    labels: tuple[tuple[str, str], ...] = ()
    """The feed's labels, sorted by name."""
    severity: int = DEFAULT_SEVERITY
    """The severity of the feed's events."""
    lines: EntryLines | None = field(default=None, compare=False)
    """The body's lines, when this process holds the body (a replay's own files); None for a set from the
    collector, which fills the lines in itself."""


NO_CONTEXT = FeedContext()


@dataclass(frozen=True, slots=True)
class Match:
    """One observed name (or answer address) that a feed entry matched."""

    name: str
    """The observed name in canonical A-label form, or for an IP match the address text."""
    feed: str
    """The name of the feed that holds the entry."""
    entry: str
    """The feed entry that matched: `evil.com`, `*.evil.com`, `198.51.100.0/24`."""
    section: str
    """Where the name was found: `question`, `answer`, `authority` or `additional`."""
    kind: str
    """`domain` for a name matched against a DomainNameSet feed, `ip` for an address against an IPSet feed."""
    feed_version: str | None = None
    """The version of the feed's set that matched (`FeedContext.version`)."""
    line: int | None = None
    """The entry's 1-based line in the feed's body, when known here."""
    line_text: str | None = None
    """That line as written, when it differs from `entry` (`0.0.0.0 Evil.COM`)."""
    feed_severity: int = DEFAULT_SEVERITY
    """The feed's severity when it matched."""
    feed_labels: tuple[tuple[str, str], ...] = ()
    """The feed's labels when it matched."""


@dataclass(frozen=True, slots=True)
class Sighting:
    """One matched DNS message as captured (on one interface: the same message may be sighted twice)."""

    ts: float
    """Capture time, seconds since the epoch; the pipeline's only clock."""
    src: bytes
    """Source address, raw 4 (IPv4) or 16 (IPv6) bytes."""
    sport: int
    dst: bytes
    """Destination address, raw 4 or 16 bytes."""
    dport: int
    transport: str
    """`udp` or `tcp`."""
    payload: bytes
    """The whole DNS message (without the TCP length prefix)."""
    is_response: bool
    dns_id: int
    qname: str
    """Canonical name of the (first) question, "" when the message has none."""
    qtype: int
    matches: tuple[Match, ...]
