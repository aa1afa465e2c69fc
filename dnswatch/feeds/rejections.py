"""Why a rejected line of a feed body is no entry (`dnswatch feeds get` shows it beside each sample).

Parsing counts and samples rejected lines (`dnswatch.feeds.lines`) without saying why, for speed: a body of a
million lines may reject thousands. Only the few samples shown need a reason, so it is worked out here, from
the line as it was kept (lower-cased, cut), the feed's content and its format, by the rules of
docs/feeds.md#line-formats. Pure.
"""

from __future__ import annotations

import ipaddress
import json

from dnswatch.feeds.lines import DOMAIN_NAME_SET, domain_entry

__all__ = ["rejection_reason"]

ALLOW_LISTING = "asks for allow-listing, which is not done"
_CSV_DELIMITERS = (",", ";", "\t", "|")


def rejection_reason(text: str, content: str, format_kind: str = "newlineDelimited") -> str:
    """One line for people saying why `text` (a rejected sample) gave no entry of a `content` feed."""
    if format_kind == "json" and _is_json_non_string(text):
        return "a JSON value that is not a string"
    if format_kind == "csv" and text == "(unreadable CSV record)":
        return "a CSV record that cannot be read (an unbalanced quote?)"
    if format_kind == "csv" and any(delimiter in text for delimiter in _CSV_DELIMITERS):
        return "a CSV record of the wrong size, or too short to hold the column"  # kept whole, joined
    if "\ufffd" in text:
        return "bytes that are not text in the body's encoding"
    if content == DOMAIN_NAME_SET:
        return _domain_reason(text)
    return _ip_reason(text)


def _domain_reason(text: str) -> str:
    words = text.split()
    if text.startswith("@@"):
        return f"an adblock exception {ALLOW_LISTING}"
    if "rpz-passthru" in text:
        return f"an RPZ passthru {ALLOW_LISTING}"
    if _is_address(text):
        return "an address, not a name (addresses belong in an IPSet feed)"
    if len(words) > 1:
        return "several words in no form read here (hosts, dnsmasq, RPZ, adblock or a URL)"
    if text.startswith("*") and not text.startswith("*."):
        return "a wildcard only as a whole first label (`*.name`)"
    return "not a domain name: an empty or over-long label, or a character names cannot hold"


def _ip_reason(text: str) -> str:
    if domain_entry(text) is not None:
        return "a name, not an address (names belong in a DomainNameSet feed)"
    return "not an IPv4 or IPv6 address or CIDR"


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return False
    return True


def _is_json_non_string(text: str) -> bool:
    try:
        return not isinstance(json.loads(text), str)
    except ValueError:
        return False
