"""GlobalThreatFeed specs (dnswatch.feeds.spec): defaults, every validation rule and its message."""

from __future__ import annotations

import copy
import re

import pytest
import yaml

from dnswatch.feeds.formats import NEWLINE_DELIMITED, CsvFormat, JsonFormat, JsonLinesFormat, MispFormat, StixFormat
from dnswatch.feeds.spec import (
    FeedSpec,
    FeedSpecError,
    HeaderSpec,
    KeyRef,
    TaxiiSource,
    feed_spec_from_manifest,
    feed_specs_from_yaml_documents,
    parse_go_duration,
)
from dnswatch.errors import BadInput

MINIMAL = {
    "apiVersion": "dnswatch.dev/v1",
    "kind": "GlobalThreatFeed",
    "metadata": {"name": "c2"},
    "spec": {"pull": {"http": {"url": "https://feeds.example/c2.txt"}}},
}

CALICO_SAMPLE = """
apiVersion: projectcalico.org/v3
kind: GlobalThreatFeed
metadata:
  name: sample-global-threat-feed
spec:
  content: IPSet
  mode: Enabled
  description: "This is the sample global threat feed"
  feedType: Custom
  globalNetworkSet:
    labels:
      level: high
  pull:
    period: 24h
    http:
      format:
        newlineDelimited: {}
      url: https://an.example.threat.feed/deny-list
      headers:
        - name: "Accept"
          value: "text/plain"
        - name: "APIKey"
          valueFrom:
            secretKeyRef:
              name: "globalthreatfeed-sample-global-threat-feed-example"
              key: "apikey"
"""


def with_changes(**paths) -> dict:
    """MINIMAL with `spec__pull__period="1m"`-style changes; a value of DELETE removes the key."""
    manifest = copy.deepcopy(MINIMAL)
    for path, value in paths.items():
        *parents, last = path.split("__")
        node = manifest
        for key in parents:
            node = node.setdefault(key, {})
        if value is DELETE:
            node.pop(last, None)
        else:
            node[last] = value
    return manifest


DELETE = object()


def test_defaults_are_calicos():
    assert feed_spec_from_manifest(MINIMAL) == FeedSpec(
        name="c2",
        content="IPSet",
        mode="Enabled",
        description="",
        feed_type="Custom",
        period_seconds=86400.0,
        url="https://feeds.example/c2.txt",
        headers=(),
        format=NEWLINE_DELIMITED,
        match_subdomains=False,
    )
    assert feed_spec_from_manifest(MINIMAL).enabled


def test_labels_and_severity_read():
    spec = feed_spec_from_manifest(with_changes(
        metadata__labels={"tier": "gold", "dnswatch.dev/source": "abuse.ch", "empty": ""}, spec__severity=70))
    assert spec.labels == (("dnswatch.dev/source", "abuse.ch"), ("empty", ""), ("tier", "gold"))
    assert spec.severity == 70
    assert feed_spec_from_manifest(with_changes(spec__severity=0)).severity == 0
    assert (feed_spec_from_manifest(MINIMAL).labels, feed_spec_from_manifest(MINIMAL).severity) == ((), 100)


def test_calico_labels_come_from_metadata():
    calico = yaml.safe_load(CALICO_SAMPLE)
    calico["metadata"]["labels"] = {"feed-kind": "deny-list"}
    spec = feed_spec_from_manifest(calico)
    # globalNetworkSet.labels label the network set Calico makes, not the feed: they stay out of events.
    assert spec.labels == (("feed-kind", "deny-list"),)
    assert spec.severity == 100


def test_calico_sample_manifest_is_accepted_as_it_is():
    spec = feed_spec_from_manifest(yaml.safe_load(CALICO_SAMPLE))
    assert spec.name == "sample-global-threat-feed"
    assert spec.content == "IPSet"
    assert spec.description == "This is the sample global threat feed"
    assert spec.period_seconds == 86400.0
    assert spec.headers == (
        HeaderSpec(name="Accept", value="text/plain"),
        HeaderSpec(name="APIKey", secret_ref=KeyRef("globalthreatfeed-sample-global-threat-feed-example", "apikey")),
    )


def test_every_field_read():
    spec = feed_spec_from_manifest(
        with_changes(
            spec__content="DomainNameSet",
            spec__mode="Disabled",
            spec__description="C2 domains",
            spec__feedType="Builtin",
            spec__matchSubdomains=True,
            spec__pull__period="1h30m",
            spec__pull__http__headers=[
                {"name": "X-Key", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k", "optional": True}}}
            ],
            spec__pull__http__format={"json": {"path": "$.data[*].domain"}},
        )
    )
    assert (spec.content, spec.mode, spec.description, spec.feed_type) == ("DomainNameSet", "Disabled", "C2 domains", "Builtin")
    assert spec.match_subdomains and not spec.enabled
    assert spec.period_seconds == 5400.0
    assert spec.headers == (HeaderSpec(name="X-Key", config_map_ref=KeyRef("cm", "k"), optional=True),)
    assert spec.format == JsonFormat("$.data[*].domain")


def test_csv_format_read():
    spec = feed_spec_from_manifest(
        with_changes(
            spec__pull__http__format={
                "csv": {"fieldName": "url", "header": True, "columnDelimiter": "|", "commentDelimiter": "#", "recordSize": 4}
            }
        )
    )
    assert spec.format == CsvFormat(
        field_name="url", header=True, column_delimiter="|", comment_delimiter="#", record_size=4
    )
    spec = feed_spec_from_manifest(with_changes(spec__pull__http__format={"csv": {"fieldNum": 0, "disableRecordSizeValidation": True}}))
    assert spec.format == CsvFormat(field_num=0, disable_record_size_validation=True)


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ({"jsonLines": {"key": "cidr"}}, JsonLinesFormat("cidr")),
        ({"misp": {}}, MispFormat()),
        ({"misp": None}, MispFormat()),
        ({"stix": {}}, StixFormat()),
        ({"json": {"path": "$.*[?(@.ioc_type=='domain')].ioc_value"}}, JsonFormat("$.*[?(@.ioc_type=='domain')].ioc_value")),
    ],
)
def test_structured_formats_read(fmt, expected):
    assert feed_spec_from_manifest(with_changes(spec__pull__http__format=fmt)).format == expected


def test_taxii_source_read():
    auth = {"headers": [{"name": "Authorization", "valueFrom": {"secretKeyRef": {"name": "taxii", "key": "basic"}}}]}
    spec = feed_spec_from_manifest(with_changes(
        spec__content="DomainNameSet", spec__pull__http=DELETE,
        spec__pull__taxii={"url": "https://taxii.example/api1/", "collection": "c2-indicators", "auth": auth}))
    assert spec.taxii == TaxiiSource("c2-indicators")
    assert spec.url == "https://taxii.example/api1/"
    assert spec.format == StixFormat()
    assert spec.headers == (HeaderSpec(name="Authorization", secret_ref=KeyRef("taxii", "basic")),)
    assert feed_spec_from_manifest(MINIMAL).taxii is None


def test_a_literal_header_value_is_kept_out_of_repr():
    spec = feed_spec_from_manifest(with_changes(spec__pull__http__headers=[{"name": "Authorization", "value": "Bearer s3cret"}]))
    assert spec.headers[0].value == "Bearer s3cret"
    assert "s3cret" not in repr(spec)


def test_file_urls_only_where_allowed():
    manifest = with_changes(spec__pull__http__url="file:feeds/c2.txt")
    assert feed_spec_from_manifest(manifest, allow_file_urls=True).url == "file:feeds/c2.txt"
    assert feed_spec_from_manifest(with_changes(spec__pull__http__url="file:///abs/c2.txt"), allow_file_urls=True).url == "file:///abs/c2.txt"
    with pytest.raises(FeedSpecError, match='spec.pull.http.url: "file:feeds/c2.txt" must be http or https'):
        feed_spec_from_manifest(manifest)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        # identity
        ({"apiVersion": "v1"}, 'apiVersion: "v1" is not dnswatch.dev/v1 or projectcalico.org/v3'),
        ({"apiVersion": DELETE}, "apiVersion: None is not dnswatch.dev/v1"),
        ({"kind": "NetworkPolicy"}, 'kind: "NetworkPolicy" is not GlobalThreatFeed'),
        ({"metadata": DELETE}, "metadata: required"),
        ({"metadata__name": DELETE}, "metadata.name: required"),
        ({"metadata__name": "C2_feed"}, "metadata.name: 'C2_feed' must be lower-case letters, digits"),
        ({"spec": DELETE}, "spec: required"),
        ({"spec": ["x"]}, "spec: expected an object, got a list"),
        ({"spec__matchSubdomain": True}, "spec.matchSubdomain: unknown field"),
        # content, mode, feedType, description, matchSubdomains
        ({"spec__content": "Domains"}, 'spec.content: "Domains" is not one of DomainNameSet, IPSet'),
        ({"spec__mode": "enabled"}, 'spec.mode: "enabled" is not one of Enabled, Disabled'),
        ({"spec__feedType": "Other"}, 'spec.feedType: "Other" is not one of Builtin, Custom'),
        ({"spec__description": "x" * 257}, "spec.description: 257 characters, more than 256"),
        ({"spec__description": 5}, "spec.description: expected a string, got a number"),
        ({"spec__matchSubdomains": "yes"}, 'spec.matchSubdomains: expected true or false, got "yes"'),
        # severity and labels
        ({"spec__severity": 101}, "spec.severity: 101 is not a whole number from 0 to 100"),
        ({"spec__severity": -1}, "spec.severity: -1 is not a whole number from 0 to 100"),
        ({"spec__severity": "high"}, 'spec.severity: "high" is not a whole number from 0 to 100'),
        ({"spec__severity": 50.5}, "spec.severity: 50.5 is not a whole number"),
        ({"spec__severity": True}, "spec.severity: True is not a whole number"),
        ({"metadata__labels": ["a"]}, "metadata.labels: expected an object, got a list"),
        ({"metadata__labels": {"team": 7}}, "metadata.labels.team: expected a string, got a number"),
        ({"metadata__labels": {"team": "red team"}}, 'metadata.labels.team: "red team" is no label value'),
        ({"metadata__labels": {"team": "x" * 64}}, "metadata.labels.team: .* is no label value: at most 63"),
        ({"metadata__labels": {"-team": "red"}}, 'metadata.labels.-team: "-team" is no label name'),
        ({"metadata__labels": {"Bad_Prefix/team": "red"}}, 'metadata.labels.Bad_Prefix/team: the prefix "Bad_Prefix" is not a DNS subdomain'),
        # pull and its period
        ({"spec__pull": DELETE}, "spec.pull: required"),
        ({"spec__pull__http": DELETE}, "spec.pull.http: required"),
        ({"spec__pull__every": "1h"}, "spec.pull.every: unknown field"),
        ({"spec__pull__period": "1m"}, 'spec.pull.period: "1m" is shorter than the minimum 5m'),
        ({"spec__pull__period": "299s"}, 'spec.pull.period: "299s" is shorter than the minimum 5m'),
        ({"spec__pull__period": "4m59.9s"}, "is shorter than the minimum 5m"),
        ({"spec__pull__period": "-1h"}, "is shorter than the minimum 5m"),
        ({"spec__pull__period": "0"}, "is shorter than the minimum 5m"),
        ({"spec__pull__period": "1d"}, "spec.pull.period: '1d' is not a Go duration"),
        ({"spec__pull__period": "10"}, "spec.pull.period: '10' is not a Go duration"),
        ({"spec__pull__period": 3600}, "spec.pull.period: 3600 is not a Go duration string"),
        # url
        ({"spec__pull__http__url": DELETE}, "spec.pull.http.url: required"),
        ({"spec__pull__http__url": ""}, "spec.pull.http.url: required"),
        ({"spec__pull__http__url": "ftp://x.example/f"}, 'spec.pull.http.url: "ftp://x.example/f" must be http or https'),
        ({"spec__pull__http__url": "x.example/feed"}, "must be http or https"),
        ({"spec__pull__http__url": "https://"}, 'spec.pull.http.url: "https://" has no host'),
        ({"spec__pull__http__url": "https://x.example:99999/"}, "is not a valid URL"),
        ({"spec__pull__http__url": "https://x.example/a b"}, "contains white space"),
        ({"spec__pull__http__url": ["https://x"]}, "spec.pull.http.url: expected a string, got a list"),
        ({"spec__pull__http__proxy": "x"}, "spec.pull.http.proxy: unknown field"),
        # headers
        ({"spec__pull__http__headers": {"a": "b"}}, "spec.pull.http.headers: expected a list, got an object"),
        ({"spec__pull__http__headers": [{"value": "x"}]}, "spec.pull.http.headers[0].name: required"),
        ({"spec__pull__http__headers": [{"name": "Bad Name", "value": "x"}]}, "headers[0].name: 'Bad Name' is not a valid HTTP header name"),
        ({"spec__pull__http__headers": [{"name": "A", "value": "x\r\nInjected: 1"}]}, "headers[0].value: must not contain line breaks"),
        ({"spec__pull__http__headers": [{"name": "A"}]}, "spec.pull.http.headers[0]: set value or valueFrom"),
        ({"spec__pull__http__headers": [{"name": "A", "value": ""}]}, "headers[0]: set value or valueFrom"),
        (
            {"spec__pull__http__headers": [{"name": "A", "value": "x"}, {"name": "B", "value": "y", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]},
            "spec.pull.http.headers[1]: set either value or valueFrom, not both",
        ),
        ({"spec__pull__http__headers": [{"name": "A", "valueFrom": {}}]}, "headers[0].valueFrom: set exactly one of configMapKeyRef or secretKeyRef"),
        (
            {"spec__pull__http__headers": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}, "secretKeyRef": {"name": "s", "key": "k"}}}]},
            "headers[0].valueFrom: set exactly one of configMapKeyRef or secretKeyRef",
        ),
        ({"spec__pull__http__headers": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s"}}}]}, "headers[0].valueFrom.secretKeyRef.key: required"),
        ({"spec__pull__http__headers": [{"name": "A", "valueFrom": {"configMapKeyRef": {"key": "k"}}}]}, "headers[0].valueFrom.configMapKeyRef.name: required"),
        ({"spec__pull__http__headers": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k", "optional": "no"}}}]}, "secretKeyRef.optional: expected true or false"),
        ({"spec__pull__http__headers": [{"name": "A", "valueFrom": {"fieldRef": {}}}]}, "headers[0].valueFrom.fieldRef: unknown field"),
        # format
        ({"spec__pull__http__format": {"json": {"path": "$.a"}, "csv": {"fieldNum": 0}}}, "spec.pull.http.format: set at most one of newlineDelimited, json, csv, jsonLines, misp, stix (found json, csv)"),
        ({"spec__pull__http__format": {"xml": {}}}, "spec.pull.http.format.xml: unknown field"),
        ({"spec__pull__http__format": {"newlineDelimited": {"x": 1}}}, "spec.pull.http.format.newlineDelimited: expected an empty object"),
        ({"spec__pull__http__format": {"json": None}}, "spec.pull.http.format.json: required"),
        ({"spec__pull__http__format": {"json": {}}}, "spec.pull.http.format.json.path: required"),
        ({"spec__pull__http__format": {"json": {"path": ""}}}, "spec.pull.http.format.json.path: required"),
        ({"spec__pull__http__format": {"json": {"path": "$.a[(@.length-1)]"}}}, "spec.pull.http.format.json.path: .* script expressions .* are not supported"),
        ({"spec__pull__http__format": {"json": {"path": "$.a[?(@.b = 1)]"}}}, "spec.pull.http.format.json.path: .* unexpected '='"),
        ({"spec__pull__http__format": {"jsonLines": None}}, "spec.pull.http.format.jsonLines: required"),
        ({"spec__pull__http__format": {"jsonLines": {}}}, "spec.pull.http.format.jsonLines.key: required"),
        ({"spec__pull__http__format": {"jsonLines": {"key": 7}}}, "spec.pull.http.format.jsonLines.key: expected a string"),
        ({"spec__pull__http__format": {"jsonLines": {"key": "cidr", "path": "$"}}}, "spec.pull.http.format.jsonLines.path: unknown field"),
        ({"spec__pull__http__format": {"misp": {"types": ["domain"]}}}, "spec.pull.http.format.misp: expected an empty object"),
        ({"spec__pull__http__format": {"stix": {"version": "2.1"}}}, "spec.pull.http.format.stix: expected an empty object"),
        ({"spec__pull__http__format": {"stix": {}, "misp": {}}}, "spec.pull.http.format: set at most one of"),
        ({"spec__pull__http__format": {"json": {"path": "data"}}}, "format.json.path: a JSONPath starts with"),
        ({"spec__pull__http__format": {"csv": None}}, "spec.pull.http.format.csv: required"),
        ({"spec__pull__http__format": {"csv": {}}}, "spec.pull.http.format.csv: set fieldNum or fieldName"),
        ({"spec__pull__http__format": {"csv": {"header": True}}}, "spec.pull.http.format.csv: set fieldNum or fieldName"),
        ({"spec__pull__http__format": {"csv": {"fieldNum": 0, "fieldName": "d", "header": True}}}, "format.csv: fieldNum and fieldName are mutually exclusive"),
        ({"spec__pull__http__format": {"csv": {"fieldNum": -1}}}, "format.csv.fieldNum: -1 is not a column number"),
        ({"spec__pull__http__format": {"csv": {"fieldNum": True}}}, "format.csv.fieldNum: True is not a column number"),
        ({"spec__pull__http__format": {"csv": {"fieldName": "d"}}}, "format.csv.fieldName: needs header: true"),
        ({"spec__pull__http__format": {"csv": {"fieldNum": 0, "columnDelimiter": "||"}}}, 'format.csv.columnDelimiter: "||" must be a single character'),
        ({"spec__pull__http__format": {"csv": {"fieldNum": 0, "columnDelimiter": '"'}}}, "format.csv.columnDelimiter: .* cannot be a delimiter"),
        ({"spec__pull__http__format": {"csv": {"fieldNum": 0, "commentDelimiter": "\n"}}}, "format.csv.commentDelimiter: .* cannot be a delimiter"),
        ({"spec__pull__http__format": {"csv": {"fieldNum": 0, "commentDelimiter": ","}}}, "format.csv.commentDelimiter: must differ from the column delimiter"),
        ({"spec__pull__http__format": {"csv": {"fieldNum": 0, "columnDelimiter": "|", "commentDelimiter": "|"}}}, "must differ from the column delimiter"),
        ({"spec__pull__http__format": {"csv": {"fieldNum": 0, "recordSize": 0}}}, "format.csv.recordSize: 0 is not a positive number of fields"),
        ({"spec__pull__http__format": {"csv": {"fieldNum": 0, "recordSize": 2, "disableRecordSizeValidation": True}}}, "format.csv: recordSize and disableRecordSizeValidation are mutually exclusive"),
        ({"spec__pull__http__format": {"csv": {"fieldNum": 0, "quote": "'"}}}, "format.csv.quote: unknown field"),
        # taxii
        ({"spec__pull__taxii": {"url": "https://t.example/api1/", "collection": "c"}}, "spec.pull: set either http or taxii, not both"),
        ({"spec__pull__http": DELETE, "spec__pull__taxii": None}, "spec.pull.taxii: required"),
        ({"spec__pull__http": DELETE, "spec__pull__taxii": {"collection": "c"}}, "spec.pull.taxii.url: required"),
        ({"spec__pull__http": DELETE, "spec__pull__taxii": {"url": "file:x", "collection": "c"}}, 'spec.pull.taxii.url: "file:x" must be http or https'),
        ({"spec__pull__http": DELETE, "spec__pull__taxii": {"url": "https://t.example/"}}, "spec.pull.taxii.collection: required"),
        ({"spec__pull__http": DELETE, "spec__pull__taxii": {"url": "https://t.example/", "collection": 7}}, "spec.pull.taxii.collection: expected a string"),
        ({"spec__pull__http": DELETE, "spec__pull__taxii": {"url": "https://t.example/", "collection": "c", "format": {}}}, "spec.pull.taxii.format: unknown field"),
        ({"spec__pull__http": DELETE, "spec__pull__taxii": {"url": "https://t.example/", "collection": "c", "auth": []}}, "spec.pull.taxii.auth: expected an object"),
        ({"spec__pull__http": DELETE, "spec__pull__taxii": {"url": "https://t.example/", "collection": "c", "auth": {"basic": {}}}}, "spec.pull.taxii.auth.basic: unknown field"),
        ({"spec__pull__http": DELETE, "spec__pull__taxii": {"url": "https://t.example/", "collection": "c", "auth": {"headers": [{"name": "A"}]}}}, "spec.pull.taxii.auth.headers[0]: set value or valueFrom"),
    ],
)
def test_invalid_specs_name_the_field(changes, message):
    # `message` is a literal part of the error; ".*" stands for text the case does not pin down.
    with pytest.raises(FeedSpecError) as caught:
        feed_spec_from_manifest(with_changes(**changes))
    assert re.search(".*".join(map(re.escape, message.split(".*"))), str(caught.value)), str(caught.value)
    assert isinstance(caught.value, BadInput)


def test_error_names_the_feed_and_carries_the_field():
    with pytest.raises(FeedSpecError) as caught:
        feed_spec_from_manifest(with_changes(spec__pull__period="1m"))
    assert str(caught.value) == 'GlobalThreatFeed c2: spec.pull.period: "1m" is shorter than the minimum 5m'
    assert (caught.value.field, caught.value.feed) == ("spec.pull.period", "c2")


def test_a_manifest_that_is_not_an_object():
    with pytest.raises(FeedSpecError, match="expected a GlobalThreatFeed object, got a list"):
        feed_spec_from_manifest([MINIMAL])


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("24h", 86400.0),
        ("1h30m", 5400.0),
        ("300s", 300.0),
        ("5m0s", 300.0),
        ("5m", 300.0),
        ("1.5h", 5400.0),
        (".5h", 1800.0),
        ("1h0m0s", 3600.0),
        ("30m1h", 5400.0),
        ("1500ms", 1.5),
        ("2us", 2e-6),
        ("2µs", 2e-6),
        ("10ns", 1e-8),
        ("0", 0.0),
        ("-1m", -60.0),
        ("+2h", 7200.0),
    ],
)
def test_go_durations(text, seconds):
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "h", "1", "1d", "1 h", "1H", ".h", "1h-5m", "P1D", "1h30"])
def test_not_go_durations(text):
    with pytest.raises(ValueError, match="not a Go duration"):
        parse_go_duration(text)


# ---------------------------------------------------------------------------------------------- YAML streams


def test_yaml_stream_with_a_list_and_empty_documents():
    second = with_changes(metadata__name="ips")
    third = with_changes(metadata__name="domains", spec__content="DomainNameSet")
    docs = list(yaml.safe_load_all(yaml.safe_dump(MINIMAL) + "---\n---\n" + yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [second, third]})))
    assert [spec.name for spec in feed_specs_from_yaml_documents(docs)] == ["c2", "ips", "domains"]


def test_global_threat_feed_list_kind():
    docs = [{"apiVersion": "dnswatch.dev/v1", "kind": "GlobalThreatFeedList", "items": [MINIMAL]}]
    assert [spec.name for spec in feed_specs_from_yaml_documents(docs)] == ["c2"]


def test_errors_in_streams_say_which_document_and_item():
    bad = with_changes(spec__pull__period="1m")
    with pytest.raises(FeedSpecError, match=r'^document 2: items\[1\]: GlobalThreatFeed c2: spec.pull.period: "1m"'):
        feed_specs_from_yaml_documents([None, {"apiVersion": "v1", "kind": "List", "items": [with_changes(metadata__name="ok"), bad]}])
    with pytest.raises(FeedSpecError, match=r'^document 1: kind: "ConfigMap" is not GlobalThreatFeed'):
        feed_specs_from_yaml_documents([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}])
    with pytest.raises(FeedSpecError, match=r"^document 1: items: expected a list"):
        feed_specs_from_yaml_documents([{"apiVersion": "v1", "kind": "List", "items": {"a": 1}}])


def test_a_name_used_twice_is_refused():
    with pytest.raises(FeedSpecError, match="metadata.name: 'c2' is used by more than one feed"):
        feed_specs_from_yaml_documents([MINIMAL, copy.deepcopy(MINIMAL)])


def test_file_urls_pass_through_streams():
    docs = [with_changes(spec__pull__http__url="file:c2.txt")]
    assert feed_specs_from_yaml_documents(docs, allow_file_urls=True)[0].url == "file:c2.txt"
    with pytest.raises(FeedSpecError, match="must be http or https"):
        feed_specs_from_yaml_documents(docs)
