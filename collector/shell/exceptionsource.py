"""AlertExceptions from the Kubernetes API (`alertexceptions.dnswatch.dev`, and Calico's
`alertexceptions.projectcalico.org` beside them when the API server serves that group): list, then watch, for
ever, handed to the ExceptionKeeper; each of our objects' status says whether it is active and why it is not
applied. A name both groups hold is ours (collector/core/groupmerge.py); Calico's objects get no status from
us (Calico's API server owns their schema): `dnswatch exceptions get` shows it.

The list and the watch are those every custom resource here shares (collector/shell/customresources.py). The
keeper validates what it is given; the status written back (`active`, `endsAt`, `errorConditions`) goes
through the status subresource and only when it differs from the object's, so our own writes, echoed back as
MODIFIED, write nothing again.

    source = AlertExceptionSource(api_client, keeper)
    task = asyncio.create_task(source.follow())
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.rest import ApiException

from collector.core.groupmerge import GroupMerge
from collector.shell.customresources import CustomResourceSettings, CustomResourceWatch, group_watches, object_name
from collector.shell.exceptionkeeper import ExceptionKeeper

__all__ = ["AlertExceptionSource", "ExceptionSourceSettings"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExceptionSourceSettings(CustomResourceSettings):
    plural: str = "alertexceptions"
    """The CRD's resource name."""


class AlertExceptionSource:
    """Lists and watches AlertExceptions into `keeper`, from a thread, until `close()`."""

    def __init__(self, api_client: client.ApiClient, keeper: ExceptionKeeper,
                 settings: ExceptionSourceSettings | None = None) -> None:
        self.settings = settings or ExceptionSourceSettings()
        self._api_client = api_client
        self._keeper = keeper
        self._specs: dict[str, object] = {}  # the spec last applied, by name (on the event loop)
        self._merge = GroupMerge(1)
        self._watches: list[CustomResourceWatch] = []

    async def follow(self) -> None:
        """Discover the groups, then list and watch each until cancelled (then closed); the keeper is called
        on this event loop."""
        self._watches = await group_watches(self._api_client, self.settings, "AlertException", log, self._replace,
                                            self._applied)
        self._merge = GroupMerge(len(self._watches))
        try:
            await asyncio.gather(*(watch.follow() for watch in self._watches))
        finally:
            self.close()

    def close(self) -> None:
        for watch in self._watches:
            watch.close()

    # -- on the event loop

    def _replace(self, group: int, items: list[dict[str, Any]]) -> None:
        merged = self._merge.listed(group, {object_name(item): item for item in items})
        self._specs = {name: item.get("spec") for name, item in merged.items()}
        self._keeper.replace(merged)
        for item in merged.values():
            self._report(item)

    def _applied(self, group: int, kind: str, name: str, obj: dict[str, Any]) -> None:
        winner = self._merge.applied(group, name, None if kind == "DELETED" else obj)
        if winner is None:
            return  # a shadowed object: the one in force is unchanged
        if winner.obj is None:
            self._specs.pop(name, None)
            self._keeper.delete(name)
            return
        obj = dict(winner.obj)
        # Our own status writes come back as MODIFIED with the spec unchanged: nothing to apply again.
        if name not in self._specs or self._specs[name] != obj.get("spec"):
            self._specs[name] = obj.get("spec")
            self._keeper.upsert(name, obj)
        self._report(obj)

    def _report(self, obj: dict[str, Any]) -> None:
        exception = self._keeper.get(object_name(obj))
        if exception is None or self._merge.winner(object_name(obj)) != 0:
            return  # Calico's objects keep the status Calico gives them
        shown = exception.to_dict(dt.datetime.now(dt.timezone.utc))["status"]
        status = {key: shown[key] for key in ("errorConditions",)}
        if "endsAt" in shown:
            status["endsAt"] = shown["endsAt"]
        current = obj.get("status") or {}
        if {key: current.get(key) for key in status} == status:
            return
        asyncio.get_running_loop().run_in_executor(None, self._patch_status, object_name(obj), status)

    def _patch_status(self, name: str, status: dict[str, Any]) -> None:
        try:
            self._watches[0].patch_status(name, status)
        except ApiException as error:
            log.warning("AlertException %s: cannot write its status: HTTP %s %s", name, error.status, error.reason)
        except (urllib3.exceptions.HTTPError, OSError) as error:
            log.warning("AlertException %s: cannot write its status: %s", name, error)
