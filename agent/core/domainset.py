"""A feed's domain names, held as a compact hash table built for the matching hot path (SPEC §2 "Entries").

Why hashes and not the names: SPEC §9 asks for at most 16 bytes per feed domain in the agent, where a Python
set of str costs about 180. Each entry is kept as one 64-bit xxh3 hash of its canonical name whose three low
bits are replaced by the entry's kind; the sorted hashes live in one `array('Q')` (8 bytes per entry) with a
bucket directory of `array('I')` (about 2 bytes per entry) so that a lookup is a hash, two index reads and on
average one comparison. The 61 remaining hash bits make a false match on a 1M-entry feed about one in 2·10^12
lookups; the cost of that is a spurious alert, never a missed one. The hash is stable across processes, so
the table itself can be what the collector ships to agents.

A name matches when the whole name is an entry that covers its apex, or when one of its proper suffixes (at
a label boundary) is an entry that covers subdomains. The matched entry is rebuilt from the matched suffix
and the kind, so the names themselves need not be kept.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable

import numpy as np
from xxhash import xxh3_64_intdigest

# Entry kinds, stored in the low bits of each hash.
APEX = 1  # a plain entry: matches the name itself
WILDCARD = 2  # a `*.name` entry: matches strict subdomains, reported as `*.name`
SUBDOMAINS = 4  # a plain entry of a `matchSubdomains: true` feed: matches strict subdomains too
_KIND_BITS = 3
_KIND_MASK = (1 << _KIND_BITS) - 1


class DomainSet:
    """An immutable set of canonical domain entries with exact, wildcard and subdomain semantics."""

    __slots__ = ("_table", "_directory", "_shift", "_entries")

    def __init__(self, table: array, directory: array, shift: int, entries: int) -> None:
        self._table = table
        self._directory = directory
        self._shift = shift
        self._entries = entries

    @classmethod
    def from_names(cls, names: Iterable[str], match_subdomains: bool = False) -> DomainSet:
        """Build from canonical names (as `agent.core.feedlines` returns them); `*.x` entries are wildcards."""
        names = names if isinstance(names, (list, tuple)) else list(names)
        wildcards = [name[2:] for name in names if name.startswith("*.")]
        plain = [name for name in names if not name.startswith("*.")] if wildcards else names
        plain_kind = APEX | SUBDOMAINS if match_subdomains else APEX
        hashes = np.concatenate(
            [
                _tagged_hashes(plain, plain_kind),
                _tagged_hashes(wildcards, WILDCARD),
            ]
        )
        return cls._from_tagged(hashes)

    @classmethod
    def _from_tagged(cls, tagged: np.ndarray) -> DomainSet:
        tagged.sort()
        identity = tagged >> np.uint64(_KIND_BITS)
        if len(tagged) > 1 and bool((identity[1:] == identity[:-1]).any()):
            tagged = _merge_kinds(tagged, identity)
        count = len(tagged)
        bucket_bits = max(4, (max(count, 1) - 1).bit_length() - 1)  # about two entries per bucket
        shift = 64 - bucket_bits
        buckets = (tagged >> np.uint64(shift)).astype(np.int64)
        starts = np.searchsorted(buckets, np.arange((1 << bucket_bits) + 1), side="left")
        directory = array("I")
        directory.frombytes(starts.astype(np.uint32).tobytes())
        table = array("Q")
        table.frombytes(tagged.tobytes())
        return cls(table, directory, shift, count)

    def kind(self, name: bytes) -> int:
        """The kinds of the entry equal to canonical `name` (ASCII bytes), 0 when there is none."""
        value = xxh3_64_intdigest(name)
        bucket = value >> self._shift
        directory = self._directory
        position, end = directory[bucket], directory[bucket + 1]
        identity = value >> _KIND_BITS
        table = self._table
        while position < end:
            tagged = table[position]
            if tagged >> _KIND_BITS == identity:
                return tagged & _KIND_MASK
            position += 1
        return 0

    def match(self, name: bytes, suffix_starts: Iterable[int]) -> str | None:
        """The entry matching canonical `name`, given where its proper suffixes start; None if none does.

        Suffixes are tried longest first, so the most specific entry is reported.
        """
        if self.kind(name) & APEX:
            return name.decode("ascii", "backslashreplace")
        for start in suffix_starts:
            entry = self.parent_entry(name[start:])
            if entry is not None:
                return entry
        return None

    def parent_entry(self, suffix: bytes) -> str | None:
        """The entry through which canonical `suffix` covers its strict subdomains, if there is one."""
        kind = self.kind(suffix)
        if kind & SUBDOMAINS:
            return suffix.decode("ascii", "backslashreplace")
        if kind & WILDCARD:
            return "*." + suffix.decode("ascii", "backslashreplace")
        return None

    def __contains__(self, entry: str) -> bool:
        if entry.startswith("*."):
            return bool(self.kind(entry[2:].encode()) & WILDCARD)
        return bool(self.kind(entry.encode()) & APEX)

    def __len__(self) -> int:
        return self._entries

    @property
    def nbytes(self) -> int:
        """Memory held by the table and its directory."""
        return self._table.itemsize * len(self._table) + self._directory.itemsize * len(self._directory)


def _tagged_hashes(names: list[str], kind: int) -> np.ndarray:
    if not names:
        return np.empty(0, dtype=np.uint64)
    hashes = np.fromiter(map(xxh3_64_intdigest, map(str.encode, names)), dtype=np.uint64, count=len(names))
    return (hashes & np.uint64(~_KIND_MASK & 0xFFFFFFFFFFFFFFFF)) | np.uint64(kind)


def _merge_kinds(tagged: np.ndarray, identity: np.ndarray) -> np.ndarray:
    """One slot per name: an entry listed twice, or as both `x` and `*.x`, keeps the union of its kinds."""
    firsts = np.flatnonzero(np.concatenate(([True], identity[1:] != identity[:-1])))
    kinds = np.bitwise_or.reduceat(tagged & np.uint64(_KIND_MASK), firsts)
    return (identity[firsts] << np.uint64(_KIND_BITS)) | kinds
