"""Loading feeds from the replay flags: files and GlobalThreatFeed manifests, into a `Matcher`.

The parsing itself is the core's (`dnswatch.feeds.lines`, `feedformats`, `feedspec`): this module only reads
files (or fetches a manifest's URL) and reports what it loaded. Nothing is read past the feed size limit
(`DEFAULT_MAX_BYTES`): a larger file is refused by its size before it is read, and a pipe or a download after
the limit and one byte.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import yaml

from dnswatch.feeds.diagnosis import unusable_reason
from dnswatch.feeds.domainset import DomainSet
from dnswatch.feeds.entrylines import EntryLines
from dnswatch.feeds.formats import NEWLINE_DELIMITED, parse_feed_body
from dnswatch.feeds.lines import DEFAULT_MAX_BYTES, DOMAIN_NAME_SET, ParsedFeed, parse_domain_lines, parse_ip_lines
from dnswatch.feeds.publicsuffixes import refuse_public_suffixes
from dnswatch.feeds.spec import DEFAULT_SEVERITY, FeedSpec, feed_specs_from_yaml_documents
from dnswatch.feeds.ipset import IPSet
from agent.core.scanner import Matcher
from agent.core.sighting import FeedContext
from dnswatch.urlredact import redact_urls, redacted_url
from dnswatch.errors import BadInput


@dataclass(frozen=True)
class LoadedFeed:
    """One feed as the replay uses it, with what its source looked like."""

    name: str
    """The feed's name, as events report it in `record.feeds`."""
    content: str
    """`DomainNameSet` or `IPSet`."""
    source: str
    """Where it came from (a path or URL), for messages."""
    parsed: ParsedFeed
    """Its canonical entries and how many lines were rejected."""
    match_subdomains: bool = False
    """Plain entries cover their subdomains too (`matchSubdomains: true`)."""
    format_kind: str = NEWLINE_DELIMITED.kind
    """`pull.http.format`'s kind: what the body was read as."""
    context: FeedContext = FeedContext()
    """What its matches carry: the body's version, the manifest's labels and severity, the body's lines."""

    @property
    def problem(self) -> str | None:
        """Why the collector would refuse this body as the feed's set, with the likely fix (a warning here)."""
        return unusable_reason(self.parsed, self.content, self.format_kind)


def split_feed_flag(value: str) -> tuple[str, Path]:
    """`NAME=PATH` of `--feed`/`--ip-feed`."""
    name, sep, path = value.partition("=")
    if not sep or not name or not path:
        raise BadInput(f"expected NAME=PATH, got {value!r}")
    return name, Path(path)


def load_feed_file(name: str, path: Path, content: str) -> LoadedFeed:
    body = read_file(path, "feed")
    parse = parse_domain_lines if content == DOMAIN_NAME_SET else parse_ip_lines
    return LoadedFeed(name, content, str(path), _checked(parse(body), content, False),
                      context=local_context(body, content))


def load_manifest(path: Path) -> list[LoadedFeed]:
    """Every enabled GlobalThreatFeed of a YAML file, with its body read from its `file:` or http(s) URL."""
    text = read_file(path, "feed manifest")
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as error:
        raise BadInput(f"{path}: not valid YAML: {str(error).splitlines()[0]}") from error
    try:
        specs = feed_specs_from_yaml_documents(documents, allow_file_urls=True)
    except BadInput as error:
        raise BadInput(f"{path}: {error}") from error
    loaded = []
    for spec in specs:
        if spec.mode == "Disabled":
            continue
        if spec.taxii is not None:
            raise BadInput(f"{path}: feed {spec.name}: a TAXII collection (pull.taxii) is pulled by the collector "
                           f"only; give the agent its objects as a STIX bundle (pull.http with format stix)")
        body = fetch_body(spec, base=path.parent)
        parsed = _checked(parse_feed_body(body, spec.content, spec.format), spec.content, spec.match_subdomains)
        context = local_context(body, spec.content, spec.labels, spec.severity,
                                lines=spec.format.kind == NEWLINE_DELIMITED.kind)
        loaded.append(LoadedFeed(spec.name, spec.content, redacted_url(spec.url), parsed, spec.match_subdomains,
                                 spec.format.kind, context))
    return loaded


def local_context(body: bytes, content: str, labels: tuple[tuple[str, str], ...] = (),
                  severity: int = DEFAULT_SEVERITY, lines: bool = True) -> FeedContext:
    """The context of a feed body read here. Its version is a digest of the bytes, not the file's mtime: the
    same feed gives the same version on every machine and checkout, and a changed one another, whatever a copy
    or `touch` did to the file's times."""
    version = "sha256:" + hashlib.sha256(body).hexdigest()[:12]
    return FeedContext(version, labels, severity, EntryLines.from_body(body, content) if lines else None)


def _checked(parsed: ParsedFeed, content: str, match_subdomains: bool) -> ParsedFeed:
    # As the collector does: an entry covering a public suffix is rejected, not matched.
    return refuse_public_suffixes(parsed, match_subdomains) if content == DOMAIN_NAME_SET else parsed


def fetch_body(spec: FeedSpec, base: Path) -> bytes:
    """A manifest's feed body. `file:` URLs with a relative path are resolved against the manifest's folder."""
    url = urlparse(spec.url)
    if url.scheme == "file":
        raw = unquote(url.netloc + url.path) if url.netloc in ("", ".", "..") else unquote(url.path)
        target = Path(raw)
        return read_file(target if target.is_absolute() else base / target, f"feed {spec.name}")
    import httpx  # only a manifest with an http(s) URL needs it

    shown = redacted_url(spec.url)
    try:
        with httpx.stream("GET", spec.url, timeout=30.0, follow_redirects=True) as response:
            response.raise_for_status()
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > DEFAULT_MAX_BYTES:
                    raise BadInput(f"feed {spec.name}: {shown} sends more than the limit of {DEFAULT_MAX_BYTES} "
                                   f"bytes; split it into several feeds")
                chunks.append(chunk)
    except httpx.HTTPError as error:
        # httpx's message names the URL too: both are shown without the URL's password and query values.
        raise BadInput(f"feed {spec.name}: cannot fetch {shown}: {redact_urls(str(error))}") from error
    return b"".join(chunks)


def read_file(path: Path, what: str, limit: int = DEFAULT_MAX_BYTES) -> bytes:
    """The bytes of `path`, refused (BadInput) past `limit`: by its size before any byte is read when it is a
    regular file, else (a pipe, a device, a file growing meanwhile) once the limit and one byte are read."""
    too_large = f"{what} {path} is larger than the limit of {limit} bytes; split it into several feeds"
    try:
        with path.open("rb") as file:
            info = os.fstat(file.fileno())
            if stat.S_ISREG(info.st_mode) and info.st_size > limit:
                raise BadInput(f"{what} {path} is {info.st_size} bytes, over the limit of {limit} bytes; "
                               f"split it into several feeds")
            body = file.read(limit + 1)
    except OSError as error:
        raise BadInput(f"cannot read {what} {path}: {error.strerror or error}") from error
    if len(body) > limit:
        raise BadInput(too_large)
    return body


def build_matcher(feeds: list[LoadedFeed]) -> Matcher:
    names = [feed.name for feed in feeds]
    duplicated = {name for name in names if names.count(name) > 1}
    if duplicated:
        raise BadInput(f"feed name given twice: {', '.join(sorted(duplicated))}")
    domain_feeds = [
        (feed.name, DomainSet.from_names(feed.parsed.entries, feed.match_subdomains))
        for feed in feeds
        if feed.content == "DomainNameSet"
    ]
    ip_feeds = [(feed.name, IPSet.from_entries(feed.parsed.entries)) for feed in feeds if feed.content == "IPSet"]
    return Matcher(domain_feeds, ip_feeds, contexts={feed.name: feed.context for feed in feeds})
