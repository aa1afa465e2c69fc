"""An IPSet feed's addresses and CIDRs, for the per-answer lookup of raw A/AAAA rdata (docs/detection.md).

Why one Python set of ints per prefix length: a lookup is then one `int.from_bytes`, and per prefix length
present one shift and one set probe, most specific first. Real feeds use few lengths (/32 and a handful of
CIDR sizes), so the loop is short, and no object is made on a miss. The matching entry's text is rebuilt only
on a hit, so the sets hold bare ints.

An IPv4-mapped IPv6 answer (`::ffff:192.0.2.7`) is looked up as the IPv4 address it carries, and entries are
stored in the form `dnswatch.feeds.lines` gives them (mapped IPv6 networks already turned into IPv4 ones).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from itertools import filterfalse

import numpy as np

from dnswatch.feeds.lines import IPV4_ADDRESS, FeedError, ip_entry

_MAPPED_PREFIX = b"\x00" * 10 + b"\xff\xff"
_IPV4_HOST = re.compile(rf"(?:{IPV4_ADDRESS.pattern})(?:/32)?")


class IPSet:
    """An immutable set of IPv4 and IPv6 networks with a most-specific-first lookup of raw addresses."""

    __slots__ = ("_v4", "_v6", "_count")

    def __init__(self, v4: dict[int, set[int]], v6: dict[int, set[int]]) -> None:
        """Take {prefix length: {network >> (bits - length)}}; `from_entries` is the usual way in."""
        # (shift, prefix length, networks) from the longest prefix down: the first hit is the most specific.
        self._v4 = tuple((32 - length, length, frozenset(nets)) for length, nets in sorted(v4.items(), reverse=True))
        self._v6 = tuple((128 - length, length, frozenset(nets)) for length, nets in sorted(v6.items(), reverse=True))
        self._count = sum(len(nets) for nets in v4.values()) + sum(len(nets) for nets in v6.values())

    @classmethod
    def from_entries(cls, entries: Iterable[str]) -> IPSet:
        """Build from addresses and CIDRs (canonical `ParsedFeed` entries or any text `ip_entry` accepts).

        Raises FeedError naming the first entry that is neither an address nor a CIDR.
        """
        entries = entries if isinstance(entries, (list, tuple)) else list(entries)
        # Plain IPv4 hosts are most of every large feed: converted in one numpy pass, not one by one.
        hosts = list(filter(_IPV4_HOST.fullmatch, entries))
        others = list(filterfalse(_IPV4_HOST.fullmatch, entries)) if len(hosts) < len(entries) else []
        v4: dict[int, set[int]] = {32: set(_ipv4_ints(hosts))} if hosts else {}
        v6: dict[int, set[int]] = {}
        for entry in others:
            canonical = ip_entry(entry)
            if canonical is None:
                raise FeedError(f"IPSet entry {entry!r} is neither an IP address nor a CIDR")
            network = ipaddress.ip_network(canonical)
            shift = network.max_prefixlen - network.prefixlen
            table = v4 if network.version == 4 else v6
            table.setdefault(network.prefixlen, set()).add(int(network.network_address) >> shift)
        return cls(v4, v6)

    def lookup(self, addr: bytes) -> str | None:
        """The most specific entry holding raw address `addr` (4 or 16 bytes) as `a.b.c.d/n`, or None."""
        size = len(addr)
        if size == 4:
            value = int.from_bytes(addr, "big")
            for shift, length, nets in self._v4:
                if value >> shift in nets:
                    return _ipv4_text(value >> shift << shift, length)
        elif size == 16:
            if addr[:12] == _MAPPED_PREFIX:
                entry = self.lookup(addr[12:])
                if entry is not None or not self._v6:
                    return entry
            value = int.from_bytes(addr, "big")
            for shift, length, nets in self._v6:
                if value >> shift in nets:
                    return str(ipaddress.IPv6Network((value >> shift << shift, length)))
        return None  # no match, or not an address at all (a malformed rdata): never an error

    def __contains__(self, address: object) -> bool:
        """`"192.0.2.7" in ipset`: whether a textual address falls in any entry."""
        if not isinstance(address, str):
            return False
        try:
            packed = ipaddress.ip_address(address).packed
        except ValueError:
            return False
        return self.lookup(packed) is not None

    def __len__(self) -> int:
        return self._count

    def __repr__(self) -> str:
        return f"IPSet({self._count} entries)"


def _ipv4_text(value: int, length: int) -> str:
    return f"{value >> 24}.{value >> 16 & 255}.{value >> 8 & 255}.{value & 255}/{length}"


def _ipv4_ints(hosts: list[str]) -> list[int]:
    """The 32-bit values of validated dotted quads (optionally with `/32`), computed on all digits at once."""
    raw = np.frombuffer(("\n".join(hosts).replace("/32", "") + "\n").encode("ascii"), dtype=np.uint8)
    ends = np.flatnonzero((raw == ord(".")) | (raw == ord("\n")))  # the byte after each octet's digits
    width = ends - np.concatenate(([-1], ends[:-1])) - 1  # 1 to 3 digits, as _IPV4_HOST validated

    def digit(back: int) -> np.ndarray:  # the digit `back` places before each octet's end, 0 where none
        return np.where(width >= back, raw[ends - back].astype(np.int64) - ord("0"), 0)

    octets = digit(1) + 10 * digit(2) + 100 * digit(3)
    quads = octets.reshape(-1, 4)
    return (quads[:, 0] << 24 | quads[:, 1] << 16 | quads[:, 2] << 8 | quads[:, 3]).tolist()
