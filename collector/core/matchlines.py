"""The feed line of each match, filled into an event as the collector receives it (docs/detection.md).

An agent knows the version of the set that matched but not the feed's body, which stays with the collector
(dnswatch/feeds/entrylines.py says why): it sends `line` as null, and the collector fills in `line` and
`line_text` from the body of that version when it still holds it. Pure: event texts and the held bodies in,
event texts out. The event's id and everything else in it stay as the agent wrote them, so a re-emission of
a grown event is filled alike and replaces its row as before.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from dnswatch.feeds.entrylines import EntryLines

__all__ = ["UNFILLED", "fill_lines"]

UNFILLED = '"line":null'
"""What an agent's compact JSON holds when a match's line is left to the collector: a text without it is
passed by at the cost of one substring search."""


def fill_lines(texts: list[str], bodies: Mapping[tuple[str, int], EntryLines]) -> list[str] | None:
    """`texts` with the line of every match whose version's body is in `bodies`; None when none changed."""
    if not bodies:
        return None
    out, changed = [], False
    for text in texts:
        filled = _filled(text, bodies) if UNFILLED in text else None
        out.append(text if filled is None else filled)
        changed = changed or filled is not None
    return out if changed else None


def _filled(text: str, bodies: Mapping[tuple[str, int], EntryLines]) -> str | None:
    try:
        event = json.loads(text)
        matches = event["record"]["matches"]
    except (ValueError, KeyError, TypeError):
        return None  # the store says what is wrong with it
    changed = False
    for match in matches if isinstance(matches, list) else ():
        if not isinstance(match, dict) or match.get("line") is not None:
            continue
        version = match.get("feed_version")
        lines = bodies.get((match.get("feed"), int(version))) if isinstance(version, str) and version.isdigit() \
            else None
        entry = match.get("entry")
        found = lines.locate(entry) if lines is not None and isinstance(entry, str) else None
        if found is not None:
            match["line"], written = found
            match["line_text"] = written if written != entry else None
            changed = True
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False) if changed else None
