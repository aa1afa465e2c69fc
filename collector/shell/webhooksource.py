"""SecurityEventWebhooks from the Kubernetes API (`securityeventwebhooks.dnswatch.dev`, and Calico's
`securityeventwebhooks.projectcalico.org` beside them when the API server serves that group): listed, then
watched, for ever, into the WebhookKeeper; each of our objects' status (`WebhookKeeper.status`: conditions,
lastDelivery, lastError, pending, deadLetters) written back through the status subresource. A name both
groups hold is ours (collector/core/groupmerge.py); Calico's objects get no status from us (Calico's API
server owns their schema): `dnswatch webhooks get` shows it.

The list and the watch are those every custom resource here shares (collector/shell/customresources.py). A
status is written only when it differs from the object's, so our own writes, echoed back as MODIFIED, write
nothing again; and one object's at most every `status_interval_seconds`, because delivery changes the counts
and the last delivery at every attempt and the API server must not take a write per event. The configuration
is resolved before the status is made, so that a Secret or a key that is missing shows as a condition even
while nothing is delivered.

    source = SecurityEventWebhookSource(api_client, keeper)
    task = asyncio.create_task(source.follow())
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.rest import ApiException

from collector.core.groupmerge import GroupMerge
from collector.shell.customresources import CustomResourceSettings, CustomResourceWatch, group_watches, object_name
from collector.shell.webhookkeeper import WebhookKeeper

__all__ = ["SecurityEventWebhookSource", "WebhookSourceSettings"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WebhookSourceSettings(CustomResourceSettings):
    plural: str = "securityeventwebhooks"
    """The CRD's resource name."""
    status_interval_seconds: float = 5.0
    """The least time between two status writes of one object, and the longest a change of delivery's counts
    waits to be written."""


class SecurityEventWebhookSource:
    """Lists and watches SecurityEventWebhooks into `keeper` and writes their status back, until cancelled."""

    def __init__(self, api_client: client.ApiClient, keeper: WebhookKeeper,
                 settings: WebhookSourceSettings | None = None) -> None:
        self.settings = settings or WebhookSourceSettings()
        self._keeper = keeper
        self._specs: dict[str, object] = {}  # the spec last applied, by name
        self._statuses: dict[str, dict[str, Any]] = {}  # each object's status as last seen or written
        self._written_at: dict[str, float] = {}  # monotonic time of each object's last status write
        self._seen = asyncio.Event()  # set by every list and watch event: a status may need writing
        self._api_client = api_client
        self._merge = GroupMerge(1)
        self._watches: list[CustomResourceWatch] = []
        self.status_writes = 0
        """Status writes made (for tests and logs)."""

    async def follow(self) -> None:
        """List and watch, and write statuses, until cancelled (then closed). Only this event loop may call
        the keeper."""
        self._watches = await group_watches(self._api_client, self.settings, "SecurityEventWebhook", log, self._replace,
                                            self._applied)
        self._merge = GroupMerge(len(self._watches))
        writer = asyncio.create_task(self._write_statuses(), name="SecurityEventWebhook status")
        try:
            await asyncio.gather(*(watch.follow() for watch in self._watches))
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            self.close()

    def close(self) -> None:
        for watch in self._watches:
            watch.close()

    # -- the watch's callbacks, on the event loop

    def _replace(self, group: int, items: list[dict[str, Any]]) -> None:
        merged = self._merge.listed(group, {object_name(item): item for item in items})
        self._specs = {name: item.get("spec") for name, item in merged.items()}
        self._statuses = {name: item.get("status") or {} for name, item in merged.items()}
        self._keeper.replace(merged)
        self._seen.set()

    def _applied(self, group: int, kind: str, name: str, obj: dict[str, Any]) -> None:
        winner = self._merge.applied(group, name, None if kind == "DELETED" else obj)
        if winner is None:
            return  # a shadowed object: the one in force is unchanged
        if winner.obj is None:
            self._specs.pop(name, None)
            self._statuses.pop(name, None)
            self._written_at.pop(name, None)
            self._keeper.delete(name)
            return
        obj = dict(winner.obj)
        self._statuses[name] = obj.get("status") or {}
        # Our own status writes come back as MODIFIED with the spec unchanged: nothing to apply again.
        if name not in self._specs or self._specs[name] != obj.get("spec"):
            self._specs[name] = obj.get("spec")
            self._keeper.upsert(name, obj)
        self._seen.set()

    # -- the status

    async def _write_statuses(self) -> None:
        generation = -1
        interval = self.settings.status_interval_seconds
        while True:
            generation = self._keeper.generation
            self._seen.clear()
            for webhook in self._keeper.webhooks:
                await self._write_status(webhook.name, interval)
            # Woken by a change of the set or of an object, else after an interval (delivery's counts).
            waits = [asyncio.ensure_future(self._keeper.wait_changed(generation)),
                     asyncio.ensure_future(self._seen.wait())]
            try:
                await asyncio.wait(waits, timeout=interval, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for wait in waits:
                    wait.cancel()

    async def _write_status(self, name: str, interval: float) -> None:
        await self._keeper.resolved(name)  # a missing Secret or key becomes a condition of the status
        wanted = self._keeper.status(name)
        current = self._statuses.get(name)
        if wanted is None or current is None or current == wanted or self._merge.winner(name) != 0:
            return  # unchanged, or a Calico object, which keeps the status Calico gives it
        if time.monotonic() - self._written_at.get(name, float("-inf")) < interval:
            return  # written a moment ago: the next round writes it
        # A merge patch: what the status no longer has (a cleared lastError) is deleted with None.
        patch = {**{key: None for key in current if key not in wanted}, **wanted}
        self._written_at[name] = time.monotonic()
        try:
            written = await self._watches[0].write_status(name, patch)
        except ApiException as error:
            log.warning("SecurityEventWebhook %s: cannot write its status: HTTP %s %s", name, error.status,
                        error.reason)
            return
        except (urllib3.exceptions.HTTPError, OSError) as error:
            log.warning("SecurityEventWebhook %s: cannot write its status: %s", name, error)
            return
        if written and name in self._statuses:
            self._statuses[name] = wanted
            self.status_writes += 1
