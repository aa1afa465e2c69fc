"""Where the HTTP API writes GlobalThreatFeeds and AlertExceptions: where the collector reads them, so that
what the API changes and what the files or the cluster hold stay one source of truth.

- `FolderResources` (--feeds-dir): a resource is one manifest file of the folder. One the API creates is
  `<kind>-<name>.yaml`; one that already exists is rewritten in its own file when that file holds it alone,
  and refused (409) when the file holds other documents too, which the API will not rewrite. Every write is
  atomic: a dot-file in the same folder (the folder source skips dot-files), fsync, rename, fsync of the
  folder. The folder source then picks the change up at its next poll.
- `KubeResources`: the cluster-scoped `dnswatch.dev/v1` objects, created, replaced or deleted through the
  Kubernetes API (deploy/base/rbac.yaml grants the collector those verbs on the two resources); a manifest
  written as Calico's is stored in our group. A replace is made at the resourceVersion just read, so a change
  made meanwhile by someone else is a conflict (409), not overwritten.

Both run their I/O on a worker thread; each method raises ResourceConflict, ResourceMissing or the
Kubernetes API's failure as ResourceWriteFailed, whose message says what to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml

from dnswatch.errors import DnswatchError
from collector.shell.security.settings import reason

__all__ = ["FEED_KIND", "EXCEPTION_KIND", "WEBHOOK_KIND", "FolderResources", "KubeResources", "ResourceConflict",
           "ResourceMissing", "ResourceWriteFailed", "check_name"]

FEED_KIND = "GlobalThreatFeed"
EXCEPTION_KIND = "AlertException"
WEBHOOK_KIND = "SecurityEventWebhook"
_PLURALS = {FEED_KIND: "globalthreatfeeds", EXCEPTION_KIND: "alertexceptions", WEBHOOK_KIND: "securityeventwebhooks"}
_GROUP, _VERSION = "dnswatch.dev", "v1"
_SUFFIXES = (".yaml", ".yml", ".json")
_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


class ResourceWriteFailed(DnswatchError):
    """The resource could not be written; the message says why."""


class ResourceConflict(ResourceWriteFailed):
    """The resource exists (create), or cannot be rewritten where it is."""


class ResourceMissing(ResourceWriteFailed):
    """No such resource."""


def check_name(name: str) -> str | None:
    """Why `name` cannot name a resource (a DNS subdomain name, as Kubernetes requires), or None."""
    if len(name) > 253 or not _NAME.fullmatch(name):
        return f"{name!r} is not a DNS subdomain name (lower-case letters, digits, '-' and '.')"
    return None


class FolderResources:
    """The resources of a manifests folder."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._lock = asyncio.Lock()  # one write at a time: a create must not race another's look

    async def get(self, kind: str, name: str) -> dict[str, Any]:
        return await self._run(self._get, kind, name)

    async def create(self, kind: str, name: str, manifest: dict[str, Any]) -> None:
        async with self._lock:
            await self._run(self._create, kind, name, manifest)

    async def replace(self, kind: str, name: str, manifest: dict[str, Any]) -> None:
        async with self._lock:
            await self._run(self._replace, kind, name, manifest)

    async def delete(self, kind: str, name: str) -> None:
        async with self._lock:
            await self._run(self._delete, kind, name)

    async def _run(self, work, kind: str, name: str, *args: Any) -> Any:
        try:
            return await asyncio.to_thread(work, kind, name, *args)
        except OSError as error:  # a read-only folder (a mounted ConfigMap), a full disk
            raise ResourceWriteFailed(f"{kind} {name!r}: cannot write {self._folder} ({reason(error)}); with a "
                                      "read-only folder, change the manifests where they come from") from None

    # -- on the worker thread

    def _find(self, kind: str, name: str) -> tuple[Path, dict[str, Any], int] | None:
        """(file, manifest, documents in the file) of the resource, or None."""
        for path in sorted(self._folder.iterdir()):
            if path.name.startswith(".") or path.suffix not in _SUFFIXES or not path.is_file():
                continue
            try:
                docs = [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                continue  # refused by the source too: it holds nothing of ours
            items = [item for doc in docs for item in (doc.get("items", []) if isinstance(doc, dict)
                                                       and str(doc.get("kind", "")).endswith("List") else [doc])]
            for item in items:
                if (isinstance(item, dict) and item.get("kind") == kind and isinstance(item.get("metadata"), dict)
                        and item["metadata"].get("name") == name):
                    return path, item, len(items)
        return None

    def _get(self, kind: str, name: str) -> dict[str, Any]:
        found = self._find(kind, name)
        if found is None:
            raise ResourceMissing(f"no {kind} named {name!r} in {self._folder}")
        return found[1]

    def _create(self, kind: str, name: str, manifest: dict[str, Any]) -> None:
        found = self._find(kind, name)
        if found is not None:
            raise ResourceConflict(f"{kind} {name!r} exists already (in {found[0].name}): update it instead")
        path = self._folder / f"{kind.lower()}-{name}.yaml"
        if path.exists():
            raise ResourceConflict(f"{path.name} exists already and holds no {kind} {name!r}: rename it")
        _write_atomically(path, manifest)

    def _alone(self, kind: str, name: str) -> Path:
        found = self._find(kind, name)
        if found is None:
            raise ResourceMissing(f"no {kind} named {name!r} in {self._folder}")
        path, _, documents = found
        if documents > 1:
            raise ResourceConflict(f"{kind} {name!r} is one of {documents} documents of {path.name}: edit that "
                                   "file, or move the resource to a file of its own")
        return path

    def _replace(self, kind: str, name: str, manifest: dict[str, Any]) -> None:
        _write_atomically(self._alone(kind, name), manifest)

    def _delete(self, kind: str, name: str) -> None:
        path = self._alone(kind, name)
        path.unlink()
        _sync_folder(path.parent)


def _write_atomically(path: Path, manifest: dict[str, Any]) -> None:
    text = yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class KubeResources:
    """The cluster's `dnswatch.dev/v1` GlobalThreatFeeds and AlertExceptions."""

    def __init__(self, api_client) -> None:
        from kubernetes import client  # slow to import: only Kubernetes mode needs it

        self._api = client.CustomObjectsApi(api_client)

    async def get(self, kind: str, name: str) -> dict[str, Any]:
        found = await self._call(kind, name, "get_cluster_custom_object", name)
        return _without_server_fields(found)

    async def create(self, kind: str, name: str, manifest: dict[str, Any]) -> None:
        await self._call(kind, name, "create_cluster_custom_object", _ours(manifest))

    async def replace(self, kind: str, name: str, manifest: dict[str, Any]) -> None:
        current = await self._call(kind, name, "get_cluster_custom_object", name)
        # Replaced at the version read: a change made meanwhile by someone else is a 409, not overwritten.
        metadata = {**manifest.get("metadata", {}),
                    "resourceVersion": current.get("metadata", {}).get("resourceVersion")}
        await self._call(kind, name, "replace_cluster_custom_object", name,
                         {**_ours(manifest), "metadata": metadata})

    async def delete(self, kind: str, name: str) -> None:
        await self._call(kind, name, "delete_cluster_custom_object", name)

    async def _call(self, kind: str, name: str, method: str, *args: Any) -> dict[str, Any]:
        from kubernetes.client.rest import ApiException

        call = getattr(self._api, method)
        try:
            return await asyncio.to_thread(call, _GROUP, _VERSION, _PLURALS[kind], *args, _request_timeout=10)
        except ApiException as error:
            if error.status == 404:
                raise ResourceMissing(f"no {kind} named {name!r} in the cluster") from None
            if error.status == 409:
                why = "exists already" if method.startswith("create") else "changed meanwhile; try again"
                raise ResourceConflict(f"{kind} {name!r}: {why}") from None
            if error.status == 403:
                raise ResourceWriteFailed(f"{kind} {name!r}: the collector's ServiceAccount may not do that "
                                          f"(deploy/base/rbac.yaml grants it {_PLURALS[kind]}.{_GROUP})") from None
            raise ResourceWriteFailed(f"{kind} {name!r}: the Kubernetes API answered HTTP {error.status}") from None
        except Exception as error:  # noqa: BLE001 - urllib3's connection errors: the API is away
            raise ResourceWriteFailed(f"{kind} {name!r}: the Kubernetes API did not answer "
                                      f"({type(error).__name__})") from None


def _ours(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest as a `dnswatch.dev/v1` object: one written as Calico's (`projectcalico.org/v3`, whose spec
    is the same) is stored in the collector's own group, which is the one it may write."""
    return {**manifest, "apiVersion": f"{_GROUP}/{_VERSION}"}


def _without_server_fields(obj: dict[str, Any]) -> dict[str, Any]:
    metadata = {key: value for key, value in obj.get("metadata", {}).items()
                if key in ("name", "labels", "annotations")}
    return {key: value for key, value in {**obj, "metadata": metadata}.items() if key != "status"}
