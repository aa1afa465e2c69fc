"""The feed line of each match, filled into an event as the collector receives it (docs/detection.md).

An agent knows the version of the set that matched but not the feed's body, which stays with the collector
(dnswatch/feeds/entrylines.py says why): it sends `line` as null, and the collector fills in `line` and
`line_text` from the body of that version when it still holds it. Pure: event texts and the held bodies in,
event texts out. The event's id and everything else in it stay as the agent wrote them, so a re-emission of
a grown event is filled alike and replaces its row as before.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from dnswatch.feeds.entrylines import EntryLines

__all__ = ["UNFILLED", "fill_lines"]

UNFILLED = '"line":null'
"""What an agent's compact JSON holds when a match's line is left to the collector: a text without it is
passed by at the cost of one substring search."""

SEARCH_BUDGET = 128 * 1024 * 1024
"""Characters of feed bodies searched per batch, at most, by first lookups of entries (about 1.5 GB/s: a 1M-entry
feed's 21 MB body takes 14 ms), so that a flood of events matching thousands of distinct entries of a large
feed cannot hold the ingest up for seconds (six first lookups in such a feed per batch; a small feed's are
never held back). The matches past it keep `line` null; the entries found stay cached, so a re-emission of the
event, or the next batch, fills them in."""


def fill_lines(texts: list[str], bodies: Mapping[tuple[str, int], EntryLines]) -> list[str] | None:
    """`texts` with the line of every match whose version's body is in `bodies`; None when none changed."""
    if not bodies:
        return None
    out, changed = [], False
    filling: dict[tuple[str, str, str], str | None] = {}  # a batch's events mostly share their matches
    searches = [SEARCH_BUDGET]
    for text in texts:
        filled = _filled(text, bodies, filling, searches) if UNFILLED in text else None
        out.append(text if filled is None else filled)
        changed = changed or filled is not None
    return out if changed else None


# A match as the agent writes it (agent/core/events.py's MatchRecord, in its field order, compact JSON) with its
# line left to the collector. Rewriting just these spans, not decoding and encoding the whole event, costs 7.5 us
# an event where json.loads and json.dumps took 27 (an event without one: 0.5 us); every event of an agent fed
# by the collector has one.
_STRING = r'"(?:[^"\\]|\\.)*"'
_UNFILLED_MATCH = re.compile(
    rf'"feed":(?P<feed>{_STRING}),"entry":(?P<entry>{_STRING}),"section":"[a-z]+","feed_version":"(?P<version>[0-9]+)",'
    rf'(?P<unfilled>"line":null,"line_text":null)')


def _filled(text: str, bodies: Mapping[tuple[str, int], EntryLines],
            filling: dict[tuple[str, str, str], str | None], searches: list[int]) -> str | None:
    pieces, last = [], 0
    for match in _UNFILLED_MATCH.finditer(text):
        key = (match["feed"], match["version"], match["entry"])
        if key not in filling:
            filling[key] = _filling(bodies, *key, searches)
        if filling[key] is None:
            continue
        pieces += [text[last:match.start("unfilled")], filling[key]]
        last = match.end("unfilled")
    return "".join(pieces) + text[last:] if pieces else None


def _filling(bodies: Mapping[tuple[str, int], EntryLines], feed: str, version: str, entry: str,
             searches: list[int]) -> str | None:
    """The JSON of `line` and `line_text` for a match of `entry` (JSON text) in `feed` at `version`."""
    lines = bodies.get((json.loads(feed), int(version)))
    entry_text = json.loads(entry)
    if lines is None:
        return None
    if not lines.searched(entry_text):
        if searches[0] < lines.search_cost:
            return None
        searches[0] -= lines.search_cost
    found = lines.locate(entry_text)
    if found is None:
        return None
    line, written = found
    return f'"line":{line},"line_text":{json.dumps(written if written != entry_text else None, ensure_ascii=False)}'
