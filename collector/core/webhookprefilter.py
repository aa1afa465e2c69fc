"""A necessary condition of a webhook's query that a stored event's columns answer at once (pure).

Most events a webhook sees are ones its query refuses: `source_name = web-1 AND ...` refuses every other pod's.
Matching the whole query on each event costs the event loop microseconds per webhook, beside an ingest whose
own share of the loop is about 4 µs an event; the dispatcher asks this first.

    check = prefilter(webhook.query)        # None when the query gives no such condition
    if check is not None and not check(row): ...   # the query cannot match: no need to match it

The condition is an `=` or `IN` comparison of literal values (no wildcard, no escape) on a column the store
keeps beside the event, found at the top of the query or as one operand of a top-level AND.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dnswatch.selector import And, Comparison, Selector

__all__ = ["COLUMN_ATTRIBUTES", "prefilter"]

COLUMN_ATTRIBUTES = {"type": "type", "host": "host", "source_namespace": "namespace", "source_name": "pod",
                     "source_name_aggr": "pod_aggr", "record.feeds": "feeds",
                     "record.suspicious_domains": "domains"}
"""Query key -> the attribute of the store's event row (collector/store/eventrows.py EventRow) holding it."""
_SETS = {"feeds", "domains"}


def prefilter(query: Selector | None) -> Callable[[Any], bool] | None:
    """A test of an event row that is False only when the query cannot match the event; None if none is known."""
    if query is None:
        return None
    node = query.tree
    candidates = node.operands if isinstance(node, And) else (node,)
    for candidate in candidates:
        if (isinstance(candidate, Comparison) and candidate.operator in ("=", "in")
                and candidate.key in COLUMN_ATTRIBUTES
                and not any(mark in value for value in candidate.values for mark in "*?\\")):
            attribute, values = COLUMN_ATTRIBUTES[candidate.key], frozenset(candidate.values)
            if attribute in _SETS:
                return lambda row: not values.isdisjoint(getattr(row, attribute))
            return lambda row: getattr(row, attribute) in values
    return None
