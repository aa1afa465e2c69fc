"""Values a structured format rejects itself (a CSV record of the wrong size, a JSON number, a STIX pattern it
cannot read), merged with those `parse_values` rejected, as one `ParsedFeed`."""

from __future__ import annotations

from dnswatch.feeds.lines import MAX_REJECTED_SAMPLES, ParsedFeed

MAX_SAMPLE_CHARS = 200


def with_rejected(parsed: ParsedFeed, rejected: list[tuple[int, str]]) -> ParsedFeed:
    """`parsed` with `rejected` (number, text) added: counted, and the first samples kept in number order."""
    if not rejected:
        return parsed
    mine = tuple((number, text[:MAX_SAMPLE_CHARS]) for number, text in rejected[:MAX_REJECTED_SAMPLES])
    samples = sorted(parsed.rejected_samples + mine)[:MAX_REJECTED_SAMPLES]
    return ParsedFeed(parsed.entries, parsed.rejected + len(rejected), tuple(samples))
