"""Where an entry of a newline-delimited feed was written: its line number and the line as written.

An event names the entry that matched in canonical form (`evil.com`, `*.evil.com`, `192.0.2.7/32`); an
analyst wants the feed's own line too (`0.0.0.0 Evil.COM`, line 4711), to see why it fired and to find it in
the feed's history. Pure: the body's text in, (line, text) out.

Why no side table per entry: a table of line numbers aligned with a 1M-entry set costs 4 bytes per entry on
every node, and every line number after an inserted line changes, so a 1 % change of the feed would resend all
of them. Instead the body itself is kept (by the collector, per version it still serves; by the replay, for
its own files) and an entry is looked up when an event needs it: a search of the text for the entry's name
(C speed: tens of milliseconds on a 20 MB body), each hit's line parsed alone and kept when it yields the
entry. Results are cached, so a feed's entry costs one search however many events it raises. The cost is
the body's text, about its size in bytes (docs/detection.md has the measured figures).

A line whose meaning depends on lines before it (an RPZ name relative to `$ORIGIN`) is not found, and neither
is an entry the body does not spell out (a `matchSubdomains` widening is found at its plain line): the event
then shows no line, never a wrong one.
"""

from __future__ import annotations

import codecs
import re
import sys

from dnswatch.feeds.entries import SUBTREE_MARK, WILDCARD_MARK, entry_name
from dnswatch.feeds.lines import DEFAULT_MAX_BYTES, DOMAIN_NAME_SET, FeedError, decode_body, parse_lines

__all__ = ["EntryLines", "reported_entry"]

_CACHE_LIMIT = 10_000
_NAME_CHAR = re.compile(r"[A-Za-z0-9_-]")


def reported_entry(entry: str) -> str:
    """A parsed entry in the form matches report it (dnswatch/feeds/domainset.py): `.x` is reported as `x`."""
    if entry.startswith(SUBTREE_MARK) and not entry.startswith(WILDCARD_MARK):
        return entry[1:]
    return entry


class EntryLines:
    """The lines of one version of a newline-delimited feed body, searchable by entry."""

    __slots__ = ("_text", "_content", "_found")

    def __init__(self, text: str, content: str) -> None:
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")  # line numbers as the parser counts them
        self._text = text
        self._content = content
        self._found: dict[str, tuple[int, str] | None] = {}

    @classmethod
    def from_body(cls, body: bytes, content: str, max_bytes: int = DEFAULT_MAX_BYTES) -> EntryLines | None:
        """From a body as pulled (gzip, BOM and UTF-16 as the parser reads them); None if it cannot be read."""
        try:
            return cls(decode_body(body, max_bytes), content)
        except FeedError:
            return None

    @property
    def nbytes(self) -> int:
        """Memory held: the body's text (one byte per character for an ASCII body)."""
        return sys.getsizeof(self._text)

    @property
    def search_cost(self) -> int:
        """Characters a first lookup searches (at most: it stops at the first line that gives the entry)."""
        return len(self._text)

    def searched(self, entry: str) -> bool:
        """Whether `locate(entry)` is answered from the cache (a lookup without a search of the body)."""
        return entry in self._found

    def locate(self, entry: str) -> tuple[int, str] | None:
        """(1-based line number, the line as written) of the first line that yields `entry` as matches report
        it (`evil.com`, `*.evil.com`, `192.0.2.0/24`); None when no line spells it out."""
        if entry in self._found:
            return self._found[entry]
        found = self._search(entry)
        if len(self._found) >= _CACHE_LIMIT:
            self._found.clear()
        self._found[entry] = found
        return found

    def _search(self, entry: str) -> tuple[int, str] | None:
        for key in self._keys(entry):
            for pattern in (re.escape(key), f"(?i){re.escape(key)}"):  # exact case first: the usual, and fast
                for hit in re.finditer(pattern, self._text):
                    if not self._bounded(hit.start(), hit.end()):
                        continue
                    start = self._text.rfind("\n", 0, hit.start()) + 1
                    end = self._text.find("\n", hit.end())
                    line = self._text[start:] if end < 0 else self._text[start:end]
                    if self._yields(line, entry):
                        return self._text.count("\n", 0, start) + 1, line
        return None

    def _keys(self, entry: str) -> list[str]:
        """The texts a line giving `entry` must contain: its name, and the Unicode form of punycode labels."""
        if self._content != DOMAIN_NAME_SET:
            return [entry.partition("/")[0]]
        mark = WILDCARD_MARK if entry.startswith(WILDCARD_MARK) else ""
        name = entry_name(entry)
        keys = [mark + name]
        if "xn--" in name:
            unicode = ".".join(_from_punycode(label) for label in name.split("."))
            if unicode != name:
                keys.append(mark + unicode)
        return keys

    def _bounded(self, start: int, end: int) -> bool:
        # A whole name, not part of a longer one: `evil.com` is not found in `notevil.com` or `a.evil.com`,
        # but is in `evil.com.` (a trailing dot ends a name).
        text = self._text
        if start > 0 and (text[start - 1] == "." or _NAME_CHAR.match(text, start - 1)):
            return False
        if end < len(text) and _NAME_CHAR.match(text, end):
            return False
        return not (end + 1 < len(text) and text[end] == "." and _NAME_CHAR.match(text, end + 1))

    def _yields(self, line: str, entry: str) -> bool:
        try:
            parsed = parse_lines(line.encode("utf-8", "surrogatepass"), self._content)
        except (FeedError, ValueError):
            return False
        if self._content == DOMAIN_NAME_SET:
            return any(reported_entry(found) == entry for found in parsed.entries)
        return entry in parsed.entries


def _from_punycode(label: str) -> str:
    if not label.startswith("xn--"):
        return label
    try:
        return codecs.decode(label[4:].encode("ascii"), "punycode")
    except (UnicodeError, ValueError):
        return label
