"""Whether a parsed feed body is fit to be a feed's set, and if not, the likely fix (docs/feeds.md).

A body that gives no entry at all, or whose lines are mostly rejected, is not the feed its spec describes: a
CSV export read as lines, a JSON document, addresses in a DomainNameSet, names in an IPSet, an error text.
Installing what little it gave would replace a good set with a useless one, or distribute an empty set, so
the collector fails such a pull (the set in force stays) and `replay --feed` warns. The reason names what the
rejected lines look like and the setting that would read them ("this looks like CSV: set format.csv").

Pure, and independent of which format produced the outcome: it looks at the counts, the samples and the
Content-Type only.
"""

from __future__ import annotations

import ipaddress
import re

from dnswatch.feeds.lines import DOMAIN_NAME_SET, IP_SET, ParsedFeed, domain_entry

__all__ = ["unusable_reason"]

_JSON_START = re.compile(r'^\s*(?:[{\[]|"[^"]*"\s*:|[}\]],?$)')
_CSV_SEPARATORS = (",", ";", "\t")
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://")


def unusable_reason(
    parsed: ParsedFeed, content: str, format_kind: str = "newlineDelimited", content_type: str | None = None
) -> str | None:
    """Why `parsed` must not become the feed's set, with the likely fix; None when it is usable.

    Unusable: no entry at all, or more lines rejected than turned into entries.
    """
    kept, rejected = len(parsed.entries), parsed.rejected
    if kept and rejected * 2 <= kept + rejected:
        return None
    if not kept and not rejected:
        return "the body holds no entry (only blank and comment lines): check the feed's URL"
    if kept:
        share = 100.0 * rejected / (kept + rejected)
        what = f"{rejected} of {kept + rejected} lines ({share:.0f} %) could not be an entry"
    else:
        what = f"none of the {rejected} lines could be an entry"
    return f"{what}: {_hint(parsed, content, format_kind, content_type)}"


def _hint(parsed: ParsedFeed, content: str, format_kind: str, content_type: str | None) -> str:
    samples = [text for _, text in parsed.rejected_samples]
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if _most(samples, lambda text: bool(_JSON_START.match(text))) or media.endswith("json"):
        if format_kind == "json":
            return "the JSON path selects no entries: check format.json.path"
        return "this looks like JSON: set format.json with the path of the entries"
    if content == DOMAIN_NAME_SET and _most(samples, _is_network):
        return "these are IP addresses: use content IPSet"
    if content == IP_SET and _most(samples, lambda text: bool(_URL.match(text))):
        return "these look like URLs: use content DomainNameSet, which takes their hosts"
    if content == IP_SET and _most(samples, _is_name_line):
        return "these are domain names: use content DomainNameSet"
    reasons = [reason for _, reason in parsed.rejected_reasons]
    if reasons and len(reasons) * 2 > len(samples):
        return f"most lines are rules dnswatch cannot honour ({reasons[0]})"
    if format_kind == "csv":
        return "check format.csv: fieldNum or fieldName, header and columnDelimiter"
    if _csv_like(samples) or media in ("text/csv", "application/csv"):
        return "this looks like CSV: set format.csv with the column of the entries"
    return "check the feed's URL, format and content"


def _most(samples: list[str], test) -> bool:
    return bool(samples) and sum(1 for text in samples if test(text)) * 2 > len(samples)


def _is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text.split()[0].split(",")[0], strict=False)
    except (ValueError, IndexError):
        return False
    return True


def _is_name_line(text: str) -> bool:
    tokens = text.split()
    return bool(tokens) and domain_entry(tokens[-1]) is not None


def _csv_like(samples: list[str]) -> bool:
    # Several fields per line, split by the same separator in most of them.
    return any(_most(samples, lambda text, sep=sep: text.count(sep) >= 1) for sep in _CSV_SEPARATORS)
