"""What the matcher hands to the event pipeline: one DNS message that matched a feed, as seen on the wire.

Only messages that matched reach the pipeline, so these objects are created rarely and may be dataclasses;
the per-packet path never builds them for innocent traffic.
"""

from __future__ import annotations

from dataclasses import dataclass


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
