"""Feed sets as they travel from the collector to agents (docs/grpc-api.md): snapshots and deltas.

Pure: sets and bytes in, frozen dataclasses and sets out. The protobuf messages of proto/dnswatch/v1/
distribution.proto carry these fields one for one; converting to and from them is the shells' business.

What travels is the compiled form, so an agent never parses a feed:
- a DomainNameSet is its sorted tagged hashes (dnswatch/feeds/domainset.py), the same 8 bytes per entry the
  agent keeps in memory. They go through the GAPS_ZLIB encoding: differences between neighbours, their bytes
  regrouped by significance, zlib level 1. Sorted uniform hashes differ by about 2^64/n, so the top bytes of
  every difference are nearly constant and zlib squeezes them out, while the low bytes stay random. Measured
  on 1M entries (numpy 2.4, zlib 1.2, one core of the dev box): raw 8,000,000 bytes; zlib of the raw table
  7,398,401 (no help: the high bytes vary from entry to entry); GAPS_ZLIB 5,450,137 bytes (5.45 per entry,
  -32 %) in 0.19 s to encode and 0.03 s to decode; level 6 saves 1 % more for 35 % more encoding time.
  The information-theoretic floor for 1M random 61-bit values is about 5.3 bytes each, so little is left.
- a delta of a DomainNameSet sends the added entries' hashes the same way, and the removed ones as their
  positions in the agent's current table: positions of 1 % of a table are about 100 apart, so they cost
  about one byte each instead of six. Measured on 1M entries: replacing 1 % (10k out, 10k in) costs 77,600
  bytes (6.6 per added entry, 1.2 per removed one; 1.4 % of the snapshot, 0.5 % of the 16 MB target), 0.07 s
  to make and 0.03 s to apply; touching 1 % (5k out, 5k in) costs 40,981 bytes, 0.75 % of the snapshot.
  Loading a 1M snapshot in the agent (decode, validate, directory, digest check) takes 0.06–0.09 s.
- an IPSet is small in practice, so it travels as its canonical entries, sorted, one per line (LINES), and
  a delta as the lines added and removed.

A snapshot larger than 1 MiB travels in parts (`snapshot_parts`, `join_snapshot_parts`), so no message nears
gRPC's default 4 MiB limit; a delta travels whole, and the collector sends a snapshot instead when the delta
is not much smaller (`delta_worth_sending`). Every snapshot and delta carries the entry count and an xxh3-64
digest of the resulting set, so an agent that applied a delta to another set than the collector assumed
finds out and asks for a snapshot.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from xxhash import xxh3_64_intdigest

from dnswatch.feeds.domainset import DomainSet
from dnswatch.feeds.lines import DOMAIN_NAME_SET, IP_SET
from dnswatch.errors import DnswatchError

GAPS_ZLIB = "GAPS_ZLIB"  # DomainNameSet payloads: distribution.proto SET_ENCODING_GAPS_ZLIB
LINES = "LINES"  # IPSet payloads: distribution.proto SET_ENCODING_LINES
ENCODINGS = {DOMAIN_NAME_SET: GAPS_ZLIB, IP_SET: LINES}

SNAPSHOT_PART_BYTES = 1024 * 1024  # well under gRPC's default 4 MiB message limit
MAX_ENTRIES = 64 * 1024 * 1024  # refuse a payload inflating to more (a zlib bomb, or a corrupt stream)
_ZLIB_LEVEL = 1  # see the module docstring: level 6 gains 1 % for 35 % more time


class WireError(DnswatchError, ValueError):
    """A snapshot or delta that cannot be used: undecodable, of another encoding, or not fitting the held set."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedSnapshot:
    """The whole set of one feed at one version (distribution.proto FeedSnapshot)."""

    name: str
    """The feed's name."""
    content: str
    """`DomainNameSet` or `IPSet`; it decides the encoding."""
    version: int
    """The version this set is (FeedStatus.version)."""
    sha256: str
    """The set's SHA-256 as the collector's status shows it; carried for display, not checked."""
    payload: bytes
    """The encoded set: GAPS_ZLIB of the tagged hashes, or LINES of the IP entries."""
    entries: int
    """Entries in the set."""
    digest: int
    """xxh3-64 of the decoded set (`set_digest`)."""
    encoding: str
    """GAPS_ZLIB or LINES, as `ENCODINGS[content]`."""
    more: bool = False
    """A part of a snapshot split by `snapshot_parts`, with more parts to follow (`join_snapshot_parts`)."""
    labels: tuple[tuple[str, str], ...] = ()
    """The feed's labels (`metadata.labels`), sorted by name; () from a collector older than them."""
    severity: int | None = None
    """The severity of the feed's events (`spec.severity`); None from a collector older than it (read as 100)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedDelta:
    """What turns version `from_version` of a feed into `to_version` (distribution.proto FeedDelta)."""

    name: str
    """The feed's name."""
    content: str
    """`DomainNameSet` or `IPSet`."""
    from_version: int
    """The version the agent must hold."""
    to_version: int
    """The version it holds afterwards."""
    sha256: str
    """The set's SHA-256 at `to_version`, as the collector's status shows it."""
    added: bytes
    """GAPS_ZLIB: the added tagged hashes. LINES: the added entries."""
    removed: bytes
    """GAPS_ZLIB: the positions of the removed entries in the `from_version` table. LINES: the removed entries."""
    entries: int
    """Entries in the set at `to_version`."""
    digest: int
    """xxh3-64 of the set at `to_version` (`set_digest`)."""
    encoding: str
    """GAPS_ZLIB or LINES, as `ENCODINGS[content]`."""
    labels: tuple[tuple[str, str], ...] = ()
    """The feed's labels (`metadata.labels`), sorted by name; () from a collector older than them."""
    severity: int | None = None
    """The severity of the feed's events (`spec.severity`); None from a collector older than it (read as 100)."""


@dataclass(frozen=True, slots=True)
class FeedRemoved:
    """The collector withdrew a feed (deleted or Disabled): an agent stops matching it (distribution.proto
    FeedRemoved)."""

    name: str
    """The feed's name."""


FeedUpdate = FeedSnapshot | FeedDelta | FeedRemoved
"""One message of a feed stream other than `synced` (which only marks where the initial state ends)."""


class UnusableFeed(WireError):
    """A snapshot or delta of feed `feed` that cannot be read or applied: an agent forgets the feed and
    resubscribes without it, which brings a fresh snapshot."""

    def __init__(self, feed: str, message: str) -> None:
        super().__init__(message)
        self.feed = feed


# ------------------------------------------------------------------------------------------- DomainNameSet


def domain_snapshot(name: str, version: int, sha256: str, domains: DomainSet) -> FeedSnapshot:
    """The snapshot of a DomainNameSet. Encoding 1M entries takes about 0.2 s: make it once per version."""
    return FeedSnapshot(
        name=name,
        content=DOMAIN_NAME_SET,
        version=version,
        sha256=sha256,
        payload=encode_increasing(domains.tagged()),
        entries=len(domains),
        digest=set_digest(domains),
        encoding=GAPS_ZLIB,
    )


def delta(old: DomainSet, new: DomainSet) -> tuple[bytes, bytes]:
    """The tagged hashes `new` has and `old` lacks, and those `old` has and `new` lacks, as `to_bytes` gives.

    A name whose kinds change (a feed switching `matchSubdomains`) is in both. `old.with_changes(added,
    removed)` equals `new`.
    """
    added, removed_positions = _difference(old.tagged(), new.tagged())
    return added.astype("<u8", copy=False).tobytes(), old.tagged()[removed_positions].astype("<u8").tobytes()


def domain_delta(
    name: str, from_version: int, to_version: int, sha256: str, old: DomainSet, new: DomainSet
) -> FeedDelta:
    """The delta from `old` (at `from_version`) to `new`, removals sent as positions in `old`."""
    added, removed_positions = _difference(old.tagged(), new.tagged())
    return FeedDelta(
        name=name,
        content=DOMAIN_NAME_SET,
        from_version=from_version,
        to_version=to_version,
        sha256=sha256,
        added=encode_increasing(added),
        removed=encode_increasing(removed_positions.astype(np.uint64)),
        entries=len(new),
        digest=set_digest(new),
        encoding=GAPS_ZLIB,
    )


def domains_from_snapshot(snapshot: FeedSnapshot) -> DomainSet:
    """The DomainSet a snapshot carries, checked against its count and digest."""
    _expect(snapshot.content, snapshot.encoding, DOMAIN_NAME_SET)
    try:
        domains = DomainSet.from_bytes(_le_bytes(decode_increasing(snapshot.payload)))
    except ValueError as error:
        raise WireError(f"feed {snapshot.name!r} version {snapshot.version}: {error}") from error
    _check(snapshot.name, snapshot.version, domains, snapshot.entries, snapshot.digest)
    return domains


def apply_domain_delta(held: DomainSet, change: FeedDelta) -> DomainSet:
    """`held` (the set at `change.from_version`) turned into the set at `change.to_version`.

    Raises WireError when the result is not the set the collector meant (count or digest differ): the
    caller then drops its version of the feed and asks for a snapshot.
    """
    _expect(change.content, change.encoding, DOMAIN_NAME_SET)
    try:
        positions = decode_increasing(change.removed)
        if len(positions) and (int(positions[-1]) >= len(held) or _repeats(positions)):
            raise ValueError("removed positions outside the held set")
        removed = held.tagged()[positions.astype(np.intp)]
        result = held.with_changes(_le_bytes(decode_increasing(change.added)), _le_bytes(removed))
    except ValueError as error:
        raise WireError(f"feed {change.name!r} delta {change.from_version}→{change.to_version}: {error}") from error
    _check(change.name, change.to_version, result, change.entries, change.digest)
    return result


# ---------------------------------------------------------------------------------------------------- IPSet


def ip_snapshot(name: str, version: int, sha256: str, entries: Iterable[str]) -> FeedSnapshot:
    """The snapshot of an IPSet from its canonical entries (as dnswatch/feeds/lines.py gives them)."""
    payload = _lines(entries)
    return FeedSnapshot(
        name=name,
        content=IP_SET,
        version=version,
        sha256=sha256,
        payload=payload,
        entries=payload.count(b"\n"),
        digest=xxh3_64_intdigest(payload),
        encoding=LINES,
    )


def ip_delta(
    name: str, from_version: int, to_version: int, sha256: str, old: Iterable[str], new: Iterable[str]
) -> FeedDelta:
    """The delta between two IPSets' canonical entries."""
    old, new = frozenset(old), frozenset(new)
    payload = _lines(new)
    return FeedDelta(
        name=name,
        content=IP_SET,
        from_version=from_version,
        to_version=to_version,
        sha256=sha256,
        added=_lines(new - old),
        removed=_lines(old - new),
        entries=len(new),
        digest=xxh3_64_intdigest(payload),
        encoding=LINES,
    )


def ip_entries_from_snapshot(snapshot: FeedSnapshot) -> frozenset[str]:
    """The canonical entries a snapshot carries (build the matching `IPSet.from_entries` from them)."""
    _expect(snapshot.content, snapshot.encoding, IP_SET)
    entries = _entries(snapshot.name, snapshot.payload)
    _check_ips(snapshot.name, snapshot.version, entries, snapshot.entries, snapshot.digest)
    return entries


def apply_ip_delta(held: frozenset[str], change: FeedDelta) -> frozenset[str]:
    """`held` (the entries at `change.from_version`) turned into the entries at `change.to_version`."""
    _expect(change.content, change.encoding, IP_SET)
    removed = _entries(change.name, change.removed)
    if not removed <= held:
        raise WireError(
            f"feed {change.name!r} delta {change.from_version}→{change.to_version} removes entries not held"
        )
    result = (held - removed) | _entries(change.name, change.added)
    _check_ips(change.name, change.to_version, result, change.entries, change.digest)
    return result


# ------------------------------------------------------------------------------------------------- shared


def snapshot_parts(snapshot: FeedSnapshot, part_bytes: int = SNAPSHOT_PART_BYTES) -> list[FeedSnapshot]:
    """`snapshot` as messages whose payloads hold at most `part_bytes` each, all but the last with `more` set."""
    payload = snapshot.payload
    pieces = [payload[start : start + part_bytes] for start in range(0, len(payload), part_bytes)] or [b""]
    return [
        replace(snapshot, payload=piece, more=index < len(pieces) - 1) for index, piece in enumerate(pieces)
    ]


def join_snapshot_parts(parts: Sequence[FeedSnapshot]) -> FeedSnapshot:
    """The snapshot that `snapshot_parts` split, from its parts in order. Raises WireError on a broken series."""
    if not parts or parts[-1].more or any(part.more is False for part in parts[:-1]):
        raise WireError("a snapshot's parts must end with exactly one part without `more`")
    first = replace(parts[0], payload=b"", more=False)
    if any(replace(part, payload=b"", more=False) != first for part in parts[1:]):
        raise WireError(f"feed {first.name!r}: the parts of a snapshot disagree on its name, version or digest")
    return replace(first, payload=b"".join(part.payload for part in parts))


def delta_worth_sending(change: FeedDelta, snapshot: FeedSnapshot) -> bool:
    """Whether `change` is much smaller than the snapshot of the same version (else send the snapshot)."""
    return len(change.added) + len(change.removed) < len(snapshot.payload) // 2


def set_digest(domains: DomainSet) -> int:
    """xxh3-64 of a DomainSet's `to_bytes()` (about a millisecond per 1M entries)."""
    return xxh3_64_intdigest(domains.to_bytes())


def ip_digest(entries: Iterable[str]) -> int:
    """xxh3-64 of an IPSet's LINES form."""
    return xxh3_64_intdigest(_lines(entries))


def encode_increasing(values: np.ndarray) -> bytes:
    """GAPS_ZLIB: a non-decreasing uint64 sequence as neighbour differences, byte planes, zlib."""
    values = np.asarray(values, dtype=np.uint64)
    gaps = np.diff(values, prepend=np.uint64(0))
    planes = gaps.astype("<u8", copy=False).view(np.uint8).reshape(-1, 8).T
    return zlib.compress(np.ascontiguousarray(planes).tobytes(), _ZLIB_LEVEL)


def decode_increasing(data: bytes, max_values: int = MAX_ENTRIES) -> np.ndarray:
    """The uint64 sequence `encode_increasing` wrote. Raises ValueError on a corrupt or oversized payload."""
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(data, 8 * max_values + 1)
    except zlib.error as error:
        raise ValueError(f"not a GAPS_ZLIB payload: {error}") from error
    if len(raw) > 8 * max_values or not inflater.eof:
        raise ValueError(f"a GAPS_ZLIB payload holds more than {max_values} values or is truncated")
    if len(raw) % 8:
        raise ValueError("a GAPS_ZLIB payload inflates to a length that is no multiple of 8")
    count = len(raw) // 8
    gaps = np.ascontiguousarray(np.frombuffer(raw, dtype=np.uint8).reshape(8, count).T).view("<u8").ravel()
    values = np.cumsum(gaps, dtype=np.uint64)
    if count > 1 and not bool((values[1:] >= values[:-1]).all()):
        raise ValueError("a GAPS_ZLIB payload overflows 64 bits")
    return values


def _difference(old: np.ndarray, new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values of sorted `new` missing from sorted `old`, positions in `old` of values missing from `new`)."""
    return new[~_present(old, new)], np.flatnonzero(~_present(new, old))


def _present(table: np.ndarray, values: np.ndarray) -> np.ndarray:
    positions = np.searchsorted(table, values)
    found = np.zeros(len(values), dtype=bool)
    inside = positions < len(table)
    found[inside] = table[positions[inside]] == values[inside]
    return found


def _repeats(values: np.ndarray) -> bool:
    return len(values) > 1 and bool((values[1:] == values[:-1]).any())


def _le_bytes(values: np.ndarray) -> bytes:
    return values.astype("<u8", copy=False).tobytes()


def _lines(entries: Iterable[str]) -> bytes:
    ordered = sorted(set(entries))
    return ("\n".join(ordered) + "\n").encode() if ordered else b""


def _entries(name: str, payload: bytes) -> frozenset[str]:
    try:
        text = payload.decode()
    except UnicodeDecodeError as error:
        raise WireError(f"feed {name!r}: LINES payload is not UTF-8") from error
    if text and not text.endswith("\n"):
        raise WireError(f"feed {name!r}: LINES payload does not end with a newline")
    return frozenset(text.splitlines())


def _expect(content: str, encoding: str, wanted: str) -> None:
    if content != wanted or encoding != ENCODINGS[wanted]:
        raise WireError(f"expected a {wanted} in {ENCODINGS[wanted]}, got a {content} in {encoding}")


def _check(name: str, version: int, domains: DomainSet, entries: int, digest: int) -> None:
    if len(domains) != entries or set_digest(domains) != digest:
        raise WireError(f"feed {name!r} version {version}: the set built differs from the collector's")


def _check_ips(name: str, version: int, entries: frozenset[str], count: int, digest: int) -> None:
    if len(entries) != count or ip_digest(entries) != digest:
        raise WireError(f"feed {name!r} version {version}: the set built differs from the collector's")
