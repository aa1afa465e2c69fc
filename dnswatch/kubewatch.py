"""The pure half of a Kubernetes list+watch: where to resume, what a watch line says, how long to back off.

A list-then-watch client (kopf's `watching.py` has the same three layers) keeps one position, the
resourceVersion it has seen up to: a list sets it, every event and BOOKMARK moves it on, a dropped connection
resumes from it, and 410 Gone (the server compacted its history past it) throws it away so that the next round
lists again. The loop that does the requests is dnswatch/listwatch.py, used by the agent's pod watch and the
collector's GlobalThreatFeed source; this module only decides. `Backoff` paces every long-lived stream of both
processes."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from dnswatch.errors import DnswatchError

__all__ = ["GONE", "Backoff", "WatchError", "WatchEvent", "WatchExpired", "WatchPosition", "decode_watch_line"]

GONE = 410
"""The HTTP status (and ERROR event `code`) of a resourceVersion the server no longer has."""


class WatchError(DnswatchError):
    """The server ended a watch with an ERROR event other than 410: back off and resume from the position."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"watch error {code}: {message}")
        self.code = code


class WatchExpired(WatchError):
    """410 Gone: the position is too old; list again."""


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One line of a watch stream that is not an ERROR."""

    type: str
    """ADDED, MODIFIED, DELETED or BOOKMARK."""
    object: dict[str, Any]
    """The object as the API sent it (a BOOKMARK's holds only kind, apiVersion and metadata.resourceVersion)."""

    @property
    def resource_version(self) -> str | None:
        return resource_version_of(self.object)


def decode_watch_line(line: str | bytes) -> WatchEvent | None:
    """The event on one line of a watch response; None for a blank line (keep-alive).

    Raises `WatchExpired` for an ERROR event with code 410, `WatchError` for any other ERROR, and ValueError for
    a line that is not a watch event at all (a proxy's garbage: the shell treats it as a broken connection).
    """
    if not line.strip():
        return None
    event = json.loads(line)
    if not isinstance(event, dict) or not isinstance(event.get("type"), str) or not isinstance(event.get("object"), dict):
        raise ValueError(f"not a watch event: {str(line)[:80]!r}")
    obj = event["object"]
    if event["type"] == "ERROR":
        code = obj.get("code")
        message = str(obj.get("message") or obj.get("reason") or "no message")
        if code == GONE:
            raise WatchExpired(GONE, message)
        raise WatchError(code if isinstance(code, int) else 0, message)
    return WatchEvent(event["type"], obj)


def resource_version_of(obj: dict[str, Any]) -> str | None:
    meta = obj.get("metadata")
    rv = meta.get("resourceVersion") if isinstance(meta, dict) else None
    return rv if isinstance(rv, str) and rv else None


@dataclass
class WatchPosition:
    """The resourceVersion a list+watch has seen up to; None means "list first"."""

    resource_version: str | None = None

    @property
    def must_list(self) -> bool:
        return self.resource_version is None

    def listed(self, list_object: dict[str, Any]) -> None:
        """A list answered: watch from its resourceVersion (the whole collection's, in its metadata)."""
        self.resource_version = resource_version_of(list_object)
        if self.resource_version is None:
            raise ValueError("a list without metadata.resourceVersion")

    def handled(self, event: WatchEvent) -> None:
        """Called after the event is applied: a resume must not skip an event a failure interrupted."""
        self.resource_version = event.resource_version or self.resource_version

    def expired(self) -> None:
        """410 Gone: the server has forgotten what came after our position."""
        self.resource_version = None


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter between reconnection attempts of a long-lived stream."""

    initial: float = 0.5
    """Seconds before the first retry."""
    maximum: float = 60.0
    """The delay never grows past this."""
    factor: float = 2.0
    """Each further failure multiplies the delay by this."""
    jitter: float = 0.25
    """The delay is drawn from [d·(1−jitter), d], so many clients that failed together do not retry together."""

    def delay(self, failures: int, rng: random.Random) -> float:
        """Seconds to wait after `failures` consecutive failures (1 for the first)."""
        base = min(self.maximum, self.initial * self.factor ** max(0, failures - 1))
        return base * (1.0 - self.jitter * rng.random())
