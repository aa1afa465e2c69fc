"""A feed's domain names, held as a compact hash table built for the matching hot path (docs/detection.md).

Why hashes and not the names: the target is at most 16 bytes per feed domain in the agent, where a Python
set of str costs about 180. Each entry is kept as one 64-bit xxh3 hash of its canonical name whose three low
bits are replaced by the entry's kind; the sorted hashes live in one `array('Q')` (8 bytes per entry) with a
bucket directory of `array('I')` (about 2 bytes per entry) so that a lookup is a hash, two index reads and on
average one comparison. The 61 remaining hash bits make a false match on a 1M-entry feed about one in 2·10^12
lookups; the cost of that is a spurious alert, never a missed one. The hash is stable across processes, so
the table itself can be what the collector ships to agents.

The sorted tagged hashes are also the set's wire form (dnswatch/feeds/wire.py): `to_bytes` / `from_bytes`
carry them as little-endian uint64s, and `with_changes` applies a delta with numpy merges, never a Python
loop per entry; the directory is rebuilt from them in milliseconds.

A name matches when the whole name is an entry that covers its apex, or when one of its proper suffixes (at
a label boundary) is an entry that covers subdomains. The matched entry is rebuilt from the matched suffix
and the kind, so the names themselves need not be kept.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from itertools import compress, repeat
from operator import itemgetter

import numpy as np
from xxhash import xxh3_64_intdigest

# Entry kinds, stored in the low bits of each hash.
APEX = 1  # a `name` or `.name` entry: matches the name itself
WILDCARD = 2  # a `*.name` entry: matches strict subdomains, reported as `*.name`
SUBDOMAINS = 4  # a `.name` entry, or a plain one of a `matchSubdomains: true` feed: matches strict subdomains too
_KIND_BITS = 3
_KIND_MASK = (1 << _KIND_BITS) - 1
_IDENTITY = np.uint64(_KIND_BITS)  # shift from a tagged hash to the name's identity
_KIND_MASK_U64 = np.uint64(_KIND_MASK)


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
        """Build from canonical entries (as `dnswatch.feeds.lines` returns them, docs/detection.md): `x` is
        exact, `*.x` a wildcard, `.x` the name and its subdomains; `match_subdomains` widens every `x` to `.x`."""
        names = names if isinstance(names, (list, tuple)) else list(names)
        wildcards: list[str] = []
        subtrees: list[str] = []
        plain = names
        # Every per-entry step is a `map` of a C method, never Python code per entry: a 1M-entry feed all of
        # one form costs one scan of first characters when it has no marks, three when it has.
        if names and _starting_with(names, (".", "*.")).any():
            dot, star = _starting_with(names, "."), _starting_with(names, "*.")
            plain = list(compress(names, (~(dot | star)).tolist()))  # lists: numpy scalars iterate slowly
            subtrees = list(map(_AFTER_DOT, compress(names, dot.tolist()))) if dot.any() else []
            wildcards = list(map(_AFTER_STAR, compress(names, star.tolist()))) if star.any() else []
        if match_subdomains:
            subtrees = [*plain, *subtrees] if subtrees else plain
            plain = []
        hashes = np.concatenate(
            [
                _tagged_hashes(plain, APEX),
                _tagged_hashes(subtrees, APEX | SUBDOMAINS),
                _tagged_hashes(wildcards, WILDCARD),
            ]
        )
        return cls._from_tagged(hashes)

    @classmethod
    def from_bytes(cls, data: bytes) -> DomainSet:
        """Rebuild from `to_bytes()` output: tagged hashes as little-endian uint64s, one per name, sorted.

        Raises ValueError when `data` is not such a sequence (a corrupt or foreign payload).
        """
        if len(data) % 8:
            raise ValueError(f"a DomainSet is 8 bytes per entry, got {len(data)} bytes")
        tagged = np.frombuffer(data, dtype="<u8").astype(np.uint64)
        names = tagged >> _IDENTITY
        if len(tagged) > 1 and not bool((names[1:] > names[:-1]).all()):
            raise ValueError("DomainSet entries must be sorted with one entry per name")
        if len(tagged) and not bool((tagged & _KIND_MASK_U64).all()):
            raise ValueError("DomainSet entry without a kind")
        return cls._from_sorted(tagged)

    def to_bytes(self) -> bytes:
        """The tagged hashes as little-endian uint64s, sorted: the form that travels and `from_bytes` takes."""
        return self.tagged().astype("<u8", copy=False).tobytes()

    def tagged(self) -> np.ndarray:
        """A read-only numpy view of the sorted tagged hashes (uint64), one per name; no copy."""
        view = np.frombuffer(self._table, dtype=np.uint64) if self._entries else np.empty(0, dtype=np.uint64)
        view.flags.writeable = False
        return view

    def with_changes(self, added: bytes, removed: bytes) -> DomainSet:
        """A new set: this one without the tagged hashes `removed` and with `added` (both as `to_bytes` gives).

        The delta must fit this set exactly: every removed hash present, no added name present after the
        removal (a name whose kinds change is removed and added). Raises ValueError otherwise, which means
        the delta was made against another set.
        """
        current = self.tagged()
        gone, fresh = _hashes(removed), _hashes(added)
        where = np.searchsorted(current, gone)
        if not bool(_found(current, gone, where).all()):
            raise ValueError("the delta removes entries this set does not hold: it was made against another set")
        kept = np.delete(current, where)
        kept_names, fresh_names = kept >> _IDENTITY, fresh >> _IDENTITY
        slots = np.searchsorted(kept_names, fresh_names)
        if bool(_found(kept_names, fresh_names, slots).any()) or _repeats(fresh_names):
            raise ValueError("the delta adds names this set already holds: it was made against another set")
        if len(fresh) and not bool((fresh & _KIND_MASK_U64).all()):
            raise ValueError("the delta adds an entry without a kind")
        return DomainSet._from_sorted(np.insert(kept, slots, fresh))

    @classmethod
    def _from_tagged(cls, tagged: np.ndarray) -> DomainSet:
        tagged.sort()
        identity = tagged >> np.uint64(_KIND_BITS)
        if len(tagged) > 1 and bool((identity[1:] == identity[:-1]).any()):
            tagged = _merge_kinds(tagged, identity)
        return cls._from_sorted(tagged)

    @classmethod
    def _from_sorted(cls, tagged: np.ndarray) -> DomainSet:
        """From sorted tagged hashes with one entry per name: only the directory is computed."""
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
        if entry.startswith("."):
            return self.kind(entry[1:].encode()) & (APEX | SUBDOMAINS) == APEX | SUBDOMAINS
        return bool(self.kind(entry.encode()) & APEX)

    def __len__(self) -> int:
        return self._entries

    @property
    def nbytes(self) -> int:
        """Memory held by the table and its directory."""
        return self._table.itemsize * len(self._table) + self._directory.itemsize * len(self._directory)


_AFTER_DOT = itemgetter(slice(1, None))
_AFTER_STAR = itemgetter(slice(2, None))


def _starting_with(names: list[str] | tuple[str, ...], prefix: str | tuple[str, ...]) -> np.ndarray:
    return np.fromiter(map(str.startswith, names, repeat(prefix)), dtype=bool, count=len(names))


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


def _hashes(data: bytes) -> np.ndarray:
    """Little-endian uint64s as a sorted native array without repeats."""
    if len(data) % 8:
        raise ValueError(f"tagged hashes are 8 bytes each, got {len(data)} bytes")
    values = np.sort(np.frombuffer(data, dtype="<u8").astype(np.uint64))
    # Not np.unique: in numpy 2.4 it hashes, and takes 1.1 s on 1M uint64s where sorting takes 0.07 s.
    return values[np.concatenate(([True], values[1:] != values[:-1]))] if len(values) else values


def _found(table: np.ndarray, values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Whether each value sits at its `searchsorted` position in sorted `table`."""
    found = np.zeros(len(values), dtype=bool)
    inside = positions < len(table)
    found[inside] = table[positions[inside]] == values[inside]
    return found


def _repeats(sorted_values: np.ndarray) -> bool:
    return len(sorted_values) > 1 and bool((sorted_values[1:] == sorted_values[:-1]).any())
