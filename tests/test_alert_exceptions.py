"""AlertException manifests read and validated (dnswatch/alerting/exceptions.py): never an error raised, the
problems are conditions naming the field, and an exception with any is not applied."""

from __future__ import annotations

import datetime as dt

import pytest

from dnswatch.alerting.exceptions import ExceptionSet, next_boundary, read_alert_exception

T = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)


def manifest(api_version: str = "dnswatch.dev/v1", name: str = "ci", **spec) -> dict:
    return {"apiVersion": api_version, "kind": "AlertException", "metadata": {"name": name},
            "spec": {"selector": "source_namespace = ci", **spec}}


@pytest.mark.parametrize("api_version", ["dnswatch.dev/v1", "projectcalico.org/v3"])
def test_both_api_versions_are_read_as_they_are(api_version):
    exception = read_alert_exception(manifest(api_version, description="on purpose"))
    assert exception.valid and exception.conditions == () and exception.api_version == api_version
    assert exception.active_at(T) and exception.selector.matches({"source_namespace": "ci"})


def test_start_end_and_a_period_from_the_start_or_the_creation():
    timed = read_alert_exception(manifest(startTime="2026-12-01T00:00:00Z", endTime="2026-12-02T00:00:00Z"))
    assert not timed.active_at(T - dt.timedelta(seconds=1)) and timed.active_at(T)
    assert not timed.active_at(T + dt.timedelta(days=1))
    period = read_alert_exception(manifest(startTime="2026-12-01T00:00:00Z", period="1h30m"))
    assert period.end == T + dt.timedelta(minutes=90)
    created = manifest(period="2h")
    created["metadata"]["creationTimestamp"] = "2026-12-01T00:00:00Z"
    assert read_alert_exception(created).end == T + dt.timedelta(hours=2)
    assert next_boundary([timed, period], T) == T + dt.timedelta(minutes=90)


@pytest.mark.parametrize("spec, message", [
    ({"selector": 'source_namespace = "shop" AND type ='}, "selector: position 37: expected a value before the end"),
    ({"selector": ""}, "spec.selector: required"),
    ({"period": "2h"}, "spec.period: counts from startTime or metadata.creationTimestamp; give startTime"),
    ({"startTime": "2026-12-01T00:00:00Z", "endTime": "2026-12-02T00:00:00Z", "period": "1h"},
     "spec.period: give endTime or period, not both"),
    ({"endTime": "tomorrow"}, "spec.endTime: 'tomorrow' is not an RFC 3339 time"),
    ({"startTime": "2026-12-02T00:00:00Z", "endTime": "2026-12-01T00:00:00Z"}, "spec.endTime: is not after startTime"),
    ({"startTime": "2026-12-01T00:00:00Z", "period": "-1h"}, "spec.period: '-1h' is not a positive Go duration"),
    ({"selectors": "x = y"}, "spec.selectors: unknown field"),
    ({"description": "x" * 257}, "spec.description: longer than 256 characters"),
])
def test_a_spec_that_cannot_be_used_is_a_condition_naming_the_field_and_is_not_applied(spec, message):
    exception = read_alert_exception(manifest(**spec))
    assert any(condition.message.startswith(message) for condition in exception.conditions), exception.conditions
    assert not exception.valid and not exception.active_at(T)
    assert not ExceptionSet([exception], T)


def test_the_first_active_exception_by_name_marks_an_event():
    exceptions = [read_alert_exception(manifest(name=name, selector=selector))
                  for name, selector in (("zeta", "source_namespace = ci"), ("alpha", "host = node-1"),
                                         ("late", "source_namespace = ci"))]
    exceptions[2] = read_alert_exception(manifest(name="late", startTime="2027-01-01T00:00:00Z"))
    active = ExceptionSet(exceptions, T)
    assert [e.name for e in active.active] == ["alpha", "zeta"]
    assert active.mark({"source_namespace": "ci", "host": "node-1"}) == "alpha"
    assert active.mark({"source_namespace": "ci", "host": "node-2"}) == "zeta"
    assert active.mark({"source_namespace": "shop"}) == ""
