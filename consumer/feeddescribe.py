"""One feed as `dnswatch feeds get NAME` shows it (pure): a describe-style view in table mode, and the whole
object, the view's every part, for `-o json|yaml`.

The view says what `kubectl describe` would (spec, status, conditions) and what only the collector knows:
the rejected samples with why each is no entry, and how the entries match (docs/detection.md), so a reader
need not look the format's rules up to know what the feed will catch.
"""

from __future__ import annotations

from typing import Any

from dnswatch.feeds.feedinfo import FeedInfo
from dnswatch.feeds.lines import DOMAIN_NAME_SET

__all__ = ["describe", "matching", "whole"]

_FORMATS = {
    "newlineDelimited": "one entry per line: plain names, `*.name` wildcards, hosts-file, adblock (`||name^`), "
                        "dnsmasq, RPZ and URL lines each give their name; `#`, `!` and `;` start comments",
    "json": "each string the format's JSONPath selects is read as one line; a selected value that is not a "
            "string is rejected",
    "csv": "the format's column of each record is read as one line; a record of the wrong size is rejected",
}


def matching(feed: FeedInfo) -> list[str]:
    """How the feed's entries are read from its body and what they match, one sentence a line."""
    read = _FORMATS.get(feed.format or "newlineDelimited", f"format {feed.format}")
    if feed.content == DOMAIN_NAME_SET:
        plain = ("a plain entry matches the name and every subdomain of it (matchSubdomains: true)"
                 if feed.match_subdomains else
                 "a plain entry matches that name exactly, not its subdomains (matchSubdomains: false)")
        return [f"{feed.format or 'newlineDelimited'}: {read}", plain,
                "a `*.name` entry matches every subdomain of name, never name itself",
                "checked: every question name, the owner names of the answer, authority and additional "
                "sections, and the names inside their rdata (CNAME, NS, MX, ...)"]
    return [f"{feed.format or 'newlineDelimited'}: {read}",
            "an address or CIDR (IPv4 or IPv6) matches the A and AAAA addresses of the answer section; "
            "a lone address is a /32 or /128"]


def whole(feed: FeedInfo) -> dict[str, Any]:
    """`-o json|yaml` of `feeds get`: the feed's record and spec, the samples and the matching rules."""
    return {**feed.detail(), "matching": matching(feed)}


def describe(feed: FeedInfo) -> list[str]:
    """The lines of the describe-style view."""
    status = feed.status
    if feed.pushed:
        how = f"push (dnswatch feeds push {feed.name} FILE)"
    elif feed.url:
        how = f"pull {feed.url}" + (f" every {_duration(feed.period_seconds)}" if feed.period_seconds else "")
    else:
        how = "-"
    lines = [f"Name:              {feed.name}",
             f"Source:            {feed.source or '-'}",
             "Spec:",
             f"  Content:         {feed.content or '-'}",
             f"  Mode:            {feed.mode or '-'}",
             f"  Description:     {feed.description or '-'}",
             f"  Set from:        {how}",
             f"  Format:          {feed.format or '-'}",
             f"  MatchSubdomains: {str(feed.match_subdomains).lower()}",
             "Status:",
             f"  Version:         {status.version}",
             f"  Entries:         {status.entries}",
             f"  Rejected lines:  {status.rejected_lines}",
             f"  Last sync:       {status.last_successful_sync or '-'}",
             f"  SHA-256:         {status.sha256 or '-'}",
             "  Conditions:" + ("" if status.error_conditions else "      none")]
    if status.error_conditions:
        rows = [(c.type, str(c.count), c.last_time or "-", c.message) for c in status.error_conditions]
        lines += _table(("TYPE", "COUNT", "LAST TIME", "MESSAGE"), rows, indent="    ")
    samples = feed.rejected()
    lines.append("Rejected samples:" + ("" if samples else "  none"))
    if samples:
        lines += _table(("LINE", "TEXT", "REASON"),
                        [(str(s["line"]), s["text"], s["reason"]) for s in samples], indent="  ")
    lines.append("Matching:")
    lines += [f"  {sentence}" for sentence in matching(feed)]
    return lines


def _table(columns: tuple[str, ...], rows: list[tuple[str, ...]], indent: str) -> list[str]:
    cells = [columns, *rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return [indent + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in cells]


def _duration(seconds: float) -> str:
    whole_seconds = int(seconds)
    hours, rest = divmod(whole_seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return "".join(f"{value}{unit}" for value, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if value) or "0s"
