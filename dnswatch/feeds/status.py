"""A feed's status (docs/globalthreatfeed.md): what the last pulls did, as pure transitions between statuses.

The same value is written to the GlobalThreatFeed's status subresource, persisted with the last good set, and
served by `dnswatch feeds list|get`; `to_dict` gives the JSON field names of the CRD status for all three.

Error conditions are kept one per type (Calico's `{type, message}`, plus how many times in a row it happened
and when last), so a feed failing every minute shows one PullFailed with a growing count rather than ten copies.
They are grouped by the operation that raises them: a successful pull clears every pull type
(`PULL_CONDITION_TYPES`) and leaves the others (a later piece's, e.g. a failed status write) alone.
Messages never carry a URL's credentials: they are redacted on the way in (`dnswatch.urlredact`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, NamedTuple

from dnswatch.feeds.lines import ParsedFeed
from dnswatch.urlredact import redact_urls

__all__ = [
    "HEADER_RESOLUTION",
    "MAX_ERROR_CONDITIONS",
    "PARSE_FAILED",
    "PULL_CONDITION_TYPES",
    "PULL_FAILED",
    "REJECTED_LINES",
    "SUSPECT_BODY",
    "ErrorCondition",
    "FeedStatus",
    "after_failure",
    "after_not_modified",
    "after_success",
    "entries_sha256",
    "rfc3339",
]

MAX_ERROR_CONDITIONS = 10

PULL_FAILED = "PullFailed"
"""The HTTP request failed: timeout, connection error, an HTTP error status, a body over the size limit."""
HEADER_RESOLUTION = "HeaderResolution"
"""A header's ConfigMap or Secret key could not be read (and the header is not `optional`)."""
SUSPECT_BODY = "SuspectBody"
"""The body was refused (HTML served with 200, empty after a large set, a shrink over 90 %)."""
PARSE_FAILED = "ParseFailed"
"""The body could not be read at all (bad JSON, a broken gzip stream, too large once decompressed)."""
REJECTED_LINES = "RejectedLines"
"""The pull succeeded but some lines could not be an entry; the message quotes a few of them."""

PULL_CONDITION_TYPES = frozenset({PULL_FAILED, HEADER_RESOLUTION, SUSPECT_BODY, PARSE_FAILED, REJECTED_LINES})
"""The condition types a pull raises, hence the ones a successful pull clears."""

_MAX_SAMPLES_IN_MESSAGE = 3
_MAX_MESSAGE_CHARS = 1024


class ErrorCondition(NamedTuple):
    """One entry of `status.errorConditions`: Calico's (type, message), with a count and the last time."""

    type: str
    """`PullFailed`, `SuspectBody`, ...: one condition per type."""
    message: str
    """What went wrong the last time, for people; never a secret."""
    count: int = 1
    """How many times in a row it happened (failures of this type since it was last cleared)."""
    last_time: str | None = None
    """When it last happened, RFC 3339 UTC; None when not known (a condition written by an older collector)."""

    def to_dict(self) -> dict[str, Any]:
        """The CRD's and the JSON output's form: `type`, `message`, `count` and (when known) `lastTime`."""
        shown: dict[str, Any] = {"type": self.type, "message": self.message, "count": self.count}
        if self.last_time is not None:
            shown["lastTime"] = self.last_time
        return shown


@dataclass(frozen=True)
class FeedStatus:
    """The status of one GlobalThreatFeed; every change goes through the transition functions below."""

    last_successful_sync: str | None = None
    """When a pull last succeeded (a 304 counts), RFC 3339 UTC (`2026-11-27T21:53:31Z`); None before the first."""
    error_conditions: tuple[ErrorCondition, ...] = ()
    """At most 10, one per type, the least recently raised first; a successful pull clears the pull's types."""
    entries: int = 0
    """Entries in the set in force (the last good one)."""
    rejected_lines: int = 0
    """Lines of the last good body that could not be an entry."""
    sha256: str = ""
    """`entries_sha256` of the set in force; empty before the first good pull."""
    version: int = 0
    """Bumped by one each time the set in force changes, never otherwise; 0 before the first good pull."""
    rejected_samples: tuple[tuple[int, str], ...] = ()
    """Up to 10 (line number, line) of the rejected lines of the last good body, for `dnswatch feeds get`.
    Not part of `to_dict`: the resource's status (whose fields are Calico's and the CRD's) does not hold them."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON fields (`lastSuccessfulSync`, `errorConditions`, ...), as the CRD status holds them."""
        return {
            "lastSuccessfulSync": self.last_successful_sync,
            "errorConditions": [c.to_dict() for c in self.error_conditions],
            "entries": self.entries,
            "rejectedLines": self.rejected_lines,
            "sha256": self.sha256,
            "version": self.version,
        }

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> FeedStatus:
        """The inverse of `to_dict`; missing fields take their defaults (a CRD status may be partial).

        Raises ValueError naming the field for a value of the wrong type.
        """
        if not isinstance(obj, dict):
            raise ValueError(f"a feed status must be an object, not {type(obj).__name__}")
        conditions: tuple[ErrorCondition, ...] = ()
        for index, item in enumerate(obj.get("errorConditions") or ()):
            if not isinstance(item, dict) or not isinstance(item.get("type"), str):
                raise ValueError(f"errorConditions[{index}]: expected an object with a string type")
            count = item.get("count", 1)
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise ValueError(f"errorConditions[{index}].count: expected a count (1 or more), got {count!r}")
            last_time = _optional_str(item, "lastTime")
            # Older collectors kept one entry per failure, and their messages could quote a URL's credentials:
            # entries of one type fold into one (counts added), and every message is redacted again.
            message = redact_urls(str(item.get("message", "")))
            earlier = next((c for c in conditions if c.type == item["type"]), None)
            if earlier is not None:
                count += earlier.count
                last_time = last_time or earlier.last_time
            conditions = _raised(conditions, ErrorCondition(item["type"], message, count, last_time))
        return cls(
            last_successful_sync=_optional_str(obj, "lastSuccessfulSync"),
            error_conditions=conditions,
            entries=_count(obj, "entries"),
            rejected_lines=_count(obj, "rejectedLines"),
            sha256=_optional_str(obj, "sha256") or "",
            version=_count(obj, "version"),
        )


# ---------------------------------------------------------------------------------------------- transitions


def after_success(status: FeedStatus, parsed: ParsedFeed, now: datetime, sha: str) -> FeedStatus:
    """The status once `parsed` (whose `entries_sha256` is `sha`) is the set in force.

    The version moves only when the set differs from the one in force; the pull types' conditions are
    cleared, and a RejectedLines condition quoting a few rejected lines is added when there were any.
    """
    conditions = _without(status.error_conditions, PULL_CONDITION_TYPES)
    if parsed.rejected:
        conditions = _raised(conditions, ErrorCondition(REJECTED_LINES, _rejected_message(parsed), 1, rfc3339(now)))
    return FeedStatus(
        last_successful_sync=rfc3339(now),
        error_conditions=conditions,
        entries=len(parsed.entries),
        rejected_lines=parsed.rejected,
        sha256=sha,
        version=status.version + (sha != status.sha256),
        rejected_samples=parsed.rejected_samples,
    )


def after_not_modified(status: FeedStatus, now: datetime) -> FeedStatus:
    """The status after a 304: a successful sync that keeps the set in force (and its RejectedLines note)."""
    kept = PULL_CONDITION_TYPES - {REJECTED_LINES}
    return replace(status, last_successful_sync=rfc3339(now), error_conditions=_without(status.error_conditions, kept))


def after_failure(status: FeedStatus, condition_type: str, message: str, now: datetime) -> FeedStatus:
    """The status after a failed or refused pull at `now`; the set in force is kept.

    The condition of that type takes the new message and time and counts one more (a new type starts at 1);
    it becomes the newest, and past 10 types the least recently raised is dropped. The message is redacted
    (`redact_urls`) and cut to 1024 characters.
    """
    earlier = next((c for c in status.error_conditions if c.type == condition_type), None)
    count = earlier.count + 1 if earlier is not None else 1
    condition = ErrorCondition(condition_type, redact_urls(message)[:_MAX_MESSAGE_CHARS], count, rfc3339(now))
    return replace(status, error_conditions=_raised(status.error_conditions, condition))


# ---------------------------------------------------------------------------------------------- helpers


def entries_sha256(entries: tuple[str, ...] | list[str]) -> str:
    """The SHA-256 (hex) of a set: its entries sorted and de-duplicated, each followed by `\\n`, in UTF-8.

    Sorting makes it a digest of the set, not of the feed's line order, so a reordered feed is no new version.
    """
    digest = hashlib.sha256()
    for entry in sorted(set(entries)):
        digest.update(entry.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def rfc3339(now: datetime) -> str:
    """`now` as RFC 3339 UTC to the second (`2026-11-27T21:53:31Z`); a naive datetime is taken as UTC."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    return now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _without(conditions: tuple[ErrorCondition, ...], types: frozenset[str]) -> tuple[ErrorCondition, ...]:
    return tuple(c for c in conditions if c.type not in types)


def _raised(conditions: tuple[ErrorCondition, ...], condition: ErrorCondition) -> tuple[ErrorCondition, ...]:
    """`condition` as the newest, replacing the one of its type."""
    kept = tuple(c for c in conditions if c.type != condition.type)
    return (*kept, condition)[-MAX_ERROR_CONDITIONS:]


def _rejected_message(parsed: ParsedFeed) -> str:
    lines = "line" if parsed.rejected == 1 else "lines"
    samples = ", ".join(f"{number}: {text!r}" for number, text in parsed.rejected_samples[:_MAX_SAMPLES_IN_MESSAGE])
    return f"{parsed.rejected} {lines} could not be an entry" + (f" (e.g. line {samples})" if samples else "")


def _optional_str(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{key}: expected a string, got {type(value).__name__}")
    return value


def _count(obj: dict[str, Any], key: str) -> int:
    value = obj.get(key, 0)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{key}: expected a count (0 or more), got {value!r}")
    return value
