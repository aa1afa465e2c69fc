"""The DNS message scanner: finds every name and answer address of a message and matches them against feeds.

This is the replay and capture hot path (docs/architecture.md: about 4 µs a packet in all), so it does not decode
messages into objects. It walks the raw bytes once, takes each name as a raw slice of the packet (joining
slices only when a compression pointer splits it), and looks the slice up in a cache of names already
classified; only a name never seen before is lower-cased, turned into canonical text and looked up in the
feeds' `DomainSet`s. Cluster DNS traffic repeats a small set of names, so most names cost one dict lookup.
Records whose owner is a pointer to the question are skipped: that name was checked as the question.

What is checked (docs/detection.md): every question name; the owner of every record in the answer, authority and
additional sections; the names inside CNAME, DNAME, NS, PTR, MX, SRV, SOA (mname, rname) and SVCB/HTTPS
rdata; every A/AAAA address of the answer section against the IP feeds. A malformed message (truncation,
compression loops or forward pointers, extended label types, names over 255 octets, counts that overrun the
message) is reported as damaged; whatever was decoded intact before the damage is still matched.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence

from dnswatch.feeds.domainset import APEX, DomainSet
from dnswatch.feeds.ipset import IPSet
from agent.core.sighting import NO_CONTEXT, FeedContext, Match

SECTIONS = ("question", "answer", "authority", "additional")
_QUESTION, _ANSWER = 0, 1

TYPE_A, TYPE_NS, TYPE_CNAME, TYPE_SOA, TYPE_PTR, TYPE_MX = 1, 2, 5, 6, 12, 15
TYPE_AAAA, TYPE_SRV, TYPE_DNAME, TYPE_OPT, TYPE_SVCB, TYPE_HTTPS = 28, 33, 39, 41, 64, 65

# Where the (first) name sits inside the rdata of the record types whose rdata names a domain.
RDATA_NAME_OFFSET = {
    TYPE_NS: 0,
    TYPE_CNAME: 0,
    TYPE_PTR: 0,
    TYPE_DNAME: 0,
    TYPE_SOA: 0,  # mname; rname follows it
    TYPE_MX: 2,  # after the preference
    TYPE_SRV: 6,  # after priority, weight, port
    TYPE_SVCB: 2,  # after the priority
    TYPE_HTTPS: 2,
}
_POINTER_TO_QUESTION = 0xC0, 12

CLEAN = (False, ())
DAMAGED = (True, ())
_MISSING = object()


class Damaged(ValueError):
    """The message is malformed at this point; nothing past it is trusted."""


MAX_NAME_OCTETS = 255  # RFC 1035 §3.1, in wire form with the root label
MAX_POINTER_JUMPS = 127  # a 255-octet name has at most 127 labels, so no honest name needs more jumps
# read_names_once reads a message's first names as read_name does: remembering costs a few times a plain walk,
# honest messages have a few names, and the first 16 walks of a hostile one cost at most 16 × 254 steps.
PLAIN_NAMES = 16
_NAMES_READ = -1  # the key under which `walked` counts them (positions are 0 or more)


def read_name(message: bytes, offset: int) -> tuple[bytes, int]:
    """The name at `offset` in wire form with compression expanded, and the offset just after it.

    Untrusted bytes: every pointer must point strictly before every position this walk has visited (each
    jump lands lower than the last, so no loop and no revisit is possible), the name may not grow past 255
    octets, and at most 127 jumps are followed. Raises `Damaged`, or IndexError when the message ends inside
    the name.
    """
    start = offset
    parts = None
    octets = 0  # of the segments already joined
    jumps = 0
    after = -1
    while True:
        length = message[offset]
        if length == 0:
            if parts is None:
                wire = message[start : offset + 1]
            else:
                parts.append(message[start : offset + 1])
                wire = b"".join(parts)
            if after < 0:
                after = offset + 1
            break
        if length < 64:
            offset += length + 1
            continue
        if length < 0xC0:
            raise Damaged("extended label type")
        pointer = (length & 0x3F) << 8 | message[offset + 1]
        # `start` is the lowest position visited: the walk only moves forward from it until this jump.
        if pointer >= start:
            raise Damaged("compression pointer does not point before the name")
        octets += offset - start
        jumps += 1
        if octets >= MAX_NAME_OCTETS or jumps > MAX_POINTER_JUMPS:
            raise Damaged("name longer than 255 octets")
        if parts is None:
            parts = []
        parts.append(message[start:offset])
        if after < 0:
            after = offset + 2
        offset = start = pointer
    if len(wire) > MAX_NAME_OCTETS:
        raise Damaged("name longer than 255 octets")
    return wire, after


def read_names_once(message: bytes, offset: int, walked: dict) -> tuple[bytes, int]:
    """`read_name`, remembering in `walked` (one dict per message) the name read from every position visited.

    The rules bound one name, not a message: 10,000 names of a 64 KiB message, each a pointer to the deepest
    link of a 127-jump chain (or into a run of 127 one-octet labels), are each walked 127 steps deep: over a
    second of scanning for one message. Here a walk stops at the first position an earlier walk of the same
    message went through and takes the rest of the name from there, so a message costs steps in proportion to
    its length. What is remembered for a position: the name read from it, the jumps that took, the pointer
    that ends its run of labels (a walk that reaches the position by labels from an earlier segment start must
    still see that pointer land before its start), and the offset after that run.
    Names, offsets and errors are `read_name`'s: the same rules, counted over the whole name.
    """
    names_read = walked.get(_NAMES_READ, 0)
    if names_read < PLAIN_NAMES:
        walked[_NAMES_READ] = names_read + 1
        return read_name(message, offset)
    start = offset
    parts = []
    jumps = 0
    after = -1
    visited = []  # (position, its index in the name's wire form, jumps before it, its segment)
    segment_ends = []  # per segment: (pointer target ending it or -1 at the root, offset after that)
    octets = 0  # of the segments already in `parts`
    tail_jumps = 0
    while True:
        known = walked.get(offset)
        if known is not None:
            name, index, tail_jumps, bound, run_after = known
            if bound >= start:
                raise Damaged("compression pointer does not point before the name")
            if jumps + tail_jumps > MAX_POINTER_JUMPS:
                raise Damaged("name longer than 255 octets")
            parts.append(message[start:offset])
            parts.append(name[index:] if index else name)
            if after < 0:
                after = run_after
            segment_ends.append((bound, run_after))
            break
        visited.append((offset, octets + offset - start, jumps, len(segment_ends)))
        length = message[offset]
        if length == 0:
            parts.append(message[start : offset + 1])
            if after < 0:
                after = offset + 1
            segment_ends.append((-1, offset + 1))
            break
        if length < 64:
            offset += length + 1
            continue
        if length < 0xC0:
            raise Damaged("extended label type")
        pointer = (length & 0x3F) << 8 | message[offset + 1]
        if pointer >= start:
            raise Damaged("compression pointer does not point before the name")
        octets += offset - start
        jumps += 1
        if octets >= MAX_NAME_OCTETS or jumps > MAX_POINTER_JUMPS:
            raise Damaged("name longer than 255 octets")
        parts.append(message[start:offset])
        if after < 0:
            after = offset + 2
        segment_ends.append((pointer, offset + 2))
        offset = start = pointer
    wire = parts[0] if len(parts) == 1 else b"".join(parts)
    if len(wire) > MAX_NAME_OCTETS:
        raise Damaged("name longer than 255 octets")
    total_jumps = jumps + tail_jumps
    for position, index, jumps_before, segment in visited:
        bound, run_after = segment_ends[segment]
        walked[position] = (wire, index, total_jumps - jumps_before, bound, run_after)
    return wire, after


def wire_labels(wire: bytes) -> list[bytes] | None:
    """The labels of an uncompressed wire-form name, or None unless it is exactly one well-formed name."""
    labels = []
    offset = 0
    last = len(wire) - 1
    while offset < last:
        length = wire[offset]
        if length == 0 or length >= 64:
            return None
        labels.append(wire[offset + 1 : offset + 1 + length])
        offset += length + 1
    if offset != last or wire[last] != 0 or last + 1 > 255:
        return None
    return labels


def dotted(labels: list[bytes]) -> bytes:
    """Canonical text of lower-cased labels; a dot or backslash inside a label is escaped as in zone files."""
    text = b".".join(labels)
    if text.count(b".") != len(labels) - 1 or b"\\" in text:
        text = b".".join(label.replace(b"\\", b"\\\\").replace(b".", b"\\.") for label in labels)
    return text


def _suffix_starts(labels: list[bytes], text: bytes) -> list[int]:
    """Where each proper suffix of `text` starts, longest suffix first."""
    starts = []
    if len(text) == sum(map(len, labels)) + len(labels) - 1:
        position = 0
        for label in labels[:-1]:
            position += len(label) + 1
            starts.append(position)
        return starts
    escaped = False  # some label held a dot or a backslash: find the unescaped dots
    for index, byte in enumerate(text):
        if escaped:
            escaped = False
        elif byte == 0x5C:
            escaped = True
        elif byte == 0x2E:
            starts.append(index + 1)
    return starts


class Matcher:
    """Scans DNS messages against a fixed collection of feeds; build a new one when the feeds change."""

    def __init__(
        self,
        domain_feeds: Sequence[tuple[str, DomainSet]] = (),
        ip_feeds: Sequence[tuple[str, IPSet]] = (),
        cache_limit: int = 200_000,
        contexts: Mapping[str, FeedContext] | None = None,
    ) -> None:
        self._domain_feeds = tuple(domain_feeds)
        self._ip_feeds = tuple(ip_feeds)
        self._contexts = dict(contexts or {})
        """Per feed name, what its matches carry besides the entry (version, labels, severity, lines)."""
        self._cache: dict[bytes, tuple] = {}  # name in wire form -> classification
        self._parents: dict[bytes, tuple] = {}  # canonical suffix -> entries covering its subdomains
        self.seen_messages: dict[bytes, tuple] = {}
        """Message minus its id -> scan result; hot loops may look here before calling `scan`."""
        self._cache_limit = cache_limit

    def scan(self, message: bytes) -> tuple[bool, tuple[Match, ...]]:
        """(damaged, matches) for one DNS message (`bytes`); `CLEAN` in the common case.

        Clients repeat their questions and cluster DNS answers its own names with fixed TTLs, so whole
        messages repeat apart from their id: those cost one slice and one dict lookup.
        """
        key = message[2:]
        return self.seen_messages.get(key) or self.scan_unseen(message, key)

    def scan_unseen(self, message: bytes, key: bytes) -> tuple[bool, tuple[Match, ...]]:
        """`scan` for a message whose `key` (`message[2:]`) the caller found missing from `seen_messages`."""
        result = self._scan_message(message)
        cache = self.seen_messages
        if len(cache) >= self._cache_limit:
            cache.clear()
        cache[key] = result
        return result

    def _scan_message(self, message: bytes) -> tuple[bool, tuple[Match, ...]]:
        size = len(message)
        if size < 12:
            return DAMAGED
        qdcount = message[4] << 8 | message[5]
        other_records = message[6] | message[7] | message[8] | message[9] | message[10] | message[11]
        cache = self._cache
        found = None
        damaged = False
        offset = 12
        walked = None  # one per message, shared by its questions and records: see read_names_once
        try:
            if qdcount == 1 and message[12] < 64:
                # The question is almost never compressed: try the slice up to the first zero byte.
                end = message.find(b"\x00", 12)
                hit = cache.get(message[12 : end + 1], _MISSING) if end > 0 else None
                if hit is _MISSING:
                    hit = self._classify_new(message[12 : end + 1])
                if hit is None:
                    wire, end = read_name(message, 12)
                    end -= 1
                    hit = self._lookup(wire)
                if hit:
                    found = [(_QUESTION, hit)]
                offset = end + 5
                if offset > size:
                    raise Damaged("question truncated")
            else:
                walked = {}
                for _ in range(qdcount):
                    wire, offset = read_names_once(message, offset, walked)
                    hit = self._lookup(wire)
                    if hit:
                        found = found or []
                        found.append((_QUESTION, hit))
                    offset += 4
                    if offset > size:
                        raise Damaged("question truncated")
            if other_records:
                found = self._scan_records(message, offset, qdcount, found, walked)
        except (IndexError, Damaged):
            damaged = True
        except _DamagedWith as stop:
            damaged, found = True, stop.found
        if found is None:
            return DAMAGED if damaged else CLEAN
        return damaged, self._matches(found)

    def _scan_records(self, message: bytes, offset: int, qdcount: int, found: list | None,
                      walked: dict | None) -> list | None:
        size = len(message)
        ancount = message[6] << 8 | message[7]
        nscount = message[8] << 8 | message[9]
        arcount = message[10] << 8 | message[11]
        if ancount == 0 and nscount == 0 and arcount == 1 and message[offset : offset + 3] == b"\x00\x00\x29":
            # A plain query with its EDNS OPT record: the root owner has nothing to check.
            if offset + 11 + (message[offset + 9] << 8 | message[offset + 10]) > size:
                raise _DamagedWith(found)
            return found
        ip_feeds = self._ip_feeds
        lookup = self._lookup
        if walked is None:
            walked = {}
        # Where the names already checked start: an owner that is just a pointer to one of them (the
        # question, the previous CNAME's target: the usual shape of an answer) needs no second look.
        checked = {12} if qdcount else set()
        try:
            for section, count in ((1, ancount), (2, nscount), (3, arcount)):
                for _ in range(count):
                    first = message[offset]
                    if first == 0:
                        offset += 1
                    elif first >= 0xC0 and ((first & 0x3F) << 8 | message[offset + 1]) in checked:
                        offset += 2
                    else:
                        checked.add(offset)
                        wire, offset = read_names_once(message, offset, walked)
                        hit = lookup(wire)
                        if hit:
                            found = found or []
                            found.append((section, hit))
                    rtype = message[offset] << 8 | message[offset + 1]
                    rdata = offset + 10
                    offset = rdata + (message[offset + 8] << 8 | message[offset + 9])
                    if offset > size:
                        raise Damaged("record data truncated")
                    name_offset = RDATA_NAME_OFFSET.get(rtype)
                    if name_offset is not None:
                        checked.add(rdata + name_offset)
                        wire, after = read_names_once(message, rdata + name_offset, walked)
                        if after > offset:
                            raise Damaged("name overruns its record")
                        hit = lookup(wire)
                        if rtype == TYPE_SOA:
                            if hit:
                                found = found or []
                                found.append((section, hit))
                            wire, after = read_names_once(message, after, walked)
                            if after > offset:
                                raise Damaged("name overruns its record")
                            hit = lookup(wire)
                        if hit:
                            found = found or []
                            found.append((section, hit))
                    elif ip_feeds and section == _ANSWER and (rtype == TYPE_A or rtype == TYPE_AAAA):
                        hit = self._match_address(message[rdata:offset])
                        if hit:
                            found = found or []
                            found.append((section, hit))
        except (IndexError, Damaged):
            raise _DamagedWith(found) from None
        return found

    def _lookup(self, wire: bytes) -> tuple:
        hit = self._cache.get(wire, _MISSING)
        if hit is _MISSING:
            hit = self._classify_new(wire)
        return hit

    def _classify_new(self, wire: bytes) -> tuple | None:
        """Classify a name not in the cache: () when it matches nothing, (text, ((feed, entry), ...)) when it
        does, None when `wire` is not exactly one well-formed uncompressed name (then it is not cached)."""
        labels = wire_labels(wire.lower())
        if labels is None:
            return None
        hit: tuple = ()
        if labels:
            text = dotted(labels)
            pairs = [
                (feed, text.decode("ascii", "backslashreplace"), "domain")
                for feed, domains in self._domain_feeds
                if domains.kind(text) & APEX
            ]
            if len(labels) > 1:
                apex_feeds = {feed for feed, _, _ in pairs}
                pairs += [pair for pair in self._parent_matches(text, labels) if pair[0] not in apex_feeds]
            if pairs:
                hit = (text.decode("ascii", "backslashreplace"), tuple(pairs))
        cache = self._cache
        if len(cache) >= self._cache_limit:
            cache.clear()
            self._parents.clear()
        cache[wire] = hit
        return hit

    def _parent_matches(self, text: bytes, labels: list[bytes]) -> tuple:
        """Per feed, the most specific entry covering `text` through one of its proper suffixes.

        New names mostly hang under parents already seen (`svc.cluster.local`, `amazonaws.com`), so the
        answer for every suffix is remembered and the walk up stops at the first one known.
        """
        parents = self._parents
        starts = _suffix_starts(labels, text)
        unknown = []
        inherited: tuple = ()
        for start in starts:
            suffix = text[start:]
            known = parents.get(suffix)
            if known is not None:
                inherited = known
                break
            unknown.append(suffix)
        for suffix in reversed(unknown):  # shortest first, each inheriting from its parent
            own = []
            for feed, domains in self._domain_feeds:
                entry = domains.parent_entry(suffix)
                if entry is not None:
                    own.append((feed, entry, "domain"))
            if own:
                own_feeds = {feed for feed, _, _ in own}
                inherited = tuple(own) + tuple(pair for pair in inherited if pair[0] not in own_feeds)
            parents[suffix] = inherited
        return inherited

    def _match_address(self, address: bytes) -> tuple:
        pairs = []
        for feed, addresses in self._ip_feeds:
            entry = addresses.lookup(address)
            if entry is not None:
                pairs.append((feed, entry, "ip"))
        if not pairs:
            return ()
        return str(ipaddress.ip_address(address)), tuple(pairs)

    def _matches(self, found: list) -> tuple[Match, ...]:
        # Only messages that matched get here, and their results are cached: no hot path.
        seen = set()
        matches = []
        for section, (name, pairs) in found:
            for feed, entry, kind in pairs:
                if (name, feed, entry) not in seen:
                    seen.add((name, feed, entry))
                    context = self._contexts.get(feed, NO_CONTEXT)
                    line, text = (context.lines.locate(entry) if context.lines is not None else None) or (None, None)
                    matches.append(Match(name, feed, entry, SECTIONS[section], kind, context.version, line,
                                         text if text != entry else None, context.severity, context.labels))
        return tuple(matches)


class _DamagedWith(Exception):
    """Carries the matches found before the damage out of the record walk."""

    def __init__(self, found: list | None) -> None:
        super().__init__("damaged")
        self.found = found


def question_of(message: bytes) -> tuple[str, int]:
    """(canonical first question name, qtype) of a message, ("", 0) when it has none intact."""
    try:
        if message[4] << 8 | message[5] == 0:
            return "", 0
        wire, offset = read_name(message, 12)
        qtype = message[offset] << 8 | message[offset + 1]
    except (IndexError, Damaged):
        return "", 0
    labels = wire_labels(wire.lower()) or []
    return dotted(labels).decode("ascii", "backslashreplace"), qtype


class NameCollector(Matcher):
    """The scanner's walk with every name and answer address recorded instead of matched.

    It runs the very code `Matcher.scan` runs (only the classification step differs), so the differential
    tests against dnslib check the hot path itself.
    """

    def __init__(self) -> None:
        super().__init__(ip_feeds=(("", None),))
        self.names: list[tuple[bytes, ...]] = []
        self.addresses: list[bytes] = []

    def collect(self, message: bytes) -> bool:
        """Walk `message`, filling `names` (lower-cased label tuples) and `addresses`; True when damaged."""
        self.names, self.addresses = [], []
        damaged, _ = self._scan_message(message)
        return damaged

    def _classify_new(self, wire: bytes) -> tuple | None:
        labels = wire_labels(wire.lower())
        if labels is None:
            return None
        self.names.append(tuple(labels))
        return ()

    def _match_address(self, address: bytes) -> tuple:
        self.addresses.append(address)
        return ()
