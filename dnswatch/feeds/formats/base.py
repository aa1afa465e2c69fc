"""The `pull.http.format` variants of a GlobalThreatFeed, as values (docs/globalthreatfeed.md: Calico's names)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class NewlineDelimitedFormat:
    """One entry per line, in any line format of docs/feeds.md (`newlineDelimited: {}`, the default)."""

    kind: ClassVar[str] = "newlineDelimited"


@dataclass(frozen=True)
class JsonFormat:
    """A JSON document whose entries a JSONPath selects (`json: {path: "$.data[*].domain"}`)."""

    path: str
    """The JSONPath: Calico's subset (`$`, `.key`, `["key"]`, `[n]`, `[a,b]`, `[s:e:step]`, `*`, `..`) and filters
    (`[?(@.type=='domain')]`)."""

    kind: ClassVar[str] = "json"


@dataclass(frozen=True)
class CsvFormat:
    """One column of a CSV document (`csv: {fieldNum: 0}` or `csv: {fieldName: domain, header: true}`)."""

    field_num: int | None = None
    """The 0-based column holding the entries; exclusive with `field_name`."""
    field_name: str | None = None
    """The header name of the column holding the entries; needs `header`."""
    header: bool = False
    """The first record is a header row, not entries."""
    column_delimiter: str = ","
    """The one character between fields."""
    comment_delimiter: str | None = None
    """Lines that start with this character are skipped."""
    record_size: int | None = None
    """Fields every record must have; None: as many as the first record (Go's encoding/csv, as Calico)."""
    disable_record_size_validation: bool = False
    """Records may have any number of fields."""

    kind: ClassVar[str] = "csv"


@dataclass(frozen=True)
class JsonLinesFormat:
    """One JSON object per line, the entry under `key` (`jsonLines: {key: cidr}`, Spamhaus's `drop_v4.json`)."""

    key: str
    """The member of each object holding the entry."""

    kind: ClassVar[str] = "jsonLines"


@dataclass(frozen=True)
class MispFormat:
    """A MISP JSON export (`misp: {}`): the values of its attributes, composite ones (`domain|ip`) split."""

    kind: ClassVar[str] = "misp"


@dataclass(frozen=True)
class StixFormat:
    """A STIX 2.1 bundle (`stix: {}`): the domains, addresses and URL hosts its indicators' patterns name."""

    kind: ClassVar[str] = "stix"


FeedFormat = NewlineDelimitedFormat | JsonFormat | CsvFormat | JsonLinesFormat | MispFormat | StixFormat
NEWLINE_DELIMITED = NewlineDelimitedFormat()
