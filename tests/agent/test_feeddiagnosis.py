"""unusable_reason (dnswatch/feeds/diagnosis.py): a parse outcome with no entry, or mostly rejected lines, is no
feed's set, and the reason names the likely fix (docs/feeds.md "When a body is no feed")."""

from __future__ import annotations

import pytest

from dnswatch.feeds.diagnosis import unusable_reason
from dnswatch.feeds.formats import CsvFormat, JsonFormat, parse_feed_body
from dnswatch.feeds.lines import DOMAIN_NAME_SET, IP_SET, ParsedFeed, parse_lines

CSV_EXPORT = b"id,domain,first_seen\n1,evil.example,2026-11-01\n2,bad.example,2026-11-02\n3,c2.example,2026-11-03\n"
JSON_EXPORT = b'{\n  "domains": [\n    {"name": "evil.example"},\n    {"name": "bad.example"}\n  ]\n}\n'


@pytest.mark.parametrize(
    ("body", "content", "hint"),
    [
        (CSV_EXPORT, DOMAIN_NAME_SET, "this looks like CSV: set format.csv"),
        (b"evil.example\t90\tc2\nbad.example\t80\tc2\n", DOMAIN_NAME_SET, "this looks like CSV: set format.csv"),
        (JSON_EXPORT, DOMAIN_NAME_SET, "this looks like JSON: set format.json"),
        (b"192.0.2.7\n198.51.100.0/24\n2001:db8::1\n", DOMAIN_NAME_SET, "these are IP addresses: use content IPSet"),
        (b"evil.example\n0.0.0.0 bad.example\n||ads.example^\n", IP_SET,
         "these are domain names: use content DomainNameSet"),
        (b"https://evil.example/x\nhttp://bad.example/\n", IP_SET, "these look like URLs: use content DomainNameSet"),
        (b"||a.example^$important\n||b.example^$client=10.0.0.1\n", DOMAIN_NAME_SET,
         "most lines are rules dnswatch cannot honour (the adblock modifier $important"),
        (b"Service Unavailable\nplease try again later\n", DOMAIN_NAME_SET, "check the feed's URL, format and content"),
    ],
)
def test_a_body_of_rejected_lines_fails_with_the_likely_fix(body, content, hint):
    reason = unusable_reason(parse_lines(body, content), content)
    assert reason is not None and reason.startswith("none of the") and hint in reason, reason


def test_no_entry_at_all_fails():
    assert unusable_reason(parse_lines(b"# nothing here yet\n\n", DOMAIN_NAME_SET), DOMAIN_NAME_SET) == (
        "the body holds no entry (only blank and comment lines): check the feed's URL"
    )
    assert unusable_reason(ParsedFeed(()), IP_SET) is not None


def test_more_than_half_rejected_fails_and_half_passes():
    assert unusable_reason(ParsedFeed(("a.example",), 1, ((2, "x y z"),)), DOMAIN_NAME_SET) is None
    reason = unusable_reason(ParsedFeed(("a.example",), 2, ((2, "1,b.example"), (3, "2,c.example"))), DOMAIN_NAME_SET)
    assert reason == ("2 of 3 lines (67 %) could not be an entry: this looks like CSV: set format.csv with the "
                      "column of the entries")


def test_a_usable_feed_with_a_few_rejected_lines_passes():
    assert unusable_reason(parse_lines(b"evil.example\nbad.example\nnot a name\n", DOMAIN_NAME_SET),
                           DOMAIN_NAME_SET) is None


def test_the_hint_knows_the_format_already_set_and_the_content_type():
    wrong_column = parse_feed_body(CSV_EXPORT, DOMAIN_NAME_SET, CsvFormat(field_num=0, header=True))
    assert "check format.csv: fieldNum or fieldName" in unusable_reason(wrong_column, DOMAIN_NAME_SET, "csv")
    nothing = parse_feed_body(JSON_EXPORT, DOMAIN_NAME_SET, JsonFormat("$.domains[*]"))
    assert "check format.json.path" in unusable_reason(nothing, DOMAIN_NAME_SET, "json", "application/json")
    as_lines = parse_lines(b"a\tb c\nd\te f\n", DOMAIN_NAME_SET)
    assert "set format.json" in unusable_reason(as_lines, DOMAIN_NAME_SET, content_type="application/json")
