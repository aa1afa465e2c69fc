"""Pull policy (docs/feeds.md): which failures are retried and after how long, when a feed is pulled next,
how a body is unpacked as it arrives within its size limit, which bodies are refused as suspect, and header
values that cannot leak.

Pure: the shell (`collector.shell.puller`) classifies what httpx did into a `PullFailure`, asks this module
what to do, and does it. Randomness comes in as a `random.Random`, so a seeded one replays the same delays.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone

from dnswatch.feeds.formats import FeedFormat, parse_feed_body
from dnswatch.feeds.lines import DEFAULT_MAX_BYTES, FeedError, ParsedFeed
from dnswatch.feeds.status import PARSE_FAILED, PULL_FAILED, SUSPECT_BODY, FeedStatus, after_failure, after_success
from dnswatch.feeds.status import entries_sha256
from dnswatch.feeds.outcomes import FAILED, REFUSED, UNCHANGED, UPDATED

__all__ = [
    "CONNECTION",
    "BodyReader",
    "BodyRefused",
    "BodyVerdict",
    "Validators",
    "judge_body",
    "judge_parsed",
    "HTTP_STATUS",
    "PROTOCOL",
    "TIMEOUT",
    "TOO_LARGE",
    "HeaderRef",
    "PullFailure",
    "RetryPolicy",
    "SchedulePolicy",
    "Secret",
    "SuspectPolicy",
    "header_value_problem",
    "looks_like_html",
    "suspect_reason",
]

# What went wrong with a request, as far as the policy cares.
TIMEOUT = "timeout"
CONNECTION = "connection"
HTTP_STATUS = "http-status"
TOO_LARGE = "too-large"
PROTOCOL = "protocol"  # a malformed response, a redirect loop...: retrying would get the same


@dataclass(frozen=True)
class PullFailure:
    """One failed request, classified."""

    kind: str
    """TIMEOUT, CONNECTION, HTTP_STATUS, TOO_LARGE or PROTOCOL."""
    detail: str
    """What happened, for the error condition: never a header value."""
    status_code: int | None = None
    """The HTTP status, for HTTP_STATUS."""
    condition: str = PULL_FAILED
    """The error condition it raises: PullFailed, or ParseFailed for a body whose gzip cannot be unpacked."""

    @property
    def retryable(self) -> bool:
        """Timeouts, connection errors and 5xx may pass; any other status (401, 404...) will not by retrying."""
        if self.kind in (TIMEOUT, CONNECTION):
            return True
        return self.kind == HTTP_STATUS and self.status_code is not None and 500 <= self.status_code <= 599


@dataclass(frozen=True)
class RetryPolicy:
    """Retries within one pull: exponential backoff with full jitter (AWS's "Exponential Backoff and Jitter")."""

    attempts: int = 4
    """Requests per pull, the first included."""
    base_seconds: float = 1.0
    """The backoff before the first retry is drawn from [0, base); it doubles with each retry."""
    cap_seconds: float = 30.0
    """No backoff is drawn from a range wider than this."""

    def delay(self, retry: int, rng: random.Random) -> float:
        """Seconds to wait before retry number `retry` (1 for the first retry)."""
        return rng.uniform(0.0, min(self.cap_seconds, self.base_seconds * 2.0 ** (retry - 1)))

    def should_retry(self, failure: PullFailure, attempt: int) -> bool:
        """Whether to try again after request number `attempt` (1-based) failed with `failure`."""
        return failure.retryable and attempt < self.attempts


@dataclass(frozen=True)
class SchedulePolicy:
    """When each feed is pulled: its period with jitter, sooner after a failed pull."""

    jitter: float = 0.10
    """Each wait is the nominal one times a factor drawn from [1 - jitter, 1 + jitter], so feeds with the same
    period do not all hit their servers (and the collector) at the same second."""
    failure_base_seconds: float = 60.0
    """After a failed or refused pull the next comes after this, doubling per failure in a row, at most the
    period: a feed that fails at start-up should not wait a day for its first set."""

    def next_pull_delay(self, period_seconds: float, rng: random.Random, failures_in_a_row: int = 0) -> float:
        """Seconds from the end of one pull to the start of the next."""
        nominal = period_seconds
        if failures_in_a_row > 0:
            nominal = min(period_seconds, self.failure_base_seconds * 2.0 ** (failures_in_a_row - 1))
        return nominal * rng.uniform(1.0 - self.jitter, 1.0 + self.jitter)

    def first_pull_delay(
        self, period_seconds: float, last_successful_sync: str | None, now: datetime, rng: random.Random
    ) -> float:
        """Seconds until a feed known from before (a restart, a restored status) is due: none if never synced.

        The jitter is drawn on the whole period but the result never exceeds what is left of it plus that
        jitter, so a restarted collector does not pull every feed at once.
        """
        if not last_successful_sync:
            return 0.0
        try:
            last = datetime.strptime(last_successful_sync, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        except ValueError:
            return 0.0
        if now.tzinfo is None:
            now = now.replace(tzinfo=timezone.utc)
        remaining = period_seconds - (now - last).total_seconds()
        if remaining <= 0:
            return 0.0
        return max(0.0, remaining + period_seconds * rng.uniform(-self.jitter, self.jitter))


# ---------------------------------------------------------------------------------------------- reading bodies

_GZIP_MAGIC = b"\x1f\x8b"
_PIECE_BYTES = 256 * 1024
"""Output of one inflate call at most: a bomb's peak is the limit plus this, not twice the limit (zlib builds a
large output in blocks and joins them, so one call asked for the whole limit briefly holds it twice)."""


class BodyRefused(ValueError):
    """A body that is refused while it arrives: too large at some stage, or not decodable."""

    def __init__(self, failure: PullFailure) -> None:
        super().__init__(failure.detail)
        self.failure = failure


class BodyReader:
    """A response body as it arrives, unpacked as it grows, with the size limit applied at every stage.

    Raw bytes go in (`push`), the feed body comes out (`finish`). The Content-Encoding (`gzip`, `deflate`) is
    undone, and a body that is itself a gzip file (a `.gz` feed) is unpacked too, as `decode_body` would; the
    compressed bytes, each decoded stage and the unpacked body must each stay within `limit`. Nothing is
    held but the output so far and one piece of at most 256 kB, so a gzip bomb is refused at about `limit`
    bytes of memory.

    Raises BodyRefused: TOO_LARGE past the limit, PROTOCOL for an unsupported or broken Content-Encoding,
    and a ParseFailed one for a gzip file that is corrupt or truncated.
    """

    def __init__(self, limit: int, content_encoding: str | None = None) -> None:
        self.limit = limit
        encoding = (content_encoding or "identity").strip().lower()
        if encoding in ("gzip", "x-gzip"):
            self._transfer: _Inflater | None = _Inflater(wbits=31, multi_member=True)
        elif encoding == "deflate":
            self._transfer = _Inflater(wbits=15, multi_member=False, raw_fallback=True)
        elif encoding in ("identity", ""):
            self._transfer = None
        else:
            raise BodyRefused(PullFailure(PROTOCOL, f"the body's Content-Encoding {encoding!r} is not supported"))
        self._encoded = 0  # raw bytes received
        self._decoded = 0  # after the Content-Encoding
        self._head = b""  # the first bytes, until they tell whether the body is a gzip file
        self._gunzip: _Inflater | None = None
        self._sniffed = False
        self._chunks: list[bytes] = []
        self._size = 0

    def push(self, raw: bytes) -> None:
        """Take the next bytes of the response as sent."""
        self._encoded += len(raw)
        if self._encoded > self.limit:
            raise BodyRefused(PullFailure(TOO_LARGE, f"the body is over the limit of {self.limit} bytes"))
        if self._transfer is None:
            self._decoded_piece(raw)
            return
        try:
            for piece in self._transfer.push(raw):
                self._decoded_piece(piece)
        except zlib.error as error:
            raise BodyRefused(PullFailure(PROTOCOL, f"the body cannot be decoded: {error}")) from None

    def finish(self) -> bytes:
        """The whole body, once the response has ended."""
        if self._transfer is not None and not self._transfer.complete:
            raise BodyRefused(PullFailure(PROTOCOL, "the body ends in the middle of its Content-Encoding"))
        if not self._sniffed:  # a body of fewer than two bytes
            self._sniffed = True
            if self._head:
                self._keep(self._head, "the body is over the limit of {} bytes")
            self._head = b""
        if self._gunzip is not None and not self._gunzip.complete:
            raise BodyRefused(PullFailure(PROTOCOL, "the gzip body is truncated", condition=PARSE_FAILED))
        body = b"".join(self._chunks)
        self._chunks = []
        return body

    def _decoded_piece(self, piece: bytes) -> None:
        self._decoded += len(piece)
        if self._decoded > self.limit:
            raise BodyRefused(PullFailure(TOO_LARGE, f"the body is over the limit of {self.limit} bytes"))
        if not self._sniffed:
            self._head += piece
            if len(self._head) < len(_GZIP_MAGIC):
                return
            piece, self._head, self._sniffed = self._head, b"", True
            if piece[:2] == _GZIP_MAGIC:
                self._gunzip = _Inflater(wbits=31, multi_member=True)
        if self._gunzip is None:
            self._keep(piece, "the body is over the limit of {} bytes")
            return
        try:
            for unpacked in self._gunzip.push(piece):
                self._keep(unpacked, "the gzip body expands beyond the limit of {} bytes")
        except zlib.error as error:
            raise BodyRefused(PullFailure(PROTOCOL, f"the gzip body is corrupt: {error}",
                                          condition=PARSE_FAILED)) from None

    def _keep(self, piece: bytes, too_large: str) -> None:
        if self._size + len(piece) > self.limit:
            self._chunks = []  # refused: the memory goes at once, not when the reader does
            raise BodyRefused(PullFailure(TOO_LARGE, too_large.format(self.limit),
                                          condition=PARSE_FAILED if self._gunzip is not None else PULL_FAILED))
        self._size += len(piece)
        self._chunks.append(piece)


class _Inflater:
    """zlib, fed piece by piece, giving at most `_PIECE_BYTES` per step; gzip members one after another."""

    def __init__(self, wbits: int, multi_member: bool, raw_fallback: bool = False) -> None:
        self._wbits = wbits
        self._multi = multi_member
        self._raw_fallback = raw_fallback  # `deflate` is sometimes sent raw, without its zlib header
        self._inflater: zlib._Decompress | None = zlib.decompressobj(wbits)
        self._pending = b""
        self._started = False
        self._ended = False
        self.complete = False
        """A whole stream (or member) has ended: the body may end here."""

    def push(self, data: bytes):
        data, self._pending = self._pending + data, b""
        while not self._ended:
            if self._inflater is None:  # between gzip members
                if len(data) < len(_GZIP_MAGIC):
                    self._pending = data
                    return
                if data[:2] != _GZIP_MAGIC:
                    self._ended = True  # trailing bytes that are no gzip member are ignored, as gzip(1) does
                    return
                self._inflater = zlib.decompressobj(self._wbits)
                self.complete = False
            if self._raw_fallback and not self._started and len(data) < 2:
                self._pending = data  # the zlib header is two bytes: only then is a raw stream told apart
                return
            try:
                out = self._inflater.decompress(data, _PIECE_BYTES)
            except zlib.error:
                if self._started or not self._raw_fallback:
                    raise
                self._raw_fallback = False
                self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                continue
            self._started = True
            data = self._inflater.unconsumed_tail
            if out:
                yield out
            if self._inflater.eof:
                self.complete = True
                data = self._inflater.unused_data
                self._inflater = None
                if not self._multi:
                    self._ended = True
                continue
            if not data and len(out) < _PIECE_BYTES:
                return  # all input taken and no output held back: wait for more


# ---------------------------------------------------------------------------------------------- suspect bodies


@dataclass(frozen=True)
class SuspectPolicy:
    """Bodies refused as suspect, keeping the last good set in force."""

    empty_after_at_least: int = 100
    """An empty set is refused when the set in force has at least this many entries (an error page or a
    truncated download, not a feed that was emptied on purpose)."""
    max_shrink: float = 0.90
    """A set with fewer than (1 - max_shrink) times the entries in force is refused."""


_HTML_TYPES = ("text/html", "application/xhtml+xml")
_HTML_STARTS = (b"<!doctype html", b"<html")
_HEAD_BYTES = 512


def looks_like_html(content_type: str | None, body: bytes) -> bool:
    """Whether a 200 response is a web page (a login or error page, a captive portal) rather than a feed.

    By its Content-Type, or by how the body (gunzipped if it is gzip) starts, after a BOM and white space.
    """
    if content_type and content_type.split(";", 1)[0].strip().lower() in _HTML_TYPES:
        return True
    head = body[: _HEAD_BYTES * 4]
    if head[:2] == b"\x1f\x8b":
        try:
            head = zlib.decompressobj(wbits=31).decompress(head, _HEAD_BYTES)
        except zlib.error:
            return False
    head = head.removeprefix(b"\xef\xbb\xbf").lstrip()[:_HEAD_BYTES].lower()
    return head.startswith(_HTML_STARTS)


def suspect_reason(
    entries: int, entries_in_force: int | None, policy: SuspectPolicy = SuspectPolicy()
) -> str | None:
    """Why a parsed set of `entries` must not replace one of `entries_in_force` (None: no set yet), or None."""
    if entries_in_force is None or entries_in_force == 0:
        return None
    if entries == 0:
        if entries_in_force >= policy.empty_after_at_least:
            return f"the body has no entries while the set in force has {entries_in_force}"
        return None
    if entries < entries_in_force * (1.0 - policy.max_shrink):
        shrink = 100.0 * (entries_in_force - entries) / entries_in_force
        return (
            f"the set would shrink by {shrink:.1f} % (from {entries_in_force} to {entries} entries), "
            f"more than the {100.0 * policy.max_shrink:.0f} % allowed"
        )
    return None


# ---------------------------------------------------------------------------------------------- header values


@dataclass(frozen=True)
class HeaderRef:
    """Where a header value is read from: a key of a ConfigMap or Secret in the collector's namespace."""

    kind: str
    """`ConfigMap` or `Secret`."""
    name: str
    """The object's name."""
    key: str
    """The key in its data."""

    def __str__(self) -> str:
        return f"{self.kind} {self.name} key {self.key}"


class Secret:
    """A header value. Its text leaves only through `reveal()`, called where the request is built.

    repr, str and format all give `***`, so no log line, exception message, dataclass repr or f-string can
    carry the value by accident; it is not picklable either.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self) -> tuple:
        raise TypeError("a Secret cannot be pickled")


def header_value_problem(value: str) -> str | None:
    """Why `value` cannot be sent as a header value, without quoting it (it may be a secret), or None.

    Surrounding white space is no problem: HTTP ignores it, and the shell strips it, since a Secret made with
    `kubectl create secret --from-file` usually ends with the file's newline.
    """
    if any(char in value for char in "\r\n\0"):
        return "contains a line break or NUL"
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return "has characters outside ISO-8859-1"
    return None


@dataclass(frozen=True)
class Validators:
    """The cache validators of the last good body, sent back as If-None-Match / If-Modified-Since."""

    etag: str | None = None
    """The `ETag` response header."""
    last_modified: str | None = None
    """The `Last-Modified` response header, as sent (an HTTP date)."""

    def request_headers(self) -> dict[str, str]:
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


@dataclass(frozen=True)
class BodyVerdict:
    """What a 200 body does to a feed: its outcome, the next status and, for UPDATED, the new set."""

    outcome: str
    """UPDATED, UNCHANGED, REFUSED or FAILED."""
    status: FeedStatus
    """The feed's status after this body."""
    parsed: ParsedFeed | None = None
    """The new set, for UPDATED only."""
    message: str = ""
    """Why, for REFUSED and FAILED (the error condition's message)."""


def judge_body(
    status: FeedStatus,
    body: bytes,
    content_type: str | None,
    *,
    content: str,
    fmt: FeedFormat,
    now: datetime,
    compare_with_set_in_force: bool = True,
    max_bytes: int = DEFAULT_MAX_BYTES,
    policy: SuspectPolicy = SuspectPolicy(),
) -> BodyVerdict:
    """Parse and check a 200 body against the feed's `status` (the set in force): the whole decision, no I/O.

    `compare_with_set_in_force=False` skips the empty and shrink checks, for the first pull after the feed's
    URL, format or content changed: a different feed is expected to differ.
    """
    if looks_like_html(content_type, body):
        message = f"the server answered 200 with a web page ({content_type or 'no Content-Type'}), not a feed"
        return BodyVerdict(REFUSED, after_failure(status, SUSPECT_BODY, message, now), message=message)
    try:
        parsed = parse_feed_body(body, content, fmt, max_bytes, now)
    except FeedError as error:
        message = f"the body cannot be read: {error}"
        return BodyVerdict(FAILED, after_failure(status, PARSE_FAILED, message, now), message=message)
    return judge_parsed(status, parsed, now=now, compare_with_set_in_force=compare_with_set_in_force, policy=policy)


def judge_parsed(
    status: FeedStatus,
    parsed: ParsedFeed,
    *,
    now: datetime,
    compare_with_set_in_force: bool = True,
    policy: SuspectPolicy = SuspectPolicy(),
) -> BodyVerdict:
    """What a parsed set does to a feed (`judge_body` once the body is read, or a TAXII collection's
    indicators): refused as suspect, UNCHANGED, or UPDATED."""
    in_force = status.entries if status.version > 0 and compare_with_set_in_force else None
    reason = suspect_reason(len(parsed.entries), in_force, policy)
    if reason is not None:
        message = f"refused, the last good set stays: {reason}"
        return BodyVerdict(REFUSED, after_failure(status, SUSPECT_BODY, message, now), message=message)
    sha = entries_sha256(parsed.entries)
    new_status = after_success(status, parsed, now, sha)
    if sha == status.sha256 and status.version > 0:
        return BodyVerdict(UNCHANGED, new_status)
    return BodyVerdict(UPDATED, new_status, parsed)
