"""`csv: {fieldNum | fieldName, header, columnDelimiter, commentDelimiter, …}`: one column, each field a line.

Calico reads CSV with Go's encoding/csv and fails the whole pull on a record of the wrong size; here such a
record is counted as rejected (a line that cannot be an entry is never fatal), as is a record too
short to hold the column. A header without the named column is fatal: the spec does not fit the feed.

White space after a delimiter is skipped, so a quoted field may follow it: ThreatFox writes its CSV as
`"2024-01-01 00:00:00", "1234", "evil.example", "domain", ...`, which Go's encoding/csv refuses (a bare quote in
a field) and the csv module would read as fields starting with ` "`. Not when the delimiter is a space itself:
there two spaces in a row are an empty field between them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime

from dnswatch.feeds.formats.base import CsvFormat
from dnswatch.feeds.lines import MAX_REJECTED_SAMPLES, FeedError, ParsedFeed, decode_body, parse_values


def parse(body: bytes, content: str, fmt: CsvFormat, max_bytes: int, now: datetime) -> ParsedFeed:
    text = decode_body(body, max_bytes)
    position = [0]  # the physical line number of the last line handed to the csv reader

    def lines() -> Iterator[str]:
        # newline="": the csv module wants line ends untouched, for quoted fields that span lines.
        for number, line in enumerate(io.StringIO(text, newline=""), 1):
            position[0] = number
            if fmt.comment_delimiter and line.startswith(fmt.comment_delimiter):
                continue
            yield line

    reader = csv.reader(lines(), delimiter=fmt.column_delimiter, skipinitialspace=fmt.column_delimiter != " ")
    records = _records(reader, position)
    column = fmt.field_num or 0
    expected = None if fmt.disable_record_size_validation else fmt.record_size
    rejected: list[tuple[int, str]] = []
    if fmt.header:
        header = next((record for _, record in records if record is not None), None)
        if header is None:
            return ParsedFeed(())
        if expected is None and not fmt.disable_record_size_validation:
            expected = len(header)
        if fmt.field_name is not None:
            names = [name.strip() for name in header]
            if fmt.field_name not in names:
                raise FeedError(f"the CSV header has no column {fmt.field_name!r} (it has {', '.join(names)})")
            column = names.index(fmt.field_name)
    values: list[tuple[int, str]] = []
    for number, record in records:
        if record is None:  # the csv module could not read it
            rejected.append((number, "(unreadable CSV record)"))
            continue
        if not record:
            continue  # a blank line
        if expected is None and not fmt.disable_record_size_validation:
            expected = len(record)  # Go's encoding/csv: the first record sets the size
        if (expected is not None and len(record) != expected) or column >= len(record):
            rejected.append((number, fmt.column_delimiter.join(record)))
            continue
        value = record[column].strip()
        if value:
            values.append((number, value))
    parsed = parse_values(values, content)
    if not rejected:
        return parsed
    samples = sorted(parsed.rejected_samples + tuple(rejected[:MAX_REJECTED_SAMPLES]))[:MAX_REJECTED_SAMPLES]
    return ParsedFeed(parsed.entries, parsed.rejected + len(rejected), tuple(samples))


def _records(reader, position: list[int]) -> Iterator[tuple[int, list[str] | None]]:
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error:
            yield position[0], None
            continue
        yield position[0], record
