"""AlertException resources (pure): their validation, when each is active, and which one marks an event.

    apiVersion: dnswatch.dev/v1            # or projectcalico.org/v3, accepted as it is
    kind: AlertException
    metadata: {name: ci-scanner}
    spec:
      description: the CI runner resolves test domains on purpose
      selector: source_namespace = ci AND "record.suspicious_domains" IN {"*.test.example"}
      startTime: 2026-12-01T00:00:00Z      # optional, RFC 3339
      endTime: 2026-12-08T00:00:00Z        # optional; or `period` instead
      period: 168h                         # optional Go duration, counted from startTime, else from
                                           # metadata.creationTimestamp

An exception is active from its start (startTime, else always) until its end (endTime, or the start of its
period plus the period, else never). A spec that cannot be used is never an error raised at the caller: the
exception is kept with its `conditions` (the selector's `position N: ...` among them) and is not applied, so
that `dnswatch exceptions get` and the resource's status say why.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dnswatch.alerting.conditions import API_VERSIONS, ResourceCondition, read_envelope
from dnswatch.feeds.spec import parse_go_duration
from dnswatch.selector import Selector, SelectorError, parse_selector

__all__ = ["API_VERSIONS", "KIND", "AlertException", "ExceptionSet", "ExceptionCondition", "next_boundary",
           "read_alert_exception"]

KIND = "AlertException"

MAX_DESCRIPTION = 256
_SPEC_FIELDS = {"description", "selector", "startTime", "endTime", "period"}


ExceptionCondition = ResourceCondition
"""Why an exception is not applied: `InvalidSelector` or `InvalidSpec`, naming the field."""


@dataclass(frozen=True)
class AlertException:
    """One AlertException as read: its spec and, when it cannot be applied, why (`conditions`)."""

    name: str
    description: str = ""
    selector_text: str = ""
    """The selector as written."""
    selector: Selector | None = field(default=None, compare=False)
    """The parsed selector; None when it does not parse (see `conditions`)."""
    start: dt.datetime | None = None
    """When it starts to apply; None: since ever."""
    end: dt.datetime | None = None
    """When it stops applying (endTime, or the start of its period plus the period); None: never."""
    period: str = ""
    """The `period` as written, if any."""
    conditions: tuple[ExceptionCondition, ...] = ()
    """Why it is not applied; empty when it is valid."""
    api_version: str = API_VERSIONS[0]

    @property
    def valid(self) -> bool:
        return not self.conditions and self.selector is not None

    def active_at(self, now: dt.datetime) -> bool:
        """Whether it excepts events at `now` (a valid exception within its start and end)."""
        return (self.valid and (self.start is None or now >= self.start)
                and (self.end is None or now < self.end))

    def boundaries(self) -> tuple[dt.datetime, ...]:
        """The instants at which it becomes active or inactive."""
        return tuple(moment for moment in (self.start, self.end) if moment is not None)

    def to_dict(self, now: dt.datetime) -> dict[str, Any]:
        """The spec and status as `dnswatch exceptions get -o json` shows them."""
        spec: dict[str, Any] = {"description": self.description, "selector": self.selector_text}
        if self.start is not None:
            spec["startTime"] = _rfc3339(self.start)
        if self.period:
            spec["period"] = self.period
        elif self.end is not None:
            spec["endTime"] = _rfc3339(self.end)
        status: dict[str, Any] = {"active": self.active_at(now),
                                  "errorConditions": [condition.to_dict() for condition in self.conditions]}
        if self.end is not None:
            status["endsAt"] = _rfc3339(self.end)
        return {"name": self.name, "spec": spec, "status": status}


def read_alert_exception(manifest: Mapping[str, Any], name: str | None = None) -> AlertException:
    """The AlertException a manifest says. Never raises for a bad spec: the problems are its `conditions`.

    `name` is the resource's name when the caller knows it already (else metadata.name); a manifest with no
    usable name is reported by its caller, which cannot key it."""
    problems: list[ExceptionCondition] = []

    def invalid(message: str) -> None:
        problems.append(ExceptionCondition("InvalidSpec", f"{message}"))

    metadata = manifest.get("metadata") if isinstance(manifest.get("metadata"), Mapping) else {}
    envelope = read_envelope(manifest, name, _SPEC_FIELDS)
    name, api_version, spec = envelope.name, envelope.api_version, envelope.spec
    for problem in envelope.problems:
        invalid(problem)
    description = spec.get("description", "")
    if not isinstance(description, str):
        invalid("spec.description: must be text")
        description = ""
    elif len(description) > MAX_DESCRIPTION:
        invalid(f"spec.description: longer than {MAX_DESCRIPTION} characters")
    selector_text = spec.get("selector")
    selector = None
    if not isinstance(selector_text, str) or not selector_text.strip():
        invalid("spec.selector: required, a selector such as source_namespace = ci")
        selector_text = selector_text if isinstance(selector_text, str) else ""
    else:
        try:
            selector = parse_selector(selector_text)
        except SelectorError as error:
            problems.append(ExceptionCondition("InvalidSelector", f"selector: {error}"))
    start = _time(spec, "startTime", invalid)
    end = _time(spec, "endTime", invalid)
    period = spec.get("period", "")
    if period:
        if "endTime" in spec:
            invalid("spec.period: give endTime or period, not both")
        try:
            seconds = parse_go_duration(period) if isinstance(period, str) else -1.0
            if seconds <= 0:
                raise ValueError(f"{period!r} is not a positive Go duration such as 24h")
        except ValueError as error:
            invalid(f"spec.period: {error}")
        else:
            origin = start if start is not None else _time(metadata, "creationTimestamp", invalid, "metadata")
            if origin is None:
                invalid("spec.period: counts from startTime or metadata.creationTimestamp; give startTime")
            else:
                end = origin + dt.timedelta(seconds=seconds)
    if start is not None and end is not None and end <= start:
        invalid("spec.endTime: is not after startTime")
    return AlertException(name=name, description=description, selector_text=selector_text, selector=selector,
                          start=start, end=end, period=period if isinstance(period, str) else "",
                          conditions=tuple(problems), api_version=api_version)


def _time(mapping: Mapping[str, Any], key: str, invalid, where: str = "spec") -> dt.datetime | None:
    value = mapping.get(key)
    if value is None:
        return None
    if isinstance(value, dt.datetime):  # YAML reads an unquoted timestamp as one
        return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)
    try:
        if not isinstance(value, str):
            raise ValueError
        parsed = dt.datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError
    except ValueError:
        invalid(f"{where}.{key}: {value!r} is not an RFC 3339 time such as 2026-12-01T00:00:00Z")
        return None
    return parsed


def _rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class ExceptionSet:
    """The exceptions active at one instant, in name order: `mark(event)` names the first that matches it."""

    def __init__(self, exceptions: Iterable[AlertException], now: dt.datetime) -> None:
        self.active = tuple(sorted((e for e in exceptions if e.active_at(now)), key=lambda e: e.name))
        self.key = tuple((e.name, e.selector_text) for e in self.active)
        """What the set marks by: two sets with the same key mark every event the same."""

    def __bool__(self) -> bool:
        return bool(self.active)

    def mark(self, event: Mapping[str, Any]) -> str:
        """The name of the first active exception (by name) whose selector matches `event`; "" for none."""
        for exception in self.active:
            if exception.selector is not None and exception.selector.matches(event):  # type: ignore[arg-type]
                return exception.name
        return ""


def next_boundary(exceptions: Iterable[AlertException], after: dt.datetime) -> dt.datetime | None:
    """The first instant after `after` at which one of the exceptions becomes active or inactive."""
    later = [moment for exception in exceptions if exception.valid for moment in exception.boundaries()
             if moment > after]
    return min(later, default=None)
