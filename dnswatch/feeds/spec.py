"""GlobalThreatFeed specs (docs/globalthreatfeed.md): validated values built from already-parsed manifest dicts.

The agent's `--feed-manifest`, the collector's `--feeds-dir` and its Kubernetes watch all read manifests
through `feed_spec_from_manifest`, so one feed is valid or invalid the same way everywhere, and an invalid
one is refused with a message that names the field (`spec.pull.period: "1m" is shorter than the minimum 5m`).
Unknown fields are refused too, so a typo (`matchSubdomain`) is not silently ignored; Calico fields that we
accept but do not act on (`globalNetworkSet`) are allowed. Reading YAML is the caller's job.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from dnswatch.feeds.formats import NEWLINE_DELIMITED, CsvFormat, FeedFormat, JsonFormat, JsonLinesFormat
from dnswatch.feeds.formats import JsonPathError, MispFormat, StixFormat, compile_json_path
from dnswatch.feeds.lines import CONTENTS, DOMAIN_NAME_SET, IP_SET
from dnswatch.errors import BadInput

API_VERSIONS = ("dnswatch.dev/v1", "projectcalico.org/v3")
KIND = "GlobalThreatFeed"
MODES = ("Enabled", "Disabled")
FEED_TYPES = ("Builtin", "Custom")
DEFAULT_PERIOD_SECONDS = 24 * 3600.0
MIN_PERIOD_SECONDS = 5 * 60.0
MAX_DESCRIPTION_CHARS = 256
DEFAULT_SEVERITY = 100  # what every event carried before feeds had a severity: Calico's fixed value
MAX_SEVERITY = 100  # Calico's event severity scale is 0-100
MAX_LABEL_CHARS = 63  # a Kubernetes label's name and value, at most

__all__ = [
    "DOMAIN_NAME_SET",
    "IP_SET",
    "FeedSpec",
    "FeedSpecError",
    "HeaderSpec",
    "KeyRef",
    "TaxiiSource",
    "feed_format_from_manifest",
    "feed_spec_from_manifest",
    "feed_specs_from_yaml_documents",
    "parse_go_duration",
]


class FeedSpecError(BadInput):
    """A GlobalThreatFeed manifest that cannot be used; the message names the field and what is wrong."""

    def __init__(self, field_path: str, problem: str, feed: str | None = None, location: str | None = None) -> None:
        self.field = field_path
        """The field's path in the manifest, e.g. `spec.pull.period`."""
        self.problem = problem
        self.feed = feed
        """The feed's name, when the manifest has one."""
        self.location = location
        """Which document (and List item) of a YAML stream, when several were read."""
        prefix = (f"{location}: " if location else "") + (f"GlobalThreatFeed {feed}: " if feed else "")
        super().__init__(f"{prefix}{field_path}: {problem}")


@dataclass(frozen=True)
class KeyRef:
    """A key of a ConfigMap or Secret (in the collector's namespace) holding a header value."""

    name: str
    """The ConfigMap's or Secret's name."""
    key: str
    """The key inside it."""


@dataclass(frozen=True)
class HeaderSpec:
    """One HTTP header sent when pulling the feed: a literal value, or one read from a ConfigMap or Secret."""

    name: str
    """The header name (an HTTP token)."""
    value: str | None = field(default=None, repr=False)  # may be an API key: kept out of repr and logs
    """The literal value; None when `valueFrom` is used."""
    config_map_ref: KeyRef | None = None
    """`valueFrom.configMapKeyRef`."""
    secret_ref: KeyRef | None = None
    """`valueFrom.secretKeyRef`; its value is never logged."""
    optional: bool = False
    """A missing ConfigMap/Secret key omits the header instead of failing the pull."""


@dataclass(frozen=True)
class TaxiiSource:
    """`pull.taxii`: the feed is a TAXII 2.1 collection, its objects read as STIX (docs/feeds.md)."""

    collection: str
    """The collection's `id` or `title`, as the API root's `collections/` lists it."""


@dataclass(frozen=True, kw_only=True)
class FeedSpec:
    """A validated GlobalThreatFeed spec with Calico's defaults applied."""

    name: str
    """`metadata.name`: how events (`record.feeds`) and `dnswatch feeds` name the feed."""
    content: str = IP_SET
    """`DomainNameSet` or `IPSet` (Calico's default)."""
    mode: str = "Enabled"
    """`Enabled`, or `Disabled`, which stops both pulling and matching."""
    description: str = ""
    """Free text for people, at most 256 characters."""
    feed_type: str = "Custom"
    """`Builtin` or `Custom` (informational, as in Calico)."""
    period_seconds: float = DEFAULT_PERIOD_SECONDS
    """`pull.period`: seconds between pulls, at least 300 (5m); 24h by default."""
    url: str = ""
    """`pull.http.url`: http(s), or `file:` where the caller allows it (the agent's `--feed-manifest`); for a
    TAXII feed `pull.taxii.url`, the API root; empty for a push feed."""
    headers: tuple[HeaderSpec, ...] = ()
    """`pull.http.headers`, in order; for a TAXII feed `pull.taxii.auth.headers`."""
    format: FeedFormat = NEWLINE_DELIMITED
    """`pull.http.format`: how the body is read (`dnswatch.feeds.formats`); STIX for a TAXII feed."""
    taxii: TaxiiSource | None = None
    """`pull.taxii`: set when the feed is a TAXII collection rather than one HTTP body."""
    match_subdomains: bool = False
    """Ours: each plain entry also covers its subdomains (`evil.com` matches `a.evil.com`)."""
    labels: tuple[tuple[str, str], ...] = ()
    """`metadata.labels`, sorted by name: they travel to the agents and into every event of the feed
    (`record.feed_labels`), as Calico's "Add Feed" form labels the feed."""
    severity: int = DEFAULT_SEVERITY
    """Ours, `spec.severity`: the severity (0-100, Calico's scale) of the events the feed raises; an event
    matching several feeds takes the highest."""

    @property
    def enabled(self) -> bool:
        return self.mode == "Enabled"

    @property
    def pushed(self) -> bool:
        """A push feed (Calico's, with no `pull`): its set is pushed to the collector, never pulled."""
        return not self.url


# ---------------------------------------------------------------------------------------------- entry points


def feed_spec_from_manifest(obj: dict, *, allow_file_urls: bool = False, allow_push: bool = False) -> FeedSpec:
    """Validate one GlobalThreatFeed object (a parsed YAML/JSON dict) into a FeedSpec; raises FeedSpecError.

    `allow_push` accepts a manifest with no `pull` as a push feed: only the collector, which receives the
    pushed sets, can use one.
    """
    if not isinstance(obj, dict):
        raise FeedSpecError("(document)", f"expected a GlobalThreatFeed object, got {_type(obj)}")
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    feed = name if isinstance(name, str) and name else None
    return _Validator(feed).validate(obj, allow_file_urls, allow_push)


def feed_format_from_manifest(obj: Any) -> FeedFormat:
    """The format a `pull.http.format` object describes (`{"csv": {"fieldNum": 1}}`); raises FeedSpecError.

    `dnswatch feeds push --format` takes the same object, so a pushed body is read as a pulled one would be.
    """
    return _Validator(None).format(obj)


def feed_specs_from_yaml_documents(docs: list, *, allow_file_urls: bool = False) -> list[FeedSpec]:
    """Every GlobalThreatFeed of a YAML stream's documents; a `v1` List (or GlobalThreatFeedList) is unpacked.

    Empty documents are skipped; any other kind, an invalid feed or a name used twice raises FeedSpecError,
    prefixed with the document's (and item's) position.
    """
    specs: list[FeedSpec] = []
    for number, doc in enumerate(docs, 1):
        if doc is None:
            continue
        kind = doc.get("kind") if isinstance(doc, dict) else None
        if kind in ("List", f"{KIND}List"):
            items = doc.get("items") or []
            if not isinstance(items, list):
                raise FeedSpecError("items", f"expected a list, got {_type(items)}", location=f"document {number}")
            for index, item in enumerate(items):
                specs.append(_located(f"document {number}: items[{index}]", item, allow_file_urls))
        else:
            specs.append(_located(f"document {number}", doc, allow_file_urls))
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise FeedSpecError("metadata.name", f"{spec.name!r} is used by more than one feed", spec.name)
        seen.add(spec.name)
    return specs


def _located(where: str, obj: Any, allow_file_urls: bool) -> FeedSpec:
    try:
        return feed_spec_from_manifest(obj, allow_file_urls=allow_file_urls)
    except FeedSpecError as error:
        raise FeedSpecError(error.field, error.problem, error.feed, location=where) from None


# ---------------------------------------------------------------------------------------------- Go durations

_DURATION = re.compile(r"[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|µs|μs|ms|s|m|h))+")
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_go_duration(text: str) -> float:
    """Seconds in a Go `time.ParseDuration` string (`24h`, `1h30m`, `300s`, `5m0s`, `1.5h`); ValueError if not one."""
    if text in ("0", "+0", "-0"):
        return 0.0
    if not _DURATION.fullmatch(text):
        raise ValueError(f"{text!r} is not a Go duration such as 24h, 1h30m or 300s")
    seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _DURATION_PART.findall(text))
    return -seconds if text.startswith("-") else seconds


# ---------------------------------------------------------------------------------------------- validation

_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")  # RFC 1123 subdomain
_LABEL_VALUE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")  # a Kubernetes label name or value
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an RFC 9110 token
_FORMATS = ("newlineDelimited", "json", "csv", "jsonLines", "misp", "stix")


class _Validator:
    def __init__(self, feed: str | None) -> None:
        self.feed = feed

    def fail(self, field_path: str, problem: str) -> FeedSpecError:
        return FeedSpecError(field_path, problem, self.feed)

    def validate(self, obj: dict, allow_file_urls: bool, allow_push: bool = False) -> FeedSpec:
        # kind first: in a folder of manifests, "this is a ConfigMap" says more than its apiVersion would.
        if obj.get("kind") != KIND:
            raise self.fail("kind", f"{_show(obj.get('kind'))} is not {KIND}")
        api_version = obj.get("apiVersion")
        if api_version not in API_VERSIONS:
            raise self.fail("apiVersion", f"{_show(api_version)} is not {' or '.join(API_VERSIONS)}")
        metadata = self.mapping(obj.get("metadata"), "metadata", required=True)
        name = metadata.get("name")
        if not isinstance(name, str) or not name:
            raise self.fail("metadata.name", "required")
        if len(name) > 253 or not _NAME.fullmatch(name):
            raise self.fail("metadata.name", f"{name!r} must be lower-case letters, digits, '-' and '.'")
        spec = self.mapping(obj.get("spec"), "spec", required=True)
        self.known(
            spec, "spec", ("content", "mode", "description", "feedType", "pull", "matchSubdomains", "severity",
                           "globalNetworkSet")
        )
        common = dict(
            name=name,
            content=self.choice(spec, "content", CONTENTS, IP_SET),
            mode=self.choice(spec, "mode", MODES, "Enabled"),
            description=self.description(spec.get("description")),
            feed_type=self.choice(spec, "feedType", FEED_TYPES, "Custom"),
            match_subdomains=self.boolean(spec.get("matchSubdomains"), "spec.matchSubdomains"),
            labels=self.labels(metadata.get("labels")),
            severity=self.severity(spec.get("severity")),
        )
        if spec.get("pull") is None and allow_push:
            return FeedSpec(**common)  # Calico's push feed: `dnswatch feeds push` brings its set
        if spec.get("pull") is None:
            raise self.fail("spec.pull", "required (a feed with no pull is a push feed, which only the "
                                         "collector serves)")
        pull = self.mapping(spec.get("pull"), "spec.pull", required=True)
        self.known(pull, "spec.pull", ("period", "http", "taxii"))
        if "http" in pull and "taxii" in pull:
            raise self.fail("spec.pull", "set either http or taxii, not both")
        common["period_seconds"] = self.period(pull.get("period"))
        if "taxii" in pull:
            return self.taxii(self.mapping(pull["taxii"], "spec.pull.taxii", required=True), common)
        http = self.mapping(pull.get("http"), "spec.pull.http", required=True)
        self.known(http, "spec.pull.http", ("url", "headers", "format"))
        return FeedSpec(
            url=self.url(http.get("url"), allow_file_urls),
            headers=self.headers(http.get("headers")),
            format=self.format(http.get("format")),
            **common,
        )

    def taxii(self, taxii: dict, common: dict) -> FeedSpec:
        where = "spec.pull.taxii"
        self.known(taxii, where, ("url", "collection", "auth"))
        collection = taxii.get("collection")
        if collection is None or collection == "":
            raise self.fail(f"{where}.collection", "required")
        collection = self.string(collection, f"{where}.collection")
        auth = self.mapping(taxii.get("auth"), f"{where}.auth")
        self.known(auth, f"{where}.auth", ("headers",))
        return FeedSpec(
            url=self.url(taxii.get("url"), allow_file_urls=False, field_path=f"{where}.url"),
            headers=self.headers(auth.get("headers"), f"{where}.auth.headers"),
            format=StixFormat(),
            taxii=TaxiiSource(collection),
            **common,
        )

    # -- helpers for shapes

    def mapping(self, value: Any, field_path: str, required: bool = False) -> dict:
        if value is None:
            if required:
                raise self.fail(field_path, "required")
            return {}
        if not isinstance(value, dict):
            raise self.fail(field_path, f"expected an object, got {_type(value)}")
        return value

    def known(self, obj: dict, field_path: str, allowed: tuple[str, ...]) -> None:
        for key in obj:
            if key not in allowed:
                raise self.fail(f"{field_path}.{key}", f"unknown field (known: {', '.join(allowed)})")

    def string(self, value: Any, field_path: str) -> str:
        if not isinstance(value, str):
            raise self.fail(field_path, f"expected a string, got {_type(value)}")
        return value

    def boolean(self, value: Any, field_path: str) -> bool:
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.fail(field_path, f"expected true or false, got {_show(value)}")
        return value

    def choice(self, spec: dict, key: str, allowed: tuple[str, ...], default: str) -> str:
        value = spec.get(key)
        if value is None:
            return default
        if value not in allowed:
            raise self.fail(f"spec.{key}", f"{_show(value)} is not one of {', '.join(allowed)}")
        return value

    # -- fields

    def description(self, value: Any) -> str:
        if value is None:
            return ""
        text = self.string(value, "spec.description")
        if len(text) > MAX_DESCRIPTION_CHARS:
            raise self.fail("spec.description", f"{len(text)} characters, more than {MAX_DESCRIPTION_CHARS}")
        return text

    def labels(self, value: Any) -> tuple[tuple[str, str], ...]:
        # The API server checks the labels of what it serves; a file's are checked here alike.
        labels = self.mapping(value, "metadata.labels")
        for key, text in labels.items():
            where = f"metadata.labels.{key}"
            prefix, _, name = key.rpartition("/") if isinstance(key, str) else ("", "", "")
            if not name or len(name) > MAX_LABEL_CHARS or not _LABEL_VALUE.fullmatch(name):
                raise self.fail(where, f"{_show(key)} is no label name: at most {MAX_LABEL_CHARS} letters, digits, "
                                       "'-', '_' or '.', beginning and ending with a letter or digit")
            if prefix and (len(prefix) > 253 or not _NAME.fullmatch(prefix)):
                raise self.fail(where, f"the prefix {_show(prefix)} is not a DNS subdomain")
            if not isinstance(text, str):
                raise self.fail(where, f"expected a string, got {_type(text)}")
            if len(text) > MAX_LABEL_CHARS or (text and not _LABEL_VALUE.fullmatch(text)):
                raise self.fail(where, f"{_show(text)} is no label value: at most {MAX_LABEL_CHARS} letters, "
                                       "digits, '-', '_' or '.', beginning and ending with a letter or digit")
        return tuple(sorted(labels.items()))

    def severity(self, value: Any) -> int:
        if value is None:
            return DEFAULT_SEVERITY
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEVERITY:
            raise self.fail("spec.severity", f"{_show(value)} is not a whole number from 0 to {MAX_SEVERITY}")
        return value

    def period(self, value: Any) -> float:
        if value is None:
            return DEFAULT_PERIOD_SECONDS
        if not isinstance(value, str):
            raise self.fail("spec.pull.period", f"{_show(value)} is not a Go duration string such as 24h or 30m")
        try:
            seconds = parse_go_duration(value)
        except ValueError as error:
            raise self.fail("spec.pull.period", str(error)) from None
        if seconds < MIN_PERIOD_SECONDS:
            raise self.fail("spec.pull.period", f"{_show(value)} is shorter than the minimum 5m")
        return seconds

    def url(self, value: Any, allow_file_urls: bool, field_path: str = "spec.pull.http.url") -> str:
        if value is None or value == "":
            raise self.fail(field_path, "required")
        url = self.string(value, field_path)
        schemes = ("http", "https", "file") if allow_file_urls else ("http", "https")
        if any(char.isspace() for char in url):
            raise self.fail(field_path, f"{_show(url)} contains white space")
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a port that is no number or out of range
        except ValueError as error:
            raise self.fail(field_path, f"{_show(url)} is not a valid URL: {error}") from None
        if parts.scheme not in schemes:
            raise self.fail(field_path, f"{_show(url)} must be {' or '.join(schemes)}")
        if parts.scheme == "file":
            if not (parts.path or parts.netloc):
                raise self.fail(field_path, f"{_show(url)} names no file")
        elif not parts.hostname:
            raise self.fail(field_path, f"{_show(url)} has no host")
        return url

    def headers(self, value: Any, field_path: str = "spec.pull.http.headers") -> tuple[HeaderSpec, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.fail(field_path, f"expected a list, got {_type(value)}")
        return tuple(self.header(item, f"{field_path}[{index}]") for index, item in enumerate(value))

    def header(self, item: Any, where: str) -> HeaderSpec:
        item = self.mapping(item, where, required=True)
        self.known(item, where, ("name", "value", "valueFrom"))
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise self.fail(f"{where}.name", "required")
        if not _HEADER_NAME.fullmatch(name):
            raise self.fail(f"{where}.name", f"{name!r} is not a valid HTTP header name")
        value = item.get("value")
        if value is not None:
            value = self.string(value, f"{where}.value")
            if "\r" in value or "\n" in value:
                raise self.fail(f"{where}.value", "must not contain line breaks")  # the value itself stays unsaid
        has_value = value not in (None, "")  # Go's omitempty: an empty value is no value, as in Calico
        source = item.get("valueFrom")
        if has_value and source is not None:
            raise self.fail(where, "set either value or valueFrom, not both")
        if not has_value and source is None:
            raise self.fail(where, "set value or valueFrom")
        if source is None:
            return HeaderSpec(name=name, value=value)
        source = self.mapping(source, f"{where}.valueFrom", required=True)
        self.known(source, f"{where}.valueFrom", ("configMapKeyRef", "secretKeyRef"))
        if ("configMapKeyRef" in source) == ("secretKeyRef" in source):
            raise self.fail(f"{where}.valueFrom", "set exactly one of configMapKeyRef or secretKeyRef")
        key = "configMapKeyRef" if "configMapKeyRef" in source else "secretKeyRef"
        ref_where = f"{where}.valueFrom.{key}"
        ref = self.mapping(source[key], ref_where, required=True)
        self.known(ref, ref_where, ("name", "key", "optional"))
        for part in ("name", "key"):
            if not isinstance(ref.get(part), str) or not ref[part]:
                raise self.fail(f"{ref_where}.{part}", "required")
        key_ref = KeyRef(ref["name"], ref["key"])
        optional = self.boolean(ref.get("optional"), f"{ref_where}.optional")
        if key == "configMapKeyRef":
            return HeaderSpec(name=name, config_map_ref=key_ref, optional=optional)
        return HeaderSpec(name=name, secret_ref=key_ref, optional=optional)

    def format(self, value: Any) -> FeedFormat:
        where = "spec.pull.http.format"
        fmt = self.mapping(value, where)
        self.known(fmt, where, _FORMATS)
        if len(fmt) > 1:
            raise self.fail(where, f"set at most one of {', '.join(_FORMATS)} (found {', '.join(fmt)})")
        if "json" in fmt:
            return self.json_format(self.mapping(fmt["json"], f"{where}.json", required=True), f"{where}.json")
        if "csv" in fmt:
            return self.csv_format(self.mapping(fmt["csv"], f"{where}.csv", required=True), f"{where}.csv")
        if "jsonLines" in fmt:
            where = f"{where}.jsonLines"
            return self.json_lines_format(self.mapping(fmt["jsonLines"], where, required=True), where)
        for name in ("newlineDelimited", "misp", "stix"):  # the formats without options
            if fmt.get(name) not in (None, {}):
                raise self.fail(f"{where}.{name}", "expected an empty object {}")
        if "misp" in fmt:
            return MispFormat()
        if "stix" in fmt:
            return StixFormat()
        return NEWLINE_DELIMITED

    def json_format(self, obj: dict, where: str) -> JsonFormat:
        self.known(obj, where, ("path",))
        path = obj.get("path")
        if not isinstance(path, str) or not path:
            raise self.fail(f"{where}.path", "required")
        try:
            compile_json_path(path)
        except JsonPathError as error:
            raise self.fail(f"{where}.path", str(error)) from None
        return JsonFormat(path)

    def json_lines_format(self, obj: dict, where: str) -> JsonLinesFormat:
        self.known(obj, where, ("key",))
        key = obj.get("key")
        if key is None or key == "":
            raise self.fail(f"{where}.key", "required")
        return JsonLinesFormat(self.string(key, f"{where}.key"))

    def csv_format(self, obj: dict, where: str) -> CsvFormat:
        known = ("fieldNum", "fieldName", "header", "columnDelimiter", "commentDelimiter", "recordSize",
                 "disableRecordSizeValidation")  # fmt: skip
        self.known(obj, where, known)
        field_num, field_name = obj.get("fieldNum"), obj.get("fieldName")
        header = self.boolean(obj.get("header"), f"{where}.header")
        if field_num is None and field_name is None:
            raise self.fail(where, "set fieldNum or fieldName")
        if field_num is not None and field_name is not None:
            raise self.fail(where, "fieldNum and fieldName are mutually exclusive")
        if field_num is not None and (isinstance(field_num, bool) or not isinstance(field_num, int) or field_num < 0):
            raise self.fail(f"{where}.fieldNum", f"{_show(field_num)} is not a column number (0 or more)")
        if field_name is not None:
            if not isinstance(field_name, str) or not field_name:
                raise self.fail(f"{where}.fieldName", "expected a column name")
            if not header:
                raise self.fail(f"{where}.fieldName", "needs header: true")
        column = self.delimiter(obj.get("columnDelimiter"), f"{where}.columnDelimiter") or ","
        comment = self.delimiter(obj.get("commentDelimiter"), f"{where}.commentDelimiter")
        if comment is not None and comment == column:
            raise self.fail(f"{where}.commentDelimiter", "must differ from the column delimiter")
        record_size = obj.get("recordSize")
        if record_size is not None and (
            isinstance(record_size, bool) or not isinstance(record_size, int) or record_size <= 0
        ):
            raise self.fail(f"{where}.recordSize", f"{_show(record_size)} is not a positive number of fields")
        disable = self.boolean(obj.get("disableRecordSizeValidation"), f"{where}.disableRecordSizeValidation")
        if disable and record_size is not None:
            raise self.fail(where, "recordSize and disableRecordSizeValidation are mutually exclusive")
        return CsvFormat(
            field_num=field_num,
            field_name=field_name,
            header=header,
            column_delimiter=column,
            comment_delimiter=comment,
            record_size=record_size,
            disable_record_size_validation=disable,
        )

    def delimiter(self, value: Any, field_path: str) -> str | None:
        if value is None or value == "":
            return None
        text = self.string(value, field_path)
        if len(text) != 1:
            raise self.fail(field_path, f"{_show(text)} must be a single character")
        if text in "\"\r\n" or text == "\ufffd":
            raise self.fail(field_path, f"{_show(text)} cannot be a delimiter")
        return text


def _type(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "nothing"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__
    )


def _show(value: Any) -> str:
    # JSON-style quoting, as kubectl prints values ("1m", not '1m'), control characters escaped.
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return repr(value)
