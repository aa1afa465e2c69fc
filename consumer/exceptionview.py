"""`dnswatch exceptions list|get NAME`: the collector's alert exceptions as a table, JSON or YAML (the views
are pure; the command is consumer/cli.py's). See docs/alert-operations.md."""

from __future__ import annotations

from typing import Any

__all__ = ["TABLE_COLUMNS", "exception_record", "table_row"]

TABLE_COLUMNS = ("NAME", "ACTIVE", "EVENTS", "ENDS", "SELECTOR", "PROBLEM")


def exception_record(message: Any) -> dict[str, Any]:
    """An AlertException message as the spec and status `-o json|yaml` print."""
    spec: dict[str, Any] = {"description": message.description, "selector": message.selector}
    for key, value in (("startTime", message.start_time), ("endTime", message.end_time),
                       ("period", message.period)):
        if value:
            spec[key] = value
    status: dict[str, Any] = {"active": message.active, "exceptedEvents": message.excepted_events}
    if message.ends_at:
        status["endsAt"] = message.ends_at
    status["errorConditions"] = [{"type": c.type, "message": c.message} for c in message.error_conditions]
    return {"name": message.name, "spec": spec, "status": status}


def table_row(message: Any) -> tuple[str, ...]:
    problem = message.error_conditions[0].message if message.error_conditions else ""
    return (message.name, "yes" if message.active else "no", str(message.excepted_events), message.ends_at or "-",
            message.selector, problem)
