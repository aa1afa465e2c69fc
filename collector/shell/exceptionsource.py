"""AlertExceptions from the Kubernetes API (`alertexceptions.dnswatch.dev`): list, then watch, for ever, handed
to the ExceptionKeeper; each object's status says whether it is active and why it is not applied.

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

from collector.shell.customresources import CustomResourceSettings, CustomResourceWatch, object_name
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
        self._keeper = keeper
        self._specs: dict[str, object] = {}  # the spec last applied, by name (on the event loop)
        self._watch = CustomResourceWatch(api_client, self.settings, "AlertException", on_list=self._replace,
                                          on_event=self._applied, log=log)

    async def follow(self) -> None:
        """List and watch until cancelled (then closed); the keeper is called on this event loop."""
        await self._watch.follow()

    def close(self) -> None:
        self._watch.close()

    # -- on the event loop

    def _replace(self, items: list[dict[str, Any]]) -> None:
        self._specs = {object_name(item): item.get("spec") for item in items}
        self._keeper.replace({object_name(item): item for item in items})
        for item in items:
            self._report(item)

    def _applied(self, kind: str, name: str, obj: dict[str, Any]) -> None:
        if kind == "DELETED":
            self._specs.pop(name, None)
            self._keeper.delete(name)
            return
        # Our own status writes come back as MODIFIED with the spec unchanged: nothing to apply again.
        if name not in self._specs or self._specs[name] != obj.get("spec"):
            self._specs[name] = obj.get("spec")
            self._keeper.upsert(name, obj)
        self._report(obj)

    def _report(self, obj: dict[str, Any]) -> None:
        exception = self._keeper.get(object_name(obj))
        if exception is None:
            return
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
            self._watch.patch_status(name, status)
        except ApiException as error:
            log.warning("AlertException %s: cannot write its status: HTTP %s %s", name, error.status, error.reason)
        except (urllib3.exceptions.HTTPError, OSError) as error:
            log.warning("AlertException %s: cannot write its status: %s", name, error)
