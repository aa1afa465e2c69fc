"""Feed body formats (dnswatch.feeds.formats): newlineDelimited, json with Calico's JSONPath subset, csv."""

from __future__ import annotations

import gzip
import json

import pytest

from dnswatch.feeds.formats import (
    NEWLINE_DELIMITED,
    CsvFormat,
    JsonFormat,
    JsonPathError,
    NewlineDelimitedFormat,
    compile_json_path,
    format_names,
    parse_feed_body,
)
from dnswatch.feeds.lines import FeedError, ParsedFeed

DOMAINS = "DomainNameSet"
IPS = "IPSet"


def test_one_parser_per_format_name():
    assert format_names() == ("newlineDelimited", "json", "csv")
    assert {NewlineDelimitedFormat.kind, JsonFormat.kind, CsvFormat.kind} == set(format_names())


def test_newline_delimited_is_the_default_and_uses_the_line_formats():
    body = b"# c\nevil.com\n0.0.0.0 b.org\n||c.net^\n"
    assert parse_feed_body(body, DOMAINS) == parse_feed_body(body, DOMAINS, NEWLINE_DELIMITED)
    assert parse_feed_body(body, DOMAINS).entries == ("evil.com", "b.org", ".c.net")  # `||name^`: with subdomains
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
        ("$.data[?(@.x)]", "filters and expressions are not supported"),
        ("$.data[(@.length-1)]", "filters and expressions are not supported"),
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
