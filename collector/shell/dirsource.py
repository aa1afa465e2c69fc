"""GlobalThreatFeeds from a folder (`dnswatch-collector --feeds-dir DIR`), followed while the collector runs.

Every `*.yaml`, `*.yml` and `*.json` file of the folder (not its subfolders, not dot-files) is read as a stream
of manifests: several documents, `v1` Lists, `dnswatch.dev/v1` or `projectcalico.org/v3` GlobalThreatFeeds
as they are, AlertExceptions when the collector takes them (`on_exceptions`, docs/alert-operations.md), and
SecurityEventWebhooks with the Secrets and ConfigMaps their `valueFrom` name (`on_webhooks`, `lookup`,
docs/webhooks.md). The folder is polled (a stat per file, every `poll_seconds`); only a file whose modification time,
size or inode changed is read again. Polling needs no new dependency and sees a ConfigMap mounted as a folder
update (kubelet swaps a symlink, which changes the inode behind each file).

Changes are those of the Kubernetes source (`collector.core.watchloop`): `FeedUpserted`, `FeedDeleted`,
`FeedInvalid`, and `FeedsSynced` after every poll that changed something. A bad file never stops the others:
a document that is no valid GlobalThreatFeed is reported, and a file that cannot be read or parsed at all
(say, half written) is reported and its feeds stay as they were until it parses again. A name defined twice
is taken from the first file in name order and the other is reported. `refusals()` lists what is refused as of
the last poll (the files, documents and names, each with why), for `dnswatch feeds list`.

    source = FeedsDirSource(DirSourceSettings(Path("/etc/dnswatch/feeds")))
    async with contextlib.aclosing(source.changes()) as changes:
        async for change in changes:
            ...
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import yaml

from collector.core.foldervalues import VALUE_KINDS, FolderValues, KeyReference, read_value_object
from collector.core.watchloop import FeedChange, FeedInvalid, FeedTracker
from dnswatch.feeds.feedinfo import RefusedManifest

__all__ = ["DirSourceSettings", "FeedsDirSource"]

SUFFIXES = (".yaml", ".yml", ".json")
_KIND = "GlobalThreatFeed"
_EXCEPTION_KIND = "AlertException"
_WEBHOOK_KIND = "SecurityEventWebhook"


@dataclass(frozen=True)
class DirSourceSettings:
    """Where the manifests are and how often to look."""

    directory: Path
    """The folder of manifest files."""
    poll_seconds: float = 5.0
    """Seconds between two looks at the folder."""
    allow_file_urls: bool = False
    """Accept `file:` feed URLs (a relative one is made absolute against the manifest's folder)."""
    on_exceptions: Callable[[dict[str, dict]], None] | None = None
    """Called (on the polling thread) with every AlertException of the folder, name -> manifest, after each
    poll that changed them; without it AlertException documents are refused like any other kind."""
    on_webhooks: Callable[[dict[str, dict]], None] | None = None
    """Called (on the polling thread) with every SecurityEventWebhook of the folder, name -> manifest, after
    each poll that changed them or the folder's Secrets and ConfigMaps (their values, `lookup`); without it
    SecurityEventWebhook, Secret and ConfigMap documents are refused like any other kind."""


@dataclass
class _File:
    signature: tuple[int, int, int]
    manifests: list[tuple[str, dict, str]]
    """(name, manifest, origin) of each GlobalThreatFeed document that has a name."""
    refused: list[FeedInvalid]
    """What the last read of the file refused: documents that are no GlobalThreatFeed, or the whole file."""
    others: dict[str, list[tuple[str, dict, str]]] = field(default_factory=dict)
    """(name, manifest, origin) of each named document of the other kinds taken, by kind: AlertException,
    SecurityEventWebhook, and Secret and ConfigMap (whose manifest is their keys' values, decoded)."""


class FeedsDirSource:
    """Reads and follows a folder of GlobalThreatFeed manifests; `poll()` is one look, `run`/`changes` loop."""

    def __init__(self, settings: DirSourceSettings) -> None:
        self.settings = settings
        self._tracker = FeedTracker(allow_file_urls=settings.allow_file_urls)
        self._files: dict[Path, _File] = {}
        self._duplicates: set[tuple[str, str]] = set()
        self._first = True
        self._list_error: str | None = None
        self._refused: tuple[RefusedManifest, ...] = ()
        self._closed = threading.Event()
        self._exceptions: dict[str, dict] | None = None
        self._webhooks: dict[str, dict] | None = None
        self._values = FolderValues()
        self._read_others: dict[str, list[tuple[str, dict, str]]] = {}  # of the file _read read last

    def refusals(self) -> list[RefusedManifest]:
        """What the folder holds that is refused, as of the last poll: files that cannot be read, documents
        that are no usable GlobalThreatFeed, and names defined twice."""
        return list(self._refused)

    def poll(self) -> list[FeedChange]:
        """One look at the folder: the changes since the last look (none when no file changed)."""
        changes: list[FeedChange] = []
        current = self._list_files(changes)
        if current is None:
            self._refused = (RefusedManifest(str(self.settings.directory), "", self._list_error or ""),)
            return changes
        changed = self._first or set(current) != set(self._files)
        self._first = False
        for path in sorted(set(self._files) - set(current)):
            del self._files[path]
        for path, signature in current.items():
            known = self._files.get(path)
            if known is not None and known.signature == signature:
                continue
            changed = True
            first = len(changes)
            try:
                manifests = self._read(path, changes)
            except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as error:
                # Kept as it was: a file caught half-written must not remove its feeds for one poll.
                changes.append(FeedInvalid(None, f"{path}: cannot read: {_one_line(error)}", str(path)))
                self._files[path] = _File(signature, known.manifests if known else [], changes[first:],
                                          known.others if known else {})
                continue
            self._files[path] = _File(signature, manifests, changes[first:], self._read_others)
        if not changed:
            return changes
        self._report_exceptions(changes)
        self._report_webhooks(changes)
        chosen: dict[str, tuple[str, dict, str]] = {}
        duplicates = set()
        refused = [RefusedManifest(r.origin, r.name or "", r.message) for f in self._files.values() for r in f.refused]
        for path in sorted(self._files):
            for name, manifest, origin in self._files[path].manifests:
                if name in chosen:
                    duplicates.add((name, origin))
                    message = f"{origin}: metadata.name: {name!r} is already defined in {chosen[name][2]}"
                    refused.append(RefusedManifest(origin, name, message))
                    if (name, origin) not in self._duplicates:
                        changes.append(FeedInvalid(name, message, origin))
                    continue
                chosen[name] = (name, manifest, origin)
        self._duplicates = duplicates
        changes += self._tracker.relisted(chosen.values())
        for name, _manifest, origin in chosen.values():
            problem = self._tracker.problem(name)
            if problem is not None:
                refused.append(RefusedManifest(origin, name, problem))
        self._refused = tuple(sorted(refused, key=lambda r: r.origin))
        return changes

    def lookup(self, ref: KeyReference) -> str | None:
        """A key of one of the folder's Secrets or ConfigMaps, as of the last poll; None when it has none."""
        return self._values.lookup(ref)

    def _report_exceptions(self, changes: list[FeedChange]) -> None:
        """Hand the folder's AlertExceptions to `on_exceptions` when they changed."""
        if self.settings.on_exceptions is None:
            return
        exceptions = self._chosen(_EXCEPTION_KIND, changes)
        if exceptions != self._exceptions:
            self._exceptions = exceptions
            self.settings.on_exceptions(exceptions)

    def _report_webhooks(self, changes: list[FeedChange]) -> None:
        """Take the folder's Secrets and ConfigMaps, and hand its SecurityEventWebhooks to `on_webhooks` when
        they or those values changed (a rotated Secret must be read again)."""
        if self.settings.on_webhooks is None:
            return
        values = FolderValues({(kind, name): keys for kind in VALUE_KINDS
                               for name, keys in self._chosen(kind, changes).items()})
        webhooks = self._chosen(_WEBHOOK_KIND, changes)
        if webhooks != self._webhooks or values != self._values:
            self._values, self._webhooks = values, webhooks
            self.settings.on_webhooks(webhooks)

    def _chosen(self, kind: str, changes: list[FeedChange]) -> dict[str, dict]:
        """The folder's documents of `kind` by name; a name defined twice is the first file's, and reported."""
        chosen: dict[str, tuple[dict, str]] = {}
        for path in sorted(self._files):
            for name, manifest, origin in self._files[path].others.get(kind, ()):
                if name in chosen:
                    changes.append(FeedInvalid(None, f"{origin}: metadata.name: {kind} {name!r} is "
                                                     f"already defined in {chosen[name][1]}", origin))
                    continue
                chosen[name] = (manifest, origin)
        return {name: manifest for name, (manifest, _) in chosen.items()}

    def run(self, emit: Callable[[FeedChange], None]) -> None:
        """Poll until `close()`, calling `emit` for every change."""
        while not self._closed.is_set():
            for change in self.poll():
                emit(change)
            self._closed.wait(self.settings.poll_seconds)

    def close(self) -> None:
        self._closed.set()

    async def changes(self) -> AsyncIterator[FeedChange]:
        """The changes as an async iterator; the folder is read in a worker thread, never in the event loop."""
        while not self._closed.is_set():
            for change in await asyncio.to_thread(self.poll):
                yield change
            await asyncio.sleep(self.settings.poll_seconds)

    # -- reading

    def _list_files(self, changes: list[FeedChange]) -> dict[Path, tuple[int, int, int]] | None:
        directory = self.settings.directory
        try:
            entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
        except OSError as error:
            # A folder that is briefly missing (a remount) keeps the feeds read so far; said once, not per poll.
            message = f"{directory}: cannot list: {_one_line(error)}"
            if message != self._list_error:
                changes.append(FeedInvalid(None, message, str(directory)))
            self._list_error = message
            return None
        self._list_error = None
        files = {}
        for entry in entries:
            if entry.name.startswith(".") or not entry.name.lower().endswith(SUFFIXES):
                continue
            try:
                stat = entry.stat()  # follows symlinks: a ConfigMap volume's files are links into ..data
            except OSError:
                continue  # vanished between the listing and the stat
            if entry.is_file():
                files[Path(entry.path)] = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        return files

    def _read(self, path: Path, changes: list[FeedChange]) -> list[tuple[str, dict, str]]:
        text = path.read_text(encoding="utf-8-sig")
        if path.suffix.lower() == ".json":
            docs = [json.loads(text)] if text.strip() else []
        else:
            docs = list(yaml.safe_load_all(text))
        manifests = []
        self._read_others = {}
        for number, doc in enumerate(docs, 1):
            where = f"{path}" if len(docs) == 1 else f"{path} document {number}"
            items = [(where, doc)]
            if isinstance(doc, dict) and doc.get("kind") in ("List", f"{_KIND}List"):
                raw_items = doc.get("items")
                items = [(f"{where} items[{i}]", item) for i, item in enumerate(raw_items if isinstance(raw_items, list) else [])]
            for origin, item in items:
                if item is None:
                    continue
                kind = item.get("kind") if isinstance(item, dict) else None
                metadata = item.get("metadata") if isinstance(item, dict) else None
                name = metadata.get("name") if isinstance(metadata, dict) else None
                if kind in self._other_kinds():
                    if not isinstance(name, str) or not name:
                        changes.append(FeedInvalid(None, f"{origin}: metadata.name: required", origin))
                    elif kind in VALUE_KINDS:
                        try:
                            values = read_value_object(item)
                        except ValueError as error:
                            changes.append(FeedInvalid(None, f"{origin}: {kind} {name}: {error}", origin))
                        else:
                            self._read_others.setdefault(kind, []).append((name, values, origin))
                    else:
                        self._read_others.setdefault(kind, []).append((name, item, origin))
                elif kind != _KIND:
                    shown = json.dumps(kind) if isinstance(kind, str) else "missing"
                    changes.append(FeedInvalid(None, f"{origin}: kind: {shown} is not {_KIND}", origin))
                elif not isinstance(name, str) or not name:
                    changes.append(FeedInvalid(None, f"{origin}: metadata.name: required", origin))
                else:
                    manifests.append((name, self._with_absolute_file_url(item, path.parent), origin))
        return manifests

    def _other_kinds(self) -> tuple[str, ...]:
        """The kinds besides GlobalThreatFeed that this folder is read for."""
        kinds: tuple[str, ...] = (_EXCEPTION_KIND,) if self.settings.on_exceptions is not None else ()
        if self.settings.on_webhooks is not None:
            kinds += (_WEBHOOK_KIND, *VALUE_KINDS)
        return kinds

    def _with_absolute_file_url(self, manifest: dict, base: Path) -> dict:
        if not self.settings.allow_file_urls:
            return manifest
        http = ((manifest.get("spec") or {}).get("pull") or {}).get("http")
        url = http.get("url") if isinstance(http, dict) else None
        if not isinstance(url, str) or not url.startswith("file:"):
            return manifest
        parts = urlsplit(url)
        raw = unquote(parts.netloc + parts.path) if parts.netloc in ("", ".", "..") else unquote(parts.path)
        if not raw or Path(raw).is_absolute():
            return manifest
        absolute = (base / raw).resolve().as_uri()
        spec = manifest["spec"]
        return {**manifest, "spec": {**spec, "pull": {**spec["pull"], "http": {**http, "url": absolute}}}}


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__
