"""GlobalThreatFeeds from the Kubernetes API: list, then watch from the resourceVersion, for ever.

The stream is the loop of every list-and-watch here (dnswatch/listwatch.py): list, watch from the list's
resourceVersion, list again after 410 Gone (the server compacted its history), and back off and resume from
the last resourceVersion seen after any other failure. `collector.core.watchloop.FeedTracker` turns lists and events into changes, so a relist or a
resumed watch reports each real change once, and our own status writes (echoed back as MODIFIED) report none.

The `kubernetes` client is blocking; the loop runs in a thread and `changes()` hands its changes to asyncio:

    source = GlobalThreatFeedSource(api_client, KubeSourceSettings(namespace="dnswatch"))
    async with contextlib.aclosing(source.changes()) as changes:
        async for change in changes:          # FeedUpserted / FeedDeleted / FeedInvalid / FeedsSynced
            ...
    await source.write_status("c2", {"entries": 1200, "lastSuccessfulSync": "2026-11-27T21:00:00Z"})
    value = await source.resolve(header_ref)  # a header's ConfigMap or Secret key; None when missing

A refused manifest is reported as `FeedInvalid` and written to the object's status as an `InvalidSpec`
error condition (removed again once the spec is valid); it never stops the loop; `refusals()` lists the ones
refused now. One source watches one group and version (`settings.group`); collector/shell/kubefeeds.py runs
one for ours and one for Calico's.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import random
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol

import urllib3
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from collector.core.watchloop import Backoff, FeedChange, FeedTracker, invalid_spec_status_patch
from dnswatch.feeds.feedinfo import RefusedManifest
from dnswatch.kubewatch import WatchEvent, WatchPosition
from dnswatch.listwatch import ListWatch
from dnswatch.urlredact import redact_urls

__all__ = ["GlobalThreatFeedSource", "KeyReference", "KubeSourceSettings", "served_api_groups"]

log = logging.getLogger(__name__)

_NOT_FOUND = 404
_HINTS = {
    _NOT_FOUND: " (is the GlobalThreatFeed CRD installed? kubectl apply -f deploy/base/crd-globalthreatfeed.yaml)",
    401: " (the collector's credentials were refused)",
    403: " (the collector's ServiceAccount needs list and watch on globalthreatfeeds.dnswatch.dev)",
}


@dataclass(frozen=True)
class KubeSourceSettings:
    """Where the GlobalThreatFeeds are and how the watch behaves."""

    group: str = "dnswatch.dev"
    """The CRD's API group."""
    version: str = "v1"
    """The CRD's version."""
    plural: str = "globalthreatfeeds"
    """The CRD's resource name."""
    namespace: str = "dnswatch"
    """The namespace of the ConfigMaps and Secrets that headers' `valueFrom` name (the collector's own)."""
    watch_timeout_seconds: int = 300
    """Each watch asks the server to end it after this long; it is then resumed from the last resourceVersion,
    so a connection that silently died is noticed at the latest after this plus `request_timeout_seconds`."""
    request_timeout_seconds: float = 30.0
    """Client-side timeout of list, get and patch requests (and the slack on a watch's read timeout)."""
    backoff: Backoff = field(default_factory=Backoff)
    """Delays between attempts after a failure; reset by a success."""
    report_invalid: bool = True
    """Write an `InvalidSpec` error condition to the status of a refused manifest (needs the status RBAC)."""


class KeyReference(Protocol):
    """A ConfigMap or Secret key (`collector.core.pulling.HeaderRef` is one)."""

    kind: str
    """`ConfigMap` or `Secret`."""
    name: str
    key: str


class GlobalThreatFeedSource:
    """Lists and watches GlobalThreatFeeds; one instance serves one `run()` (or `changes()`) until `close()`."""

    def __init__(
        self,
        api_client: client.ApiClient,
        settings: KubeSourceSettings | None = None,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings or KubeSourceSettings()
        self._custom = client.CustomObjectsApi(api_client)
        self._core = client.CoreV1Api(api_client)
        self._rng = rng or random.Random()
        self._closed = threading.Event()
        self._watch: watch.Watch | None = None
        self._watch_lock = threading.Lock()
        self._position = WatchPosition()
        self._tracker = FeedTracker()

    @property
    def api_version(self) -> str:
        """The group and version watched: `dnswatch.dev/v1` or `projectcalico.org/v3`."""
        return f"{self.settings.group}/{self.settings.version}"

    def refusals(self) -> list[RefusedManifest]:
        """The objects whose manifest is refused now, each with why."""
        return [RefusedManifest(self._origin(name), name, problem)
                for name, problem in sorted(self._tracker.problems().items())]

    # -- the loop

    def run(self, emit: Callable[[FeedChange], None]) -> None:
        """List and watch, calling `emit` for every change, until `close()`; never raises for the API's faults."""
        tracker = self._tracker

        def follow() -> bool:
            self._follow(tracker, emit)
            return True  # a watch the server ended, early or not, is resumed at once

        ListWatch("GlobalThreatFeed watch", self._position, lambda: self._relist(tracker, emit), follow,
                  self._closed.is_set, self._back_off, log, _HINTS).run()

    @property
    def resource_version(self) -> str | None:
        """The resourceVersion the source has seen up to (None before the first list, and after 410 Gone)."""
        return self._position.resource_version

    def close(self) -> None:
        """Stop `run()` (and so `changes()`) soon, interrupting a watch that is waiting for events."""
        self._closed.set()
        with self._watch_lock:
            if self._watch is not None:
                self._watch.stop()

    async def changes(self) -> AsyncIterator[FeedChange]:
        """The changes as an async iterator, the blocking loop running in a thread; closing it closes the source."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[FeedChange] = asyncio.Queue()

        def emit(change: FeedChange) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, change)
            except RuntimeError:  # the event loop is closed: nobody is listening any more
                self._closed.set()

        thread = threading.Thread(target=self.run, args=(emit,), name="globalthreatfeed-watch", daemon=True)
        thread.start()
        try:
            while True:
                yield await queue.get()
        finally:
            self.close()
            await asyncio.to_thread(thread.join)

    def _relist(self, tracker: FeedTracker, emit: Callable[[FeedChange], None]) -> None:
        s = self.settings
        listing = self._custom.list_cluster_custom_object(
            s.group, s.version, s.plural, _request_timeout=s.request_timeout_seconds
        )
        items = [item for item in listing.get("items") or [] if _name(item)]
        for change in tracker.relisted((_name(item), item, self._origin(_name(item))) for item in items):
            emit(change)
        for item in items:
            self._report_problem(tracker, item)
        self._position.listed(listing)

    def _follow(self, tracker: FeedTracker, emit: Callable[[FeedChange], None]) -> None:
        s = self.settings
        follower = watch.Watch()
        with self._watch_lock:
            if self._closed.is_set():
                return
            self._watch = follower
        try:
            events = follower.stream(
                self._custom.list_cluster_custom_object, s.group, s.version, s.plural,
                resource_version=self._position.resource_version, timeout_seconds=s.watch_timeout_seconds,
                allow_watch_bookmarks=True,
                _request_timeout=(s.request_timeout_seconds, s.watch_timeout_seconds + s.request_timeout_seconds),
            )  # fmt: skip
            for event in events:
                obj = event["raw_object"]
                kind, name = event["type"], _name(obj)
                if kind in ("ADDED", "MODIFIED") and name:
                    for change in tracker.applied(name, obj, self._origin(name)):
                        emit(change)
                    self._report_problem(tracker, obj)
                elif kind == "DELETED" and name:
                    for change in tracker.deleted(name):
                        emit(change)
                # Only after the event is handled: a resume must not skip an event a crash interrupted.
                self._position.handled(WatchEvent(kind, obj))
        finally:
            with self._watch_lock:
                self._watch = None

    def _origin(self, name: str) -> str:
        return f"{self.api_version} GlobalThreatFeed/{name}"

    def _back_off(self, failures: int, why: str) -> None:
        if self._closed.is_set():
            return
        delay = self.settings.backoff.delay(failures, self._rng)
        log.warning("GlobalThreatFeed watch: %s; retrying in %.1fs (attempt %d)", why, delay, failures + 1)
        self._closed.wait(delay)

    def _report_problem(self, tracker: FeedTracker, obj: dict) -> None:
        if not self.settings.report_invalid:
            return
        name = _name(obj)
        problem = tracker.problem(name)
        # The message may quote the manifest's URL, and the status is readable more widely than the spec.
        patch = invalid_spec_status_patch(obj, redact_urls(problem) if problem is not None else None)
        if patch is None:
            return
        try:
            self.patch_status(name, patch)
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as error:
            log.warning("GlobalThreatFeed %s: cannot write its InvalidSpec condition: %s", name, error)

    # -- status and header values

    def patch_status(self, name: str, status: dict) -> bool:
        """Merge `status` into the object's status subresource (None deletes a field; lists are replaced).

        False when the object no longer exists; other API errors raise `ApiException`.
        """
        s = self.settings
        try:
            self._custom.patch_cluster_custom_object_status(
                s.group, s.version, s.plural, name, {"status": status}, _request_timeout=s.request_timeout_seconds
            )
        except ApiException as error:
            if error.status == _NOT_FOUND:
                return False
            raise
        return True

    async def write_status(self, name: str, status: dict) -> bool:
        """`patch_status` without blocking the event loop."""
        return await asyncio.to_thread(self.patch_status, name, status)

    def lookup(self, ref: KeyReference) -> str | None:
        """A ConfigMap or Secret key's value in the collector's namespace; None when the object or key is missing.

        Secret values are returned, never logged; error messages name only the object and the key.
        """
        s = self.settings
        try:
            if ref.kind == "ConfigMap":
                config_map = self._core.read_namespaced_config_map(
                    ref.name, s.namespace, _request_timeout=s.request_timeout_seconds
                )
                data = config_map.data or {}
                if ref.key in data:
                    return data[ref.key]
                binary = (config_map.binary_data or {}).get(ref.key)
                return None if binary is None else _decode(binary, ref)
            if ref.kind == "Secret":
                secret = self._core.read_namespaced_secret(ref.name, s.namespace, _request_timeout=s.request_timeout_seconds)
                value = (secret.data or {}).get(ref.key)
                return None if value is None else _decode(value, ref)
        except ApiException as error:
            if error.status == _NOT_FOUND:
                return None
            raise LookupError(f"{ref.kind} {s.namespace}/{ref.name}: HTTP {error.status} {error.reason}") from None
        raise ValueError(f"{ref.kind!r} is neither ConfigMap nor Secret")

    async def resolve(self, ref: KeyReference) -> str | None:
        """`lookup` without blocking the event loop (a `collector.shell.puller.Resolver`)."""
        return await asyncio.to_thread(self.lookup, ref)


def _decode(encoded: str, ref: KeyReference) -> str:
    try:
        return base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise LookupError(f"{ref.kind} {ref.name} key {ref.key}: not base64-encoded UTF-8 text") from None


def _name(obj: dict) -> str:
    return (obj.get("metadata") or {}).get("name") or ""


def served_api_groups(api_client: client.ApiClient, timeout: float = 30.0) -> dict[str, tuple[str, ...]]:
    """API discovery (`GET /apis`): each group the server serves, with its versions."""
    groups = client.ApisApi(api_client).get_api_versions(_request_timeout=timeout).groups or []
    return {group.name: tuple(version.version for version in group.versions or ()) for group in groups}
