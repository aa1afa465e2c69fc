"""The HTTP API's event JSON, written around each stored body as it is (never parsed and dumped again: on a
page of a thousand events that would be most of the call's time).

    {"id": "…", "excepted_by": "", "dismissed": false, "dismissed_by": null, "dismissed_at": null,
     "event": {…the event as stored, docs/event.md…}}
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from collector.store.base import StoredEvent

__all__ = ["change_json", "event_id", "stored_json"]


def event_id(body: str) -> str:
    """The `id` of a stored body, which the store wrote with `id` first; parsed in full only otherwise."""
    if body.startswith('{"id":"'):
        end = body.find('"', 7)
        if end > 7 and "\\" not in body[7:end]:
            return body[7:end]
    return str(json.loads(body).get("id", ""))


def _one_line(body: str) -> str:
    # A server-sent event's data ends at a line break: an event stored with one is written again compactly.
    return body if "\n" not in body and "\r" not in body else json.dumps(json.loads(body), separators=(",", ":"))


def stored_json(stored: StoredEvent) -> str:
    """A stored event and its marks (docs/alert-operations.md), as one JSON object."""
    dismissed_at = (None if stored.dismissed_at is None else
                    dt.datetime.fromtimestamp(stored.dismissed_at, dt.timezone.utc).isoformat().replace("+00:00", "Z"))
    return _wrap(event_id(stored.body), stored.excepted_by, stored.dismissed, stored.dismissed_by, dismissed_at,
                 stored.body)


def change_json(change: Any) -> str:
    """A change of the store's sequence (an EventChange or the ingest's EventRow), as `stored_json` writes an
    event; who dismissed it and when are not among the columns a watch reads."""
    body = change.body.decode() if isinstance(change.body, bytes) else change.body
    return _wrap(change.id, change.excepted_by or "", bool(change.dismissed), None, None, _one_line(body))


def _wrap(identifier: str, excepted_by: str, dismissed: bool, dismissed_by: str | None,
          dismissed_at: str | None, body: str) -> str:
    return (f'{{"id":{json.dumps(identifier)},"excepted_by":{json.dumps(excepted_by)},'
            f'"dismissed":{"true" if dismissed else "false"},"dismissed_by":{json.dumps(dismissed_by)},'
            f'"dismissed_at":{json.dumps(dismissed_at)},"event":{body}}}')
