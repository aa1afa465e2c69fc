"""`misp: {}`: the attribute values of a MISP JSON export, composite ones split into their parts.

A feed says it is MISP by this format: MISP's JSON (an event export `{"Event": {"Attribute": [...],
"Object": [{"Attribute": [...]}]}}`, a list of them, or a REST search's `{"response": ...}`) holds every
indicator as an attribute with a `type` and a `value`, and the type alone tells what the value is. Composite
types join two values with `|` (`domain|ip` is `evil.example|192.0.2.1`), which no line format could tell
from an adblock rule; by its type the part this feed's content wants is kept:

| type | DomainNameSet | IPSet |
| --- | --- | --- |
| `domain`, `hostname` | the value | — |
| `url` | its host | — |
| `domain|ip` | the domain part | the address part |
| `hostname|port` | the host name part | — |
| `ip-dst`, `ip-src` | — | the value |
| `ip-dst|port`, `ip-src|port` | — | the address part |

Every `Attribute` list at any depth is read (an event's own and its objects'). Attributes of other types
(hashes, e-mail addresses...) and those marked `"deleted": true` are skipped; a value that is not a string,
or a composite one without its `|`, is rejected, as is a part that is no entry. A body that is not JSON fails.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from dnswatch.feeds.formats.base import MispFormat
from dnswatch.feeds.formats.rejects import with_rejected
from dnswatch.feeds.lines import DOMAIN_NAME_SET, FeedError, ParsedFeed, decode_body, parse_values

# type -> the index of the part a DomainNameSet (first) or an IPSet (second) keeps; None: none of it.
_PARTS: dict[str, tuple[int | None, int | None]] = {
    "domain": (0, None),
    "hostname": (0, None),
    "url": (0, None),
    "domain|ip": (0, 1),
    "hostname|port": (0, None),
    "ip-dst": (None, 0),
    "ip-src": (None, 0),
    "ip-dst|port": (None, 0),
    "ip-src|port": (None, 0),
}


def parse(body: bytes, content: str, fmt: MispFormat, max_bytes: int, now: datetime) -> ParsedFeed:
    text = decode_body(body, max_bytes)
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise FeedError(f"the feed body is not valid JSON: {error}") from error
    side = 0 if content == DOMAIN_NAME_SET else 1
    values: list[tuple[int, str]] = []
    rejected: list[tuple[int, str]] = []
    for number, attribute in enumerate(_attributes(document), 1):
        kind = attribute.get("type")
        if kind not in _PARTS or attribute.get("deleted") is True or _PARTS[kind][side] is None:
            continue
        value = attribute.get("value")
        if not isinstance(value, str):
            rejected.append((number, f"{kind}: {json.dumps(value)}"))
            continue
        parts = value.split("|")
        if len(parts) != kind.count("|") + 1:
            rejected.append((number, f"{kind}: {value}"))
            continue
        values.append((number, parts[_PARTS[kind][side]].strip()))
    return with_rejected(parse_values(values, content), rejected)


def _attributes(document: Any) -> Iterator[dict]:
    # An explicit stack, in document order: a deeply nested export must not hit Python's recursion limit.
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            attributes = node.get("Attribute")
            if isinstance(attributes, list):
                yield from (item for item in attributes if isinstance(item, dict))
            stack.extend(reversed([child for key, child in node.items() if key != "Attribute"]))
        elif isinstance(node, list):
            stack.extend(reversed(node))
