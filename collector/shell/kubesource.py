"""GlobalThreatFeeds from the Kubernetes API: list, then watch from the resourceVersion, for ever.

The list and the watch are those every custom resource here shares (collector/shell/customresources.py):
list, watch from the list's resourceVersion, list again after 410 Gone (the server compacted its history), and
back off and resume from the last resourceVersion seen after any other failure.
`collector.core.watchloop.FeedTracker` turns lists and events into changes, so a relist or a resumed watch
reports each real change once, and our own status writes (echoed back as MODIFIED) report none.

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
from dataclasses import dataclass
from typing import Any, Protocol

import urllib3
from kubernetes import client
from kubernetes.client.rest import ApiException

from collector.core.watchloop import FeedChange, FeedTracker, invalid_spec_status_patch
from collector.shell.customresources import NOT_FOUND, CustomResourceSettings, CustomResourceWatch, object_name
from dnswatch.feeds.feedinfo import RefusedManifest
from dnswatch.urlredact import redact_urls

__all__ = ["GlobalThreatFeedSource", "KeyReference", "KubeSourceSettings", "served_api_groups"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KubeSourceSettings(CustomResourceSettings):
    """Where the GlobalThreatFeeds are and how the watch behaves."""

    plural: str = "globalthreatfeeds"
    """The CRD's resource name."""
    namespace: str = "dnswatch"
    """The namespace of the ConfigMaps and Secrets that headers' `valueFrom` name (the collector's own)."""
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
        self._core = client.CoreV1Api(api_client)
        self._tracker = FeedTracker()
        self._emit: Callable[[FeedChange], None] = lambda change: None
        self._watch = CustomResourceWatch(api_client, self.settings, "GlobalThreatFeed", on_list=self._listed,
                                          on_event=self._applied, log=log, rng=rng)

    @property
    def api_version(self) -> str:
        """The group and version watched: `dnswatch.dev/v1` or `projectcalico.org/v3`."""
        return self._watch.api_version

    def refusals(self) -> list[RefusedManifest]:
        """The objects whose manifest is refused now, each with why."""
        return [RefusedManifest(self._origin(name), name, problem)
                for name, problem in sorted(self._tracker.problems().items())]

    # -- the loop

    def run(self, emit: Callable[[FeedChange], None]) -> None:
        """List and watch, calling `emit` for every change, until `close()`; never raises for the API's faults."""
        self._emit = emit
        self._watch.run()

    @property
    def resource_version(self) -> str | None:
        """The resourceVersion the source has seen up to (None before the first list, and after 410 Gone)."""
        return self._watch.resource_version

    def close(self) -> None:
        """Stop `run()` (and so `changes()`) soon, interrupting a watch that is waiting for events."""
        self._watch.close()

    async def changes(self) -> AsyncIterator[FeedChange]:
        """The changes as an async iterator, the blocking loop running in a thread; closing it closes the source."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[FeedChange] = asyncio.Queue()

        def emit(change: FeedChange) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, change)
            except RuntimeError:  # the event loop is closed: nobody is listening any more
                self.close()

        thread = threading.Thread(target=self.run, args=(emit,), name="globalthreatfeed-watch", daemon=True)
        thread.start()
        try:
            while True:
                yield await queue.get()
        finally:
            self.close()
            await asyncio.to_thread(thread.join)

    # -- on the watch's thread

    def _listed(self, items: list[dict[str, Any]]) -> None:
        for change in self._tracker.relisted((object_name(item), item, self._origin(object_name(item)))
                                             for item in items):
            self._emit(change)
        for item in items:
            self._report_problem(item)

    def _applied(self, kind: str, name: str, obj: dict[str, Any]) -> None:
        if kind == "DELETED":
            for change in self._tracker.deleted(name):
                self._emit(change)
            return
        for change in self._tracker.applied(name, obj, self._origin(name)):
            self._emit(change)
        self._report_problem(obj)

    def _origin(self, name: str) -> str:
        return f"{self.api_version} GlobalThreatFeed/{name}"

    def _report_problem(self, obj: dict[str, Any]) -> None:
        if not self.settings.report_invalid:
            return
        name = object_name(obj)
        problem = self._tracker.problem(name)
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
        return self._watch.patch_status(name, status)

    async def write_status(self, name: str, status: dict) -> bool:
        """`patch_status` without blocking the event loop."""
        return await self._watch.write_status(name, status)

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
            if error.status == NOT_FOUND:
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


def served_api_groups(api_client: client.ApiClient, timeout: float = 30.0) -> dict[str, tuple[str, ...]]:
    """API discovery (`GET /apis`): each group the server serves, with its versions."""
    groups = client.ApisApi(api_client).get_api_versions(_request_timeout=timeout).groups or []
    return {group.name: tuple(version.version for version in group.versions or ()) for group in groups}
