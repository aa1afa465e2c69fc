"""One cluster-scoped custom resource of the Kubernetes API, listed and then watched for ever: what the
collector's sources of GlobalThreatFeeds, AlertExceptions and SecurityEventWebhooks share.

    watch = CustomResourceWatch(api_client, settings, "AlertException", on_list=..., on_event=..., log=log)
    await watch.follow()                  # the blocking client in a thread; the callbacks on the event loop
    watch.run()                           # or in the caller's thread, the callbacks there too
    await watch.write_status(name, {...}) # through the status subresource; False when the object is gone

The loop is the one every list-and-watch here runs (dnswatch/listwatch.py): list, watch from the list's
resourceVersion, list again after 410 Gone, and back off and resume from the last resourceVersion after any
other failure, with a hint for the statuses a user can act on (a missing CRD, missing RBAC). `on_list` gets
every named object of a list, `on_event` each ADDED, MODIFIED or DELETED one of a watch; both are called in
the order the server sent them.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import urllib3
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from collector.core.feedgroups import CALICO_GROUP
from collector.core.watchloop import Backoff
from dnswatch.kubewatch import WatchEvent, WatchPosition
from dnswatch.listwatch import ListWatch

__all__ = ["CALICO_VERSION", "CustomResourceSettings", "CustomResourceWatch", "discover_groups", "group_watches",
           "object_name", "served_api_groups"]

CALICO_VERSION = "v3"
"""Calico's API version of GlobalThreatFeed, AlertException and SecurityEventWebhook."""

NOT_FOUND = 404


@dataclass(frozen=True)
class CustomResourceSettings:
    """Which custom resource, and how its watch behaves."""

    group: str = "dnswatch.dev"
    """The CRD's API group."""
    version: str = "v1"
    """The CRD's version."""
    plural: str = ""
    """The CRD's resource name (each source's settings give theirs)."""
    watch_timeout_seconds: int = 300
    """Each watch asks the server to end it after this long; it is then resumed from the last resourceVersion,
    so a connection that silently died is noticed at the latest after this plus `request_timeout_seconds`."""
    request_timeout_seconds: float = 30.0
    """Client-side timeout of list, get and patch requests (and the slack on a watch's read timeout)."""
    backoff: Backoff = field(default_factory=Backoff)
    """Delays between attempts after a failure; reset by a success."""


Settings = TypeVar("Settings", bound=CustomResourceSettings)


def served_api_groups(api_client: client.ApiClient, timeout: float = 30.0) -> dict[str, tuple[str, ...]]:
    """API discovery (`GET /apis`): each group the server serves, with its versions."""
    groups = client.ApisApi(api_client).get_api_versions(_request_timeout=timeout).groups or []
    return {group.name: tuple(version.version for version in group.versions or ()) for group in groups}


async def discover_groups(api_client: client.ApiClient, settings: Settings, kind: str,
                          log: logging.Logger) -> list[Settings]:
    """`settings` (ours), and the same for Calico's group when the API server serves it: the groups a source of
    `kind` reads, the first winning a name both hold. Discovery is retried with backoff until it answers."""
    failures = 0
    while True:
        try:
            served = await asyncio.to_thread(served_api_groups, api_client, settings.request_timeout_seconds)
            break
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as error:
            delay = settings.backoff.delay(failures, random.Random())
            failures += 1
            log.warning("API discovery failed: %s; retrying in %.1fs", error, delay)
            await asyncio.sleep(delay)
    groups = [settings]
    if CALICO_VERSION in served.get(CALICO_GROUP, ()):
        log.info("the API serves %s/%s: its %ss are read too", CALICO_GROUP, CALICO_VERSION, kind)
        groups.append(replace(settings, group=CALICO_GROUP, version=CALICO_VERSION))
    return groups


async def group_watches(api_client: client.ApiClient, settings: CustomResourceSettings, kind: str,
                        log: logging.Logger, on_list: Callable[[int, list[dict[str, Any]]], None],
                        on_event: Callable[[int, str, str, dict[str, Any]], None]) -> list[CustomResourceWatch]:
    """A watch of `kind` for each group `discover_groups` finds (ours first), not yet started; each hands its
    group's index to the callbacks first: `on_list(index, items)`, `on_event(index, type, name, object)`."""
    groups = await discover_groups(api_client, settings, kind, log)
    return [CustomResourceWatch(api_client, group, kind, on_list=functools.partial(on_list, index),
                                on_event=functools.partial(on_event, index), log=log)
            for index, group in enumerate(groups)]


def hints(kind: str, plural: str, group: str) -> dict[int, str]:
    """What a log line adds to the HTTP statuses a user can act on."""
    crd = f"deploy/base/crd-{kind.lower()}.yaml"
    return {
        NOT_FOUND: f" (is the {kind} CRD installed? kubectl apply -f {crd})",
        401: " (the collector's credentials were refused)",
        403: f" (the collector's ServiceAccount needs list and watch on {plural}.{group})",
    }


class CustomResourceWatch:
    """Lists and watches one custom resource until `close()`, handing what it reads to the callbacks."""

    def __init__(self, api_client: client.ApiClient, settings: CustomResourceSettings, kind: str, *,
                 on_list: Callable[[list[dict[str, Any]]], None],
                 on_event: Callable[[str, str, dict[str, Any]], None],
                 log: logging.Logger, rng: random.Random | None = None) -> None:
        """`on_list(items)` after each list; `on_event(type, name, object)` for each ADDED, MODIFIED and
        DELETED object of a watch; `log` is the source's logger, so its lines say whose watch failed."""
        self.settings = settings
        self.kind = kind
        self._custom = client.CustomObjectsApi(api_client)
        self._on_list = on_list
        self._on_event = on_event
        self._log = log
        self._rng = rng or random.Random()
        self._closed = threading.Event()
        self._watch: watch.Watch | None = None
        self._watch_lock = threading.Lock()
        self._position = WatchPosition()
        self._loop: asyncio.AbstractEventLoop | None = None  # where the callbacks run, when `follow` runs

    @property
    def api_version(self) -> str:
        """The group and version watched: `dnswatch.dev/v1` or `projectcalico.org/v3`."""
        return f"{self.settings.group}/{self.settings.version}"

    @property
    def resource_version(self) -> str | None:
        """The resourceVersion seen up to (None before the first list, and after 410 Gone)."""
        return self._position.resource_version

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def run(self) -> None:
        """List and watch, calling the callbacks in this thread, until `close()`; never raises for the API's
        faults."""
        def follow_once() -> bool:
            self._follow()
            return True  # a watch the server ended, early or not, is resumed at once

        s = self.settings
        ListWatch(f"{self.kind} watch", self._position, self._relist, follow_once, self._closed.is_set,
                  self._back_off, self._log, hints(self.kind, s.plural, s.group)).run()

    async def follow(self) -> None:
        """`run` in a thread, with the callbacks called on this event loop, until cancelled (then closed)."""
        self._loop = asyncio.get_running_loop()
        thread = threading.Thread(target=self.run, name=f"{self.kind.lower()}-watch", daemon=True)
        thread.start()
        try:
            await asyncio.to_thread(thread.join)
        finally:
            self.close()

    def close(self) -> None:
        """Stop soon, interrupting a watch that is waiting for events."""
        self._closed.set()
        with self._watch_lock:
            if self._watch is not None:
                self._watch.stop()

    # -- status

    def patch_status(self, name: str, status: dict[str, Any]) -> bool:
        """Merge `status` into the object's status subresource (None deletes a field; lists are replaced).

        False when the object no longer exists; other API errors raise `ApiException`."""
        s = self.settings
        try:
            self._custom.patch_cluster_custom_object_status(s.group, s.version, s.plural, name, {"status": status},
                                                            _request_timeout=s.request_timeout_seconds)
        except ApiException as error:
            if error.status == NOT_FOUND:
                return False
            raise
        return True

    async def write_status(self, name: str, status: dict[str, Any]) -> bool:
        """`patch_status` without blocking the event loop."""
        return await asyncio.to_thread(self.patch_status, name, status)

    # -- on the thread

    def _relist(self) -> None:
        s = self.settings
        listing = self._custom.list_cluster_custom_object(s.group, s.version, s.plural,
                                                          _request_timeout=s.request_timeout_seconds)
        self._hand(self._on_list, [item for item in listing.get("items") or [] if object_name(item)])
        self._position.listed(listing)

    def _follow(self) -> None:
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
                kind, name = event["type"], object_name(obj)
                if kind in ("ADDED", "MODIFIED", "DELETED") and name:
                    self._hand(self._on_event, kind, name, obj)
                # Only after the event is handled: a resume must not skip an event a crash interrupted.
                self._position.handled(WatchEvent(kind, obj))
        finally:
            with self._watch_lock:
                self._watch = None

    def _hand(self, callback: Callable[..., None], *args: Any) -> None:
        if self._loop is None:
            callback(*args)
            return
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the event loop is closed: nobody is listening any more
            self._closed.set()

    def _back_off(self, failures: int, why: str) -> None:
        if self._closed.is_set():
            return
        delay = self.settings.backoff.delay(failures, self._rng)
        self._log.warning("%s watch: %s; retrying in %.1fs (attempt %d)", self.kind, why, delay, failures + 1)
        self._closed.wait(delay)


def object_name(obj: Any) -> str:
    """metadata.name, or "" when the object has none."""
    metadata = obj.get("metadata") if isinstance(obj, dict) else None
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return name if isinstance(name, str) else ""
