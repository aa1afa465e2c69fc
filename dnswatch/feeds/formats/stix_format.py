"""`stix: {}`: the domain names, addresses and URL hosts the indicators of a STIX 2.1 bundle name.

The body is a bundle (`{"type": "bundle", "objects": [...]}`; a TAXII envelope `{"objects": [...]}` or a bare
list of objects is read the same). Of its objects only `indicator`s count, and of those only the ones in
force: one `"revoked": true`, or whose `valid_until` has passed, is left out. Each pattern is read by
`stix_pattern`: `domain-name:value` and `url:value` (its host) give a DomainNameSet's entries,
`ipv4-addr:value` and `ipv6-addr:value` an IPSet's; an indicator whose values are all of the other content is
skipped. An indicator is rejected, its sample saying why, for a pattern outside what `stix_pattern` reads
(`AND`, `FOLLOWEDBY`, a file hash...), a `pattern_type` other than `stix`, or a `valid_until` that is no
timestamp. Sample numbers count the bundle's objects from 1.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from dnswatch.feeds.formats.base import StixFormat
from dnswatch.feeds.formats.rejects import with_rejected
from dnswatch.feeds.formats.stix_pattern import UnsupportedPattern, pattern_values
from dnswatch.feeds.lines import IP_SET, FeedError, ParsedFeed, decode_body, parse_values

_NAME_TYPES = ("domain-name", "url")
_IP_TYPES = ("ipv4-addr", "ipv6-addr")


def parse(body: bytes, content: str, fmt: StixFormat, max_bytes: int, now: datetime) -> ParsedFeed:
    text = decode_body(body, max_bytes)
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise FeedError(f"the feed body is not valid JSON: {error}") from error
    return parse_objects(bundle_objects(document), content, now)


def bundle_objects(document: Any) -> list:
    """The objects of a bundle, a TAXII envelope or a bare list; FeedError for anything else."""
    if isinstance(document, list):
        return document
    if isinstance(document, dict) and isinstance(document.get("objects"), list):
        return document["objects"]
    if isinstance(document, dict) and document.get("type") == "bundle" and "objects" not in document:
        return []  # an empty bundle
    raise FeedError("the feed body is not a STIX bundle: it has no list of objects")


def parse_objects(objects: Iterable[Any], content: str, now: datetime) -> ParsedFeed:
    """The entries of STIX objects for `content`, rejected indicators counted (numbered from 1)."""
    wanted = _IP_TYPES if content == IP_SET else _NAME_TYPES
    values: list[tuple[int, str]] = []
    rejected: list[tuple[int, str]] = []
    for number, obj in enumerate(objects, 1):
        if not isinstance(obj, dict) or obj.get("type") != "indicator" or obj.get("revoked") is True:
            continue
        try:
            found = _values_in_force(obj, now)
        except _Rejected as reason:
            rejected.append((number, f"{obj.get('id', 'indicator')}: {reason}: {obj.get('pattern')}"))
            continue
        values.extend((number, value) for object_type, value in found if object_type in wanted)
    return with_rejected(parse_values(values, content), rejected)


class _Rejected(ValueError):
    """Why an indicator cannot give entries."""


def _values_in_force(indicator: dict, now: datetime) -> list[tuple[str, str]]:
    # (object type, value) of the pattern; none for an expired indicator.
    valid_until = indicator.get("valid_until")
    if valid_until is not None:
        until = _timestamp(valid_until)
        if until is None:
            raise _Rejected(f"valid_until {valid_until!r} is not a timestamp")
        if until <= (now if now.tzinfo else now.replace(tzinfo=timezone.utc)):
            return []
    pattern_type = indicator.get("pattern_type", "stix")
    if pattern_type != "stix":
        raise _Rejected(f"pattern_type {pattern_type!r} is not stix")
    pattern = indicator.get("pattern")
    if not isinstance(pattern, str):
        raise _Rejected("no pattern")
    try:
        return pattern_values(pattern)
    except UnsupportedPattern as error:
        raise _Rejected(str(error)) from None


def _timestamp(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
