"""Feed bodies: the line parser (`dnswatch.feeds.lines`) and the structured formats (`dnswatch.feeds.formats`).

`feedlines` inputs are a content byte (DomainNameSet or IPSet) and a body, seeded with the demo and hostile
feeds in every encoding and line format of docs/feeds.md. `feedformats` inputs are a format byte and a body: one
of the JSON paths, CSV layouts and other formats below, or a JSONPath of the input's own (its first line) over
the rest, seeded with JSON, CSV, JSON-lines, MISP and STIX documents of the demo feeds' entries. The documented rejections are `FeedError` (a
body that cannot be read at all) and `JsonPathError` (a path that is none). Cross-checks: every entry is in
canonical form (parsing it again gives itself), entries are distinct, and the rejected-line samples are bounded.
"""

from __future__ import annotations

from datetime import datetime, timezone

from dnswatch.feeds.formats import CsvFormat, JsonFormat, JsonLinesFormat, JsonPathError, MispFormat, StixFormat
from dnswatch.feeds.formats import compile_json_path, parse_feed_body
from dnswatch.feeds.lines import (CONTENTS, DOMAIN_NAME_SET, MAX_REJECTED_SAMPLES, FeedError, ParsedFeed, domain_entry,
                                  ip_entry, parse_lines)
from fuzz import seeds
from fuzz.oracle import Target, bounded, check

MAX_BYTES = 64 * 1024  # the limit the parsers are given: a gzip body may expand to it, not beyond
NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)  # a fixed clock for STIX validity: a finding replays the same

FORMATS = (
    JsonFormat("$.data[*].domain"),
    JsonFormat("$[*].ip"),
    JsonFormat("$..c[*]"),
    JsonFormat("$.a.b[0][1:3]"),
    CsvFormat(field_name="domain", header=True),
    CsvFormat(field_num=0, column_delimiter=";", comment_delimiter="#"),
    CsvFormat(field_num=1, column_delimiter="\t", disable_record_size_validation=True),
    CsvFormat(field_num=2, record_size=3),
    CsvFormat(field_num=1, comment_delimiter="#"),
    JsonFormat("$.*[?(@.ioc_type == 'domain' && !@.x)].ioc_value"),
    JsonLinesFormat("cidr"),
    MispFormat(),
    StixFormat(),
)
OWN_PATH = len(FORMATS)  # a format byte from here on: the first line is a JSONPath


def _check_parsed(parsed: ParsedFeed, content: str) -> None:
    canonical = domain_entry if content == DOMAIN_NAME_SET else ip_entry
    check(len(set(parsed.entries)) == len(parsed.entries), "duplicate entries")
    for entry in parsed.entries:
        check(canonical(entry) == entry, f"entry {entry!r} is not in canonical form")
    check(parsed.rejected >= len(parsed.rejected_samples), "more rejected samples than rejected lines")
    check(len(parsed.rejected_samples) <= MAX_REJECTED_SAMPLES, "too many rejected samples kept")


def lines_one(data: bytes) -> None:
    if not data:
        return
    content = CONTENTS[data[0] & 1]
    try:
        parsed = parse_lines(data[1:], content, MAX_BYTES)
    except FeedError:
        return
    _check_parsed(parsed, content)


def formats_one(data: bytes) -> None:
    if len(data) < 2:
        return
    content = CONTENTS[data[0] >> 7]
    selector = data[0] & 0x7F
    body = data[1:]
    if selector < OWN_PATH:
        fmt = FORMATS[selector]
    else:
        path, _, body = body.partition(b"\n")
        try:
            compile_json_path(path.decode("utf-8", "replace"))
        except JsonPathError:
            return
        fmt = JsonFormat(path.decode("utf-8", "replace"))
    try:
        parsed = parse_feed_body(body, content, fmt, MAX_BYTES, NOW)
    except FeedError:
        return
    _check_parsed(parsed, content)


def line_seeds() -> list[bytes]:
    return [bytes((content,)) + body for body in seeds.feed_bodies() for content in (0, 1)]


def format_seeds() -> list[bytes]:
    out = []
    for body in seeds.structured_bodies() + seeds.feed_bodies()[:8]:
        for selector in range(len(FORMATS)):
            for content in (0, 0x80):
                out.append(bytes((content | selector,)) + body)
        out.append(bytes((OWN_PATH,)) + b"$..*\n" + body)
        out.append(bytes((OWN_PATH,)) + b"$['data', 'a'][-1:0:-1]..domain\n" + body)
        out.append(bytes((OWN_PATH,)) + b"$..[?(@.score >= 9 || @['ip'] != 'x')].domain\n" + body)
    return out


TARGETS = [
    Target("feedlines", "dnswatch/feeds/lines.py: newline-delimited bodies of both contents, every line format",
           bounded(lines_one), line_seeds),
    Target("feedformats", "dnswatch/feeds/formats/: JSON (JSONPath, compiled too), CSV, JSON-lines, MISP, STIX bodies",
           bounded(formats_one), format_seeds),
]
