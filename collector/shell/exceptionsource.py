"""AlertExceptions from the Kubernetes API (`alertexceptions.dnswatch.dev`): list, then watch, for ever, handed
to the ExceptionKeeper; each object's status says whether it is active and why it is not applied.

The loop is the one every list-and-watch here runs (dnswatch/listwatch.py). The keeper validates what it is
given; the status written back (`active`, `endsAt`, `errorConditions`) goes through the status subresource
and only when it differs from the object's, so our own writes, echoed back as MODIFIED, write nothing again.

    source = AlertExceptionSource(api_client, keeper)
    task = asyncio.create_task(source.follow())
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import threading
from dataclasses import dataclass, field

from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from collector.core.watchloop import Backoff
from collector.shell.exceptionkeeper import ExceptionKeeper
from dnswatch.kubewatch import WatchEvent, WatchPosition
from dnswatch.listwatch import ListWatch

__all__ = ["AlertExceptionSource", "ExceptionSourceSettings"]

log = logging.getLogger(__name__)

_HINTS = {
    404: " (is the AlertException CRD installed? kubectl apply -f deploy/base/crd-alertexception.yaml)",
    403: " (the collector's ServiceAccount needs list and watch on alertexceptions.dnswatch.dev)",
}


@dataclass(frozen=True)
class ExceptionSourceSettings:
    group: str = "dnswatch.dev"
    version: str = "v1"
    plural: str = "alertexceptions"
    watch_timeout_seconds: int = 300
    request_timeout_seconds: float = 30.0
    backoff: Backoff = field(default_factory=Backoff)


class AlertExceptionSource:
    """Lists and watches AlertExceptions into `keeper`, from a thread, until `close()`."""

    def __init__(self, api_client: client.ApiClient, keeper: ExceptionKeeper,
                 settings: ExceptionSourceSettings | None = None) -> None:
        self.settings = settings or ExceptionSourceSettings()
        self._custom = client.CustomObjectsApi(api_client)
        self._keeper = keeper
        self._closed = threading.Event()
        self._watch: watch.Watch | None = None
        self._watch_lock = threading.Lock()
        self._position = WatchPosition()
        self._rng = random.Random()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._specs: dict[str, object] = {}  # the spec last applied, by name (on the event loop)

    async def follow(self) -> None:
        """Run the loop in a thread until cancelled (then closed)."""
        self._loop = asyncio.get_running_loop()
        thread = threading.Thread(target=self.run, name="alertexception-watch", daemon=True)
        thread.start()
        try:
            await asyncio.to_thread(thread.join)
        finally:
            self.close()

    def run(self) -> None:
        def watch_once() -> bool:
            self._follow()
            return True

        ListWatch("AlertException watch", self._position, self._relist, watch_once, self._closed.is_set,
                  self._back_off, log, _HINTS).run()

    def close(self) -> None:
        self._closed.set()
        with self._watch_lock:
            if self._watch is not None:
                self._watch.stop()

    # -- on the thread

    def _relist(self) -> None:
        s = self.settings
        listing = self._custom.list_cluster_custom_object(s.group, s.version, s.plural,
                                                          _request_timeout=s.request_timeout_seconds)
        items = [item for item in listing.get("items") or [] if _name(item)]
        self._on_loop(self._replace, {_name(item): item for item in items})
        self._position.listed(listing)

    def _follow(self) -> None:
        s = self.settings
        follower = watch.Watch()
        with self._watch_lock:
            if self._closed.is_set():
                return
            self._watch = follower
        try:
            for event in follower.stream(
                    self._custom.list_cluster_custom_object, s.group, s.version, s.plural,
                    resource_version=self._position.resource_version, timeout_seconds=s.watch_timeout_seconds,
                    allow_watch_bookmarks=True,
                    _request_timeout=(s.request_timeout_seconds, s.watch_timeout_seconds + s.request_timeout_seconds)):
                obj = event["raw_object"]
                kind, name = event["type"], _name(obj)
                if kind in ("ADDED", "MODIFIED") and name:
                    self._on_loop(self._upsert, name, obj)
                elif kind == "DELETED" and name:
                    self._on_loop(self._delete, name)
                self._position.handled(WatchEvent(kind, obj))
        finally:
            with self._watch_lock:
                self._watch = None

    def _on_loop(self, function, *args) -> None:
        if self._loop is None:
            function(*args)
            return
        try:
            self._loop.call_soon_threadsafe(function, *args)
        except RuntimeError:  # the event loop is closed
            self._closed.set()

    def _back_off(self, failures: int, why: str) -> None:
        if self._closed.is_set():
            return
        delay = self.settings.backoff.delay(failures, self._rng)
        log.warning("AlertException watch: %s; retrying in %.1fs (attempt %d)", why, delay, failures + 1)
        self._closed.wait(delay)

    # -- on the event loop

    def _replace(self, items: dict[str, dict]) -> None:
        self._specs = {name: item.get("spec") for name, item in items.items()}
        self._keeper.replace(items)
        for item in items.values():
            self._report(item)

    def _upsert(self, name: str, obj: dict) -> None:
        # Our own status writes come back as MODIFIED with the spec unchanged: nothing to apply again.
        if name not in self._specs or self._specs[name] != obj.get("spec"):
            self._specs[name] = obj.get("spec")
            self._keeper.upsert(name, obj)
        self._report(obj)

    def _delete(self, name: str) -> None:
        self._specs.pop(name, None)
        self._keeper.delete(name)

    def _report(self, obj: dict) -> None:
        exception = self._keeper.get(_name(obj))
        if exception is None:
            return
        shown = exception.to_dict(dt.datetime.now(dt.timezone.utc))["status"]
        status = {key: shown[key] for key in ("errorConditions",)}
        if "endsAt" in shown:
            status["endsAt"] = shown["endsAt"]
        current = obj.get("status") or {}
        if {key: current.get(key) for key in status} == status:
            return
        asyncio.get_running_loop().run_in_executor(None, self._patch_status, _name(obj), status)

    def _patch_status(self, name: str, status: dict) -> None:
        s = self.settings
        try:
            self._custom.patch_cluster_custom_object_status(s.group, s.version, s.plural, name, {"status": status},
                                                            _request_timeout=s.request_timeout_seconds)
        except ApiException as error:
            log.warning("AlertException %s: cannot write its status: HTTP %s %s", name, error.status, error.reason)
        except OSError as error:
            log.warning("AlertException %s: cannot write its status: %s", name, error)


def _name(obj: dict) -> str:
    metadata = obj.get("metadata") if isinstance(obj, dict) else None
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return name if isinstance(name, str) else ""
