"""`jsonLines: {key}`: one JSON object per line, the string under `key` read as one feed line.

Spamhaus's DROP lists (`drop_v4.json`) are made so: `{"cidr": "1.10.16.0/20", "sblid": "SBL256894", ...}` per
line, and a last line `{"type": "metadata", "timestamp": ..., "records": ...}` describing the file. An object
without the key is such a record, not an entry, and is skipped; but a body in which no object has the key
fails the pull, as a CSV header without the named column does: the spec does not fit the feed. A line that
is not a JSON object, or a value that is not a string, is rejected.
"""

from __future__ import annotations

import json
from datetime import datetime

from dnswatch.feeds.formats.base import JsonLinesFormat
from dnswatch.feeds.formats.rejects import with_rejected
from dnswatch.feeds.lines import FeedError, ParsedFeed, decode_body, parse_values


def parse(body: bytes, content: str, fmt: JsonLinesFormat, max_bytes: int, now: datetime) -> ParsedFeed:
    text = decode_body(body, max_bytes)
    values: list[tuple[int, str]] = []
    rejected: list[tuple[int, str]] = []
    objects = keyed = 0
    for number, line in enumerate(text.split("\n"), 1):  # not splitlines: JSON strings may hold U+2028
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            rejected.append((number, line))
            continue
        if not isinstance(record, dict):
            rejected.append((number, line))
            continue
        objects += 1
        if fmt.key not in record:
            continue  # a metadata record (Spamhaus's last line), not an entry
        keyed += 1
        value = record[fmt.key]
        if isinstance(value, str):
            values.append((number, value))
        else:
            rejected.append((number, line))
    if objects and not keyed:
        raise FeedError(f"no JSON object of the body has the key {fmt.key!r}")
    return with_rejected(parse_values(values, content), rejected)
