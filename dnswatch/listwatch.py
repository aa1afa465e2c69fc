"""The one loop of every Kubernetes list-and-watch here: the agent's pod watch and the collector's custom
resources (collector/shell/customresources.py: GlobalThreatFeeds, AlertExceptions, SecurityEventWebhooks).

    list (sync) → watch from the list's resourceVersion (follow) → on 410 Gone list again
                → on any other failure back off (exponential, with jitter) and resume from the position

A dropped connection, a 5xx or a stall resumes the watch from the last resourceVersion seen; 410 Gone, whether
the server says so with an ERROR event or an HTTP status, throws the position away so that the next round
lists again — once at once, and after that with a back-off, so that a server that keeps answering 410 is
waited for like any other failure. A watch that the server ends at once with nothing (a proxy in the way) is
a failure too, so the loop does not hammer the server. The position, the watch lines and the delays are the
pure half (dnswatch/kubewatch.py); each caller does its own list and watch requests and says what it applies.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import urllib3
from kubernetes.client.rest import ApiException

from dnswatch.kubewatch import GONE, WatchError, WatchExpired, WatchPosition

__all__ = ["ListWatch"]


@dataclass
class ListWatch:
    """`run()` lists and watches until `stopped()`; it never raises for the API's faults."""

    what: str
    """How log lines name the stream: `pod watch`, `GlobalThreatFeed watch`."""
    position: WatchPosition
    list_: Callable[[], None]
    """List everything and apply it; sets `position` (WatchPosition.listed)."""
    watch: Callable[[], bool]
    """One watch from `position`, applied event by event (WatchPosition.handled after each); True when the
    server ended it in good order, False when it ended at once with nothing."""
    stopped: Callable[[], bool]
    back_off: Callable[[int, str], None]
    """Wait after the n-th failure in a row, saying why (`HTTP 403 Forbidden (...)`); returns early on stop."""
    log: logging.Logger
    hints: Mapping[int, str] = field(default_factory=dict)
    """What to add to an HTTP status's line: what the user can do about a 403."""

    def run(self) -> None:
        failures = gone_in_a_row = 0
        while not self.stopped():
            try:
                if self.position.must_list:
                    self.list_()
                    failures = 0
                if self.watch():
                    failures = gone_in_a_row = 0  # the server ended the watch after its time: resume at once
                elif not self.stopped():
                    failures += 1
                    self.back_off(failures, "the server ended the watch at once")
            except (WatchExpired, ApiException) as error:
                if self.stopped():
                    break
                if isinstance(error, WatchExpired) or error.status == GONE:
                    self.log.info("%s: resourceVersion %s expired (410 Gone); listing again", self.what,
                                  self.position.resource_version)
                    self.position.expired()
                    gone_in_a_row += 1
                    if gone_in_a_row > 1:
                        self.back_off(gone_in_a_row - 1, "410 Gone again right after a list")
                    continue
                failures += 1
                hint = self.hints.get(error.status, "")
                self.back_off(failures, f"HTTP {error.status} {error.reason or ''}".strip() + hint)
            except (WatchError, urllib3.exceptions.HTTPError, OSError, ValueError) as error:
                if self.stopped():
                    break
                failures += 1
                self.back_off(failures, f"{type(error).__name__}: {error}")
            except Exception:  # noqa: BLE001 - the stream must keep going; the traceback says what to fix
                if self.stopped():
                    break
                self.log.exception("%s: unexpected error", self.what)
                failures += 1
                self.back_off(failures, "unexpected error")
