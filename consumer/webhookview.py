"""`dnswatch webhooks list|get NAME|test NAME`: the collector's SecurityEventWebhooks as a table, a description,
JSON or YAML (the views are pure; the command is consumer/cli.py's). See docs/webhooks.md.

What the collector sends has its secrets redacted already; nothing here could show one.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TABLE_COLUMNS", "describe", "table_row", "test_line", "test_record", "webhook_record"]

TABLE_COLUMNS = ("NAME", "CONSUMER", "STATE", "DELIVERS", "PENDING", "LAST DELIVERY", "LAST ERROR", "PROBLEM")


def webhook_record(message: Any) -> dict[str, Any]:
    """A SecurityEventWebhook message as `-o json|yaml` print it: the spec as the resource writes it (secrets
    redacted) and the status as the collector writes it to the resource, with its counts since it started."""
    spec = {"consumer": message.consumer, "state": message.state, "description": message.description,
            "query": message.query, "config": [_config_entry(item) for item in message.config]}
    status: dict[str, Any] = {"delivers": message.delivers,
                              "conditions": [{"type": c.type, "message": c.message} for c in message.conditions]}
    for key, value in (("lastDelivery", message.last_delivery), ("lastError", message.last_error),
                       ("lastErrorTime", message.last_error_time)):
        if value:
            status[key] = value
    status.update(pending=message.pending, deadLetters=message.dead_letters, delivered=message.delivered,
                  failed=message.failed)
    return {"name": message.name, "apiVersion": message.api_version, "spec": spec, "status": status}


def _config_entry(item: Any) -> dict[str, Any]:
    if not item.value_from_kind:
        return {"name": item.name, "value": item.value}
    key = "secretKeyRef" if item.value_from_kind == "Secret" else "configMapKeyRef"
    return {"name": item.name, "valueFrom": {key: {"name": item.value_from_name, "key": item.value_from_key}}}


def table_row(message: Any) -> tuple[str, ...]:
    problem = message.conditions[0].message if message.conditions else ""
    return (message.name, message.consumer, message.state, "yes" if message.delivers else "no", str(message.pending),
            message.last_delivery or "-", message.last_error or "-", problem)


def describe(message: Any) -> list[str]:
    """`webhooks get NAME` as a describe-style view: the spec, the config and where each value comes from,
    the status."""
    lines = [f"Name:          {message.name}", f"API version:   {message.api_version}",
             f"Consumer:      {message.consumer}", f"State:         {message.state}",
             f"Delivers:      {'yes' if message.delivers else 'no'}"]
    if message.description:
        lines.append(f"Description:   {message.description}")
    lines.append(f"Query:         {message.query or '(every event)'}")
    lines.append("Config:")
    for item in message.config:
        shown = (f"from {item.value_from_kind} {item.value_from_name} key {item.value_from_key}"
                 if item.value_from_kind else item.value)
        lines.append(f"  {item.name + ':':<13}{shown}")
    lines += ["Status:", f"  Last delivery: {message.last_delivery or '-'}",
              f"  Last error:    {message.last_error or '-'}"
              + (f" (at {message.last_error_time})" if message.last_error_time else ""),
              f"  Pending:       {message.pending}", f"  Dead letters:  {message.dead_letters}",
              f"  Since start:   {message.delivered} delivered, {message.failed} failed"]
    if message.conditions:
        lines.append("Conditions:")
        lines += [f"  {c.type}: {c.message}" for c in message.conditions]
    return lines


def test_record(name: str, message: Any) -> dict[str, Any]:
    """A TestWebhookResponse as `-o json|yaml` print it."""
    return {"name": name, "delivered": message.delivered, "error": message.error, "httpStatus": message.http_status}


def test_line(name: str, message: Any) -> str:
    """A TestWebhookResponse as one line."""
    answer = f" (HTTP {message.http_status})" if message.http_status else ""
    if message.delivered:
        return f"webhook {name}: the sample event was delivered{answer}"
    return f"webhook {name}: the sample event was not delivered{answer}: {message.error or 'no reason given'}"
