"""Feed body formats (dnswatch.feeds.formats): newlineDelimited, json with Calico's JSONPath and filters, csv,
jsonLines, misp and stix, the structured ones on bodies as their publishers serve them (tests/publishedfeeds.py)."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timezone

import pytest

from dnswatch.feeds.formats import (
    NEWLINE_DELIMITED,
    CsvFormat,
    JsonFormat,
    JsonLinesFormat,
    JsonPathError,
    MispFormat,
    NewlineDelimitedFormat,
    StixFormat,
    compile_json_path,
    format_names,
    parse_feed_body,
)
from dnswatch.feeds.formats.stix_pattern import UnsupportedPattern, pattern_values
from dnswatch.feeds.lines import FeedError, ParsedFeed
from tests.publishedfeeds import MISP_EVENTS, SPAMHAUS_DROP_V4, STIX_BUNDLE, THREATFOX_CSV, THREATFOX_JSON

DOMAINS = "DomainNameSet"
IPS = "IPSet"


def test_one_parser_per_format_name():
    assert format_names() == ("newlineDelimited", "json", "csv", "jsonLines", "misp", "stix")
    kinds = (NewlineDelimitedFormat, JsonFormat, CsvFormat, JsonLinesFormat, MispFormat, StixFormat)
    assert {kind.kind for kind in kinds} == set(format_names())


def test_newline_delimited_is_the_default_and_uses_the_line_formats():
    body = b"# c\nevil.com\n0.0.0.0 b.org\n||c.net^\n"
    assert parse_feed_body(body, DOMAINS) == parse_feed_body(body, DOMAINS, NEWLINE_DELIMITED)
    assert parse_feed_body(body, DOMAINS).entries == ("evil.com", "b.org", "c.net")
    assert parse_feed_body(b"10.1.2.3/8\n", IPS).entries == ("10.0.0.0/8",)


def test_unknown_content_is_refused():
    with pytest.raises(ValueError, match="content"):
        parse_feed_body(b"", "Domains")


# ---------------------------------------------------------------------------------------------- json

DOCUMENT = {
    "data": [
        {"domain": "Evil.com", "ip": "192.0.2.7", "tags": ["c2"]},
        {"domain": "https://b.org/x", "ip": "10.1.2.3/8"},
        {"domain": 42},
        {"other": "ignored.example"},
        {"domain": "not a name"},
    ],
    "meta": {"ip": "198.51.100.1", "nested": {"ip": ["2001:db8::1", "203.0.113.9"]}},
    "list": ["a.example", "b.example"],
    "weird-key": {"x y": ["c.example"]},
}


@pytest.mark.parametrize(
    ("path", "content", "entries", "rejected"),
    [
        ("$.data[*].domain", DOMAINS, ("evil.com", "b.org"), 2),
        ("$.data[0].domain", DOMAINS, ("evil.com",), 0),
        ("$.data[-1].domain", DOMAINS, (), 1),
        ("$.data[0,1].domain", DOMAINS, ("evil.com", "b.org"), 0),
        ("$.data[0:2].domain", DOMAINS, ("evil.com", "b.org"), 0),
        ("$.data[:1].domain", DOMAINS, ("evil.com",), 0),
        ("$.data[::2].domain", DOMAINS, ("evil.com",), 2),
        ("$.list", DOMAINS, ("a.example", "b.example"), 0),
        ("$.list[*]", DOMAINS, ("a.example", "b.example"), 0),
        ("$['list']", DOMAINS, ("a.example", "b.example"), 0),
        ('$["list"][1]', DOMAINS, ("b.example",), 0),
        ('$["weird-key"]["x y"]', DOMAINS, ("c.example",), 0),
        ("$.weird-key.*", DOMAINS, ("c.example",), 0),
        ("$..ip", IPS, ("192.0.2.7/32", "10.0.0.0/8", "198.51.100.1/32", "2001:db8::1/128", "203.0.113.9/32"), 0),
        ("$.meta.*", IPS, ("198.51.100.1/32",), 1),  # the nested object is no entry
        ("$..nested[*]", IPS, ("2001:db8::1/128", "203.0.113.9/32"), 0),
        ("$.data[*].tags", DOMAINS, ("c2",), 0),
    ],
)
def test_json_paths(path, content, entries, rejected):
    parsed = parse_feed_body(json.dumps(DOCUMENT).encode(), content, JsonFormat(path))
    assert parsed.entries == entries
    assert parsed.rejected == rejected


@pytest.mark.parametrize("path", ["$", "$."])
def test_json_root_array(path):
    body = b'["a.example", "B.example", 7, null]'
    assert parse_feed_body(body, DOMAINS, JsonFormat(path)) == ParsedFeed(("a.example", "b.example"), 2, ((3, "7"), (4, "null")))


def test_json_body_gzip_and_bom():
    body = gzip.compress(b"\xef\xbb\xbf" + json.dumps({"ips": ["192.0.2.1"]}).encode())
    assert parse_feed_body(body, IPS, JsonFormat("$.ips")).entries == ("192.0.2.1/32",)


@pytest.mark.parametrize(
    ("body", "path", "message"),
    [
        (b"{not json", "$.x", "not valid JSON"),
        (b'{"a": 1}', "$.b", "no member 'b'"),
        (b'{"a": 1}', "$.a", "selects a scalar, not an array of strings"),
        (b'{"a": {"b": 1}}', "$.a", "selects an object"),
        (b'{"a": [1]}', "$.a[3]", "no element 3"),
        (b"[" * 100_000 + b"]" * 100_000, "$", "not valid JSON"),
    ],
)
def test_json_errors(body, path, message):
    with pytest.raises(FeedError, match=message):
        parse_feed_body(body, DOMAINS, JsonFormat(path))


def test_json_missing_members_after_a_wildcard_select_nothing():
    body = b'{"data": [{"domain": "a.example"}, {}, {"domain": "b.example"}]}'
    assert parse_feed_body(body, DOMAINS, JsonFormat("$.data[*].domain")).entries == ("a.example", "b.example")
    assert parse_feed_body(b'{"data": []}', DOMAINS, JsonFormat("$.data[*].domain")).entries == ()


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("data[*]", "starts with '\\$'"),
        ("$.data[(@.length-1)]", "script expressions .* are not supported"),
        ("$.data[?(@.x)]", None),
        ("$.data[?@.x == 'a']", None),
        ("$.data[?(@['a b'][0] != \"]\")]", None),
        ("$.data[?()]", "expected '@' or a literal"),
        ("$.data[?(@.x = 'a')]", "unexpected '='"),
        ("$.data[?(@.x == )]", "expected '@' or a literal"),
        ("$.data[?(@.x == 'a']", "ends too soon"),
        ("$.data[?(@.x == 'a'))]", r"unexpected '\)'"),
        ("$.data[?('a')]", "a literal alone is no test"),
        ("$.data[?(@.)]", "expected a member name"),
        ("$.data[?(@[x])]", "expected a quoted key or an index"),
        ("$.data[?" + "!" * 33 + "@.x]", "more than 32 deep"),
        ("$.data[?" + "(" * 100_000 + "@.x" + ")" * 100_000 + "]", "more than 32 deep"),
        ("$.data[?" + "(" * 32 + "@.x" + ")" * 32 + "]", None),
        ("$.data[", "never closed"),
        ("$..", "must be followed"),
        ("$.data[1:2:3:4]", "slice"),
        ("$.data[::0]", "step cannot be 0"),
        ("$.data[a b]", "expected"),
        ("$x", "unexpected"),
        ("$.", None),
        ("$..[0]", None),
        ("$..*", None),
    ],
)
def test_json_path_compilation(path, message):
    if message is None:
        compile_json_path(path)
    else:
        with pytest.raises(JsonPathError, match=message):
            compile_json_path(path)


def test_deep_scan_visits_nodes_in_document_order():
    path = compile_json_path("$..*")
    nodes, several = path.select({"a": [1, {"b": 2}], "c": 3})
    assert several
    assert nodes == [[1, {"b": 2}], 1, {"b": 2}, 2, 3]
    assert compile_json_path("$..[*]").select({"a": [1, {"b": 2}], "c": 3})[0] == nodes
    assert compile_json_path("$..b").select({"a": [1, {"b": 2}], "b": 3})[0] == [3, 2]


# ---------------------------------------------------------------------------------------------- csv

URLHAUS = b"""# URLhaus style, comments first
# id,dateadded,url,url_status
"1","2024-01-01","http://evil.com/a.exe","online"
"2","2024-01-01","https://b.org:8443/x","offline"
"3","2024-01-02","http://192.0.2.1/bin","online"
"""


@pytest.mark.parametrize(
    ("body", "fmt", "content", "entries", "rejected"),
    [
        (URLHAUS, CsvFormat(field_num=2, comment_delimiter="#"), DOMAINS, ("evil.com", "b.org"), 1),
        (b"domain,score\nevil.com,9\nb.org,3\n", CsvFormat(field_name="domain", header=True), DOMAINS, ("evil.com", "b.org"), 0),
        (b"score,domain\n9,evil.com\n", CsvFormat(field_name="domain", header=True), DOMAINS, ("evil.com",), 0),
        (b"domain,score\nevil.com,9\n", CsvFormat(field_num=0, header=True), DOMAINS, ("evil.com",), 0),
        (b"domain,score\nevil.com,9\n", CsvFormat(field_num=0), DOMAINS, ("domain", "evil.com"), 0),  # no header: a line
        (b"a|192.0.2.1\nb|10.0.0.0/8\n", CsvFormat(field_num=1, column_delimiter="|"), IPS, ("192.0.2.1/32", "10.0.0.0/8"), 0),
        (b"a\t192.0.2.1\n", CsvFormat(field_num=1, column_delimiter="\t"), IPS, ("192.0.2.1/32",), 0),
        (b'"evil.com, the bad one",1\n', CsvFormat(field_num=0), DOMAINS, (), 1),
        (b'"evil.com",1\n"b.org",2\n', CsvFormat(field_num=0), DOMAINS, ("evil.com", "b.org"), 0),
        (b"evil.com,1\n\n\nb.org,2\n", CsvFormat(field_num=0), DOMAINS, ("evil.com", "b.org"), 0),
        (b"evil.com , 1\n", CsvFormat(field_num=0), DOMAINS, ("evil.com",), 0),
        (b",1\n", CsvFormat(field_num=0), DOMAINS, (), 0),  # an empty field is like a blank line
        # record sizes: as Go's encoding/csv, the first record sets the size (here: rejected, not fatal)
        (b"a.example,1\nb.example,2,3\nc.example,4\n", CsvFormat(field_num=0), DOMAINS, ("a.example", "c.example"), 1),
        (b"a.example,1\nb.example,2,3\n", CsvFormat(field_num=0, disable_record_size_validation=True), DOMAINS, ("a.example", "b.example"), 0),
        (b"a.example,1\nb.example,2,3\n", CsvFormat(field_num=0, record_size=3), DOMAINS, ("b.example",), 1),
        (b"a.example\nb.example,1\n", CsvFormat(field_num=1, disable_record_size_validation=True), DOMAINS, (), 2),
        (b"h1,h2\na.example\n", CsvFormat(field_num=0, header=True), DOMAINS, (), 1),
        # decoding as every format: CRLF, BOM, gzip
        (b"\xef\xbb\xbfdomain\r\nevil.com\r\n", CsvFormat(field_name="domain", header=True), DOMAINS, ("evil.com",), 0),
        (gzip.compress(b"evil.com,1\n"), CsvFormat(field_num=0), DOMAINS, ("evil.com",), 0),
        (b"", CsvFormat(field_name="domain", header=True), DOMAINS, (), 0),
        (b"# only comments\n", CsvFormat(field_num=0, header=True, comment_delimiter="#"), DOMAINS, (), 0),
    ],
)
def test_csv(body, fmt, content, entries, rejected):
    parsed = parse_feed_body(body, content, fmt)
    assert parsed.entries == entries
    assert parsed.rejected == rejected


def test_csv_rejected_samples_carry_physical_line_numbers():
    body = b"# comment\nhost,n\nevil.com,1\nbad,2,3\n\nnot a name,4\n"
    parsed = parse_feed_body(body, DOMAINS, CsvFormat(field_num=0, header=True, comment_delimiter="#"))
    assert parsed.entries == ("evil.com",)
    assert parsed.rejected_samples == ((4, "bad,2,3"), (6, "not a name"))


def test_csv_header_without_the_named_column_is_a_feed_error():
    with pytest.raises(FeedError, match="no column 'domain'.*host, n"):
        parse_feed_body(b"host,n\nevil.com,1\n", DOMAINS, CsvFormat(field_name="domain", header=True))


def test_csv_unreadable_record_is_rejected_not_fatal():
    body = b'"' + b"x" * 200_000 + b'"\nevil.com\n'  # a field over the csv module's size limit
    parsed = parse_feed_body(body, DOMAINS, CsvFormat(field_num=0, disable_record_size_validation=True))
    assert parsed.rejected >= 1


# ---------------------------------------------------------------------------------------------- json filters

FILTERED = {
    "data": [
        {"domain": "a.example", "type": "domain", "score": 90, "live": True, "tags": ["c2"], "meta": {"src": "x"}},
        {"domain": "b.example", "type": "domain", "score": 40, "live": False},
        {"domain": "c.example", "type": "url", "score": 75, "live": True, "meta": {"src": "y"}},
        {"domain": "d.example", "score": 60.5, "live": None},
    ]
}


@pytest.mark.parametrize(
    ("path", "entries"),
    [
        ("$.data[?(@.type=='domain')].domain", ("a.example", "b.example")),
        ('$.data[?(@.type == "domain")].domain', ("a.example", "b.example")),
        ("$.data[?@.type == 'domain'].domain", ("a.example", "b.example")),  # RFC 9535 writes no parentheses
        ("$.data[?(@.type != 'domain')].domain", ("c.example", "d.example")),  # a missing member is != anything
        ("$.data[?(@.score >= 75)].domain", ("a.example", "c.example")),
        ("$.data[?(@.score < 60.5)].domain", ("b.example",)),
        ("$.data[?(@.score > '50')].domain", ()),  # a number is never ordered against a string
        ("$.data[?(@.type < 'e')].domain", ("a.example", "b.example")),  # strings are, against strings
        ("$.data[?(@.live == true)].domain", ("a.example", "c.example")),
        ("$.data[?(@.live == null)].domain", ("d.example",)),
        ("$.data[?(@.score == 90 && @.live)].domain", ("a.example",)),
        ("$.data[?(@.type == 'url' || @.score < 50)].domain", ("b.example", "c.example")),
        ("$.data[?(!(@.type == 'domain') && @.meta)].domain", ("c.example",)),
        ("$.data[?(@.tags)].domain", ("a.example",)),  # existence
        ("$.data[?(!@.type)].domain", ("d.example",)),
        ("$.data[?(@.meta.src == 'y')].domain", ("c.example",)),
        ("$.data[?(@['meta']['src'] == 'x')].domain", ("a.example",)),
        ("$.data[?(@.tags[0] == 'c2')].domain", ("a.example",)),
        ("$.data[?(@.live == 1)].domain", ()),  # true is not 1
        ("$..[?(@.type == 'url')].domain", ("c.example",)),
        ("$.data[?(@.type == 'domain')][domain]", ("a.example", "b.example")),
    ],
)
def test_json_filters(path, entries):
    parsed = parse_feed_body(json.dumps(FILTERED).encode(), DOMAINS, JsonFormat(path))
    assert parsed.entries == entries
    assert parsed.rejected == 0


def test_a_filter_on_an_object_keeps_its_members():
    body = b'{"x": {"type": "domain", "v": "a.example"}, "y": {"type": "ip", "v": "192.0.2.1"}}'
    assert parse_feed_body(body, DOMAINS, JsonFormat("$[?(@.type == 'domain')].v")).entries == ("a.example",)


@pytest.mark.parametrize(
    ("path", "content", "entries", "rejected"),
    [
        # ThreatFox's JSON is an object keyed by IOC id whose values are lists of one IOC: `$.*` is the lists.
        ("$.*[?(@.ioc_type=='domain')].ioc_value", DOMAINS, ("c2.evil.example", "phish.evil.example"), 0),
        ("$.*[?(@.ioc_type=='url')].ioc_value", DOMAINS, ("dl.evil.example",), 0),
        ("$.*[?(@.ioc_type=='domain' && @.confidence_level >= 75)].ioc_value", DOMAINS, ("c2.evil.example",), 0),
        ("$..[?(@.ioc_type=='domain')].ioc_value", DOMAINS, ("c2.evil.example", "phish.evil.example"), 0),
        ("$.*[*].ioc_value", DOMAINS, ("c2.evil.example", "dl.evil.example", "phish.evil.example"), 1),
        # The root holds lists, which have no ioc_type: this selects nothing, as in every JSONPath.
        ("$[?(@.ioc_type=='domain')].ioc_value", DOMAINS, (), 0),
    ],
)
def test_threatfox_json(path, content, entries, rejected):
    parsed = parse_feed_body(THREATFOX_JSON, content, JsonFormat(path))
    assert (parsed.entries, parsed.rejected) == (entries, rejected)


def test_the_hand_written_paths_still_select_as_before_with_a_filter_beside_them():
    # The filter step is one more step: the others keep their Calico meaning, in any combination.
    body = json.dumps(DOCUMENT).encode()
    assert parse_feed_body(body, DOMAINS, JsonFormat("$.data[?(@.tags)].domain")).entries == ("evil.com",)
    assert parse_feed_body(body, IPS, JsonFormat("$..nested[?(@.ip)]")).entries == ()
    assert parse_feed_body(body, IPS, JsonFormat("$.data[0:2][?(@ == '10.1.2.3/8')]")).entries == ("10.0.0.0/8",)


# ---------------------------------------------------------------------------------------------- csv, quoted


def test_threatfox_csv_space_after_the_delimiter_and_quoted_fields():
    fmt = CsvFormat(field_num=2, comment_delimiter="#")
    parsed = parse_feed_body(THREATFOX_CSV, DOMAINS, fmt)
    assert parsed.entries == ("c2.evil.example", "dl.evil.example")
    assert parsed.rejected_samples == ((11, "198.51.100.36:5555"),)  # an ip:port is no name
    # the tags and alias fields hold commas inside their quotes: every record still has its 15 fields
    sized = parse_feed_body(THREATFOX_CSV, DOMAINS, CsvFormat(field_num=2, comment_delimiter="#", record_size=15))
    assert sized == parsed


@pytest.mark.parametrize(
    ("body", "fmt", "entries", "rejected"),
    [
        (b'"a.example", "1"\n"b.example",  "2"\n', CsvFormat(field_num=0), ("a.example", "b.example"), 0),
        (b'1, "a.example, b.example"\n', CsvFormat(field_num=1), (), 1),  # one quoted field, a comma inside
        (b'id, domain\n1, "c.example"\n', CsvFormat(field_name="domain", header=True), ("c.example",), 0),
        (b'"id", "domain"\n1, "c.example"\n', CsvFormat(field_name="domain", header=True), ("c.example",), 0),
        # with a space as the delimiter, two spaces are an empty field, as before
        (b"a.example  b.example\n", CsvFormat(field_num=2, column_delimiter=" "), ("b.example",), 0),
    ],
)
def test_csv_white_space_after_the_delimiter(body, fmt, entries, rejected):
    parsed = parse_feed_body(body, DOMAINS, fmt)
    assert (parsed.entries, parsed.rejected) == (entries, rejected)


# ---------------------------------------------------------------------------------------------- jsonLines


def test_spamhaus_drop_json_lines():
    parsed = parse_feed_body(SPAMHAUS_DROP_V4, IPS, JsonLinesFormat("cidr"))
    # the metadata line is no entry and no garbage
    assert parsed == ParsedFeed(("1.10.16.0/20", "198.51.100.0/24", "203.0.113.0/25"))


@pytest.mark.parametrize(
    ("body", "key", "entries", "samples"),
    [
        (b'{"cidr": "192.0.2.0/24"}\r\n\r\n{"cidr": "10.1.2.3/8"}', "cidr", ("192.0.2.0/24", "10.0.0.0/8"), ()),
        (b'{"cidr": "192.0.2.0/24"}\nnot json\n[1, 2]\n{"cidr": 7}\n{"cidr": "x"}\n', "cidr", ("192.0.2.0/24",),
         ((2, "not json"), (3, "[1, 2]"), (4, '{"cidr": 7}'), (5, "x"))),
        (b'{"d": "Evil.example"}\n{"type": "metadata"}\n', "d", ("evil.example",), ()),
        (gzip.compress(b'{"cidr":"2001:db8::/32"}\n'), "cidr", ("2001:db8::/32",), ()),
        (b"", "cidr", (), ()),
        (b"\n\n", "cidr", (), ()),
    ],
)
def test_json_lines(body, key, entries, samples):
    content = DOMAINS if key == "d" else IPS
    parsed = parse_feed_body(body, content, JsonLinesFormat(key))
    assert parsed.entries == entries
    assert parsed.rejected_samples == samples
    assert parsed.rejected == len(samples)


def test_json_lines_where_no_object_has_the_key_is_a_feed_error():
    # The spec does not fit the feed (a typo, or the publisher renamed it): not an empty set taken quietly.
    with pytest.raises(FeedError, match="no JSON object of the body has the key 'ip'"):
        parse_feed_body(SPAMHAUS_DROP_V4, IPS, JsonLinesFormat("ip"))


# ---------------------------------------------------------------------------------------------- misp


def test_misp_composite_values_give_the_part_the_content_wants():
    domains = parse_feed_body(MISP_EVENTS, DOMAINS, MispFormat())
    assert domains.entries == ("c2.evil.example", "beacon.evil.example", "dl.evil.example", "obj.evil.example")
    assert domains.rejected_samples == ((8, "domain|ip: broken.evil.example"),)  # a composite without its `|`
    ips = parse_feed_body(MISP_EVENTS, IPS, MispFormat())
    assert ips.entries == ("198.51.100.23/32", "203.0.113.9/32", "2001:db8::66/128", "198.51.100.24/32")
    assert ips.rejected == 1


@pytest.mark.parametrize(
    ("document", "content", "entries", "rejected"),
    [
        ({"Event": {"Attribute": [{"type": "domain", "value": "a.example"}]}}, DOMAINS, ("a.example",), 0),
        ([{"Event": {"Attribute": [{"type": "ip-dst", "value": "192.0.2.1"}]}}], IPS, ("192.0.2.1/32",), 0),
        ({"response": {"Attribute": [{"type": "hostname", "value": "h.example"}]}}, DOMAINS, ("h.example",), 0),
        ({"Event": {"Attribute": [{"type": "domain", "value": 7}]}}, DOMAINS, (), 1),
        ({"Event": {"Attribute": [{"type": "domain|ip", "value": "a.example|1.2.3.4|5"}]}}, DOMAINS, (), 1),
        ({"Event": {"Attribute": [{"type": "domain|ip", "value": "not a name|192.0.2.1"}]}}, DOMAINS, (), 1),
        ({"Event": {"Attribute": [{"type": "domain|ip", "value": "not a name|192.0.2.1"}]}}, IPS, ("192.0.2.1/32",), 0),
        ({"Event": {"Attribute": [{"type": "email-src", "value": "x@a.example"}]}}, DOMAINS, (), 0),
        ({"Event": {"Attribute": "none"}}, DOMAINS, (), 0),
        ({}, DOMAINS, (), 0),
    ],
)
def test_misp_shapes(document, content, entries, rejected):
    parsed = parse_feed_body(json.dumps(document).encode(), content, MispFormat())
    assert (parsed.entries, parsed.rejected) == (entries, rejected)


def test_misp_body_that_is_not_json_is_a_feed_error():
    with pytest.raises(FeedError, match="not valid JSON"):
        parse_feed_body(b"<xml/>", DOMAINS, MispFormat())


# ---------------------------------------------------------------------------------------------- stix

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)


def test_stix_bundle_for_domains():
    parsed = parse_feed_body(STIX_BUNDLE, DOMAINS, StixFormat(), now=NOW)
    # expired (5) and revoked (6) indicators are left out; the IP ones (2, 4) belong to an IPSet
    assert parsed.entries == ("c2.evil.example", "dl.evil.example", "one.evil.example", "two.evil.example")
    assert [number for number, _ in parsed.rejected_samples] == [8, 9, 11]  # objects counted from 1
    hashes, both, snort = (text for _, text in parsed.rejected_samples)
    assert hashes.startswith("indicator--8e2e2d2b-17d4-4cbf-938f-000000000007: file:hashes.'SHA-256' is none of")
    assert "AND between observations" in both
    assert "pattern_type 'snort' is not stix" in snort


def test_stix_bundle_for_addresses():
    parsed = parse_feed_body(STIX_BUNDLE, IPS, StixFormat(), now=NOW)
    assert parsed.entries == ("198.51.100.7/32", "203.0.113.0/24", "2001:db8::bad/128")
    assert parsed.rejected == 3


def test_stix_valid_until_is_against_now():
    before = datetime(2026, 11, 14, tzinfo=timezone.utc)
    assert "expired.evil.example" in parse_feed_body(STIX_BUNDLE, DOMAINS, StixFormat(), now=before).entries
    after = datetime(2027, 6, 1, tzinfo=timezone.utc)  # valid_until itself is past: the end is exclusive
    assert "one.evil.example" not in parse_feed_body(STIX_BUNDLE, DOMAINS, StixFormat(), now=after).entries


@pytest.mark.parametrize(
    ("document", "entries", "rejected"),
    [
        ({"objects": [{"type": "indicator", "pattern": "[domain-name:value = 'a.example']"}]}, ("a.example",), 0),
        ([{"type": "indicator", "pattern": "[domain-name:value = 'a.example']"}], ("a.example",), 0),
        ({"type": "bundle", "id": "bundle--1"}, (), 0),
        ({"objects": [{"type": "indicator"}]}, (), 1),
        ({"objects": [{"type": "indicator", "pattern": "[domain-name:value = 'a.example']", "valid_until": "soon"}]},
         (), 1),
        ({"objects": [{"type": "indicator", "pattern": "[domain-name:value = 'not a name']"}]}, (), 1),
        ({"objects": [{"type": "indicator", "pattern": "[domain-name:value = 'a.example']", "revoked": False,
                       "valid_until": "2026-12-03T12:00:01.123Z"}]}, ("a.example",), 0),
        ({"objects": ["indicator", None, {"type": "note"}]}, (), 0),
    ],
)
def test_stix_shapes(document, entries, rejected):
    parsed = parse_feed_body(json.dumps(document).encode(), DOMAINS, StixFormat(), now=NOW)
    assert (parsed.entries, parsed.rejected) == (entries, rejected)


@pytest.mark.parametrize("body", [b"{not json", b'{"type": "indicator"}', b'"bundle"'])
def test_stix_body_that_is_no_bundle_is_a_feed_error(body):
    with pytest.raises(FeedError, match="not valid JSON|not a STIX bundle"):
        parse_feed_body(body, DOMAINS, StixFormat(), now=NOW)


@pytest.mark.parametrize(
    ("pattern", "values"),
    [
        ("[domain-name:value = 'evil.example']", [("domain-name", "evil.example")]),
        ("[domain-name:value='evil.example']", [("domain-name", "evil.example")]),
        ("[ipv4-addr:value = '192.0.2.1' OR ipv6-addr:value = '2001:db8::1']",
         [("ipv4-addr", "192.0.2.1"), ("ipv6-addr", "2001:db8::1")]),
        ("[url:value = 'http://a.example/x'] OR [domain-name:value = 'b.example']",
         [("url", "http://a.example/x"), ("domain-name", "b.example")]),
        ("([domain-name:value = 'a.example'] OR ([domain-name:value = 'b.example']))",
         [("domain-name", "a.example"), ("domain-name", "b.example")]),
        ("[(domain-name:value = 'a.example' OR domain-name:value = 'b.example')]",
         [("domain-name", "a.example"), ("domain-name", "b.example")]),
        ("[domain-name:value IN ('a.example', 'b.example')]", [("domain-name", "a.example"), ("domain-name", "b.example")]),
        (r"[url:value = 'http://a.example/it\'s\\here']", [("url", "http://a.example/it's\\here")]),
        ("[url:value = 'http://a.example/[x] OR y']", [("url", "http://a.example/[x] OR y")]),
    ],
)
def test_stix_patterns(pattern, values):
    assert pattern_values(pattern) == values


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("", "an empty pattern"),
        ("[domain-name:value = 'a.example' AND domain-name:value = 'b.example']", "AND inside an observation"),
        ("[domain-name:value = 'a.example'] AND [ipv4-addr:value = '192.0.2.1']", "AND between observations"),
        ("[domain-name:value = 'a.example'] FOLLOWEDBY [domain-name:value = 'b.example']", "FOLLOWEDBY"),
        ("[domain-name:value = 'a.example'] WITHIN 300 SECONDS", "the qualifier WITHIN"),
        ("[domain-name:value = 'a.example'] REPEATS 5 TIMES", "the qualifier REPEATS"),
        ("[domain-name:value LIKE '%.example']", "LIKE ...: only = and IN"),
        ("[domain-name:value MATCHES '^a']", "MATCHES ...: only = and IN"),
        ("[domain-name:value != 'a.example']", "!= ...: only = and IN"),
        ("[NOT domain-name:value = 'a.example']", "expected an object path"),
        ("[domain-name:resolves_to_refs[*].value = '192.0.2.1']", "is none of domain-name:value"),
        ("[email-addr:value = 'x@a.example']", "email-addr:value is none of"),
        ("[domain-name:value = 7]", "expected a quoted string"),
        ("[domain-name:value = 'a.example'", "ends inside an observation"),
        ("domain-name:value = 'a.example'", "expected '\\['"),
        ("[domain-name:value = 'a.example'] OR", "ends too soon"),
        ("[domain-name:value = 'unterminated]", "cannot read the pattern"),
        ("(" * 100_000 + "[domain-name:value = 'a.example']" + ")" * 100_000, "nested more than 32 deep"),
        ("[" + "(" * 33 + "domain-name:value = 'a.example'" + ")" * 33 + "]", "nested more than 32 deep"),
    ],
)
def test_unsupported_stix_patterns_say_why(pattern, reason):
    with pytest.raises(UnsupportedPattern, match=reason):
        pattern_values(pattern)
