"""`json: {path}`: the strings a JSONPath selects in a JSON document, each read as one feed line."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from dnswatch.feeds.formats.base import JsonFormat
from dnswatch.feeds.formats.jsonpath import JsonPathError, compile_json_path
from dnswatch.feeds.lines import MAX_REJECTED_SAMPLES, FeedError, ParsedFeed, decode_body, parse_values


def parse(body: bytes, content: str, fmt: JsonFormat, max_bytes: int, now: datetime) -> ParsedFeed:
    text = decode_body(body, max_bytes)
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise FeedError(f"the feed body is not valid JSON: {error}") from error
    try:
        nodes, several = compile_json_path(fmt.path).select(document)
    except JsonPathError as error:
        raise FeedError(f"json path {error}") from error
    if not several:
        node = nodes[0]
        if not isinstance(node, (list, str)):
            raise FeedError(f"json path {fmt.path} selects {_kind(node)}, not an array of strings")
        nodes = node if isinstance(node, list) else [node]
    values: list[tuple[int, str]] = []
    odd: list[tuple[int, str]] = []
    # A selected array contributes its elements: `$.domains` and `$.feeds[*].domains` both mean the strings.
    flat = (item for node in nodes for item in (node if isinstance(node, list) else (node,)))
    for number, item in enumerate(flat, 1):
        if isinstance(item, str):
            values.append((number, item))
        else:
            odd.append((number, json.dumps(item)[:200]))
    parsed = parse_values(values, content)
    if not odd:
        return parsed
    samples = sorted(parsed.rejected_samples + tuple(odd))[:MAX_REJECTED_SAMPLES]
    return ParsedFeed(parsed.entries, parsed.rejected + len(odd), tuple(samples))


def _kind(node: Any) -> str:
    return "an object" if isinstance(node, dict) else "a scalar"
