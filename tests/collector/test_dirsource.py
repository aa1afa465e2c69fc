"""FeedsDirSource: a folder of GlobalThreatFeed manifests, read and followed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
from pathlib import Path

from collector.core.watchloop import FeedInvalid, FeedDeleted, FeedsSynced, FeedUpserted
from collector.shell.dirsource import DirSourceSettings, FeedsDirSource

PCAPS = Path(__file__).resolve().parents[2] / "pcaps"


def manifest(name: str, url: str = "https://feeds.example/c2.txt", api: str = "dnswatch.dev/v1", **spec) -> str:
    body = {"content": "DomainNameSet", "pull": {"period": "24h", "http": {"url": url}}, **spec}
    return json.dumps({"apiVersion": api, "kind": "GlobalThreatFeed", "metadata": {"name": name}, "spec": body})


def write(path: Path, text: str) -> None:
    """Write and make sure the modification time moves, whatever the file system's clock granularity."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    if path.stat().st_mtime_ns <= before:
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def summary(changes) -> list[tuple]:
    out = []
    for change in changes:
        if isinstance(change, FeedUpserted):
            out.append(("upserted", change.spec.name, change.spec.url))
        elif isinstance(change, FeedDeleted):
            out.append(("removed", change.name))
        elif isinstance(change, FeedInvalid):
            out.append(("invalid", change.name))
        else:
            out.append(("synced", change.count))
    return out


def test_reads_every_manifest_file_multi_document_lists_and_calico(tmp_path):
    write(tmp_path / "a.yaml", manifest("c2") + "\n---\n" + manifest("calico", api="projectcalico.org/v3"))
    write(tmp_path / "b.yml", json.dumps({"apiVersion": "v1", "kind": "List", "items": [json.loads(manifest("l1"))]}))
    write(tmp_path / "c.json", manifest("j1", "http://feeds.example/j1"))
    write(tmp_path / "notes.txt", "not a manifest")
    write(tmp_path / ".hidden.yaml", "{{{")
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub" / "d.yaml", manifest("nested"))
    source = FeedsDirSource(DirSourceSettings(tmp_path))
    assert summary(source.poll()) == [
        ("upserted", "c2", "https://feeds.example/c2.txt"),
        ("upserted", "calico", "https://feeds.example/c2.txt"),
        ("upserted", "j1", "http://feeds.example/j1"),
        ("upserted", "l1", "https://feeds.example/c2.txt"),
        ("synced", 4),
    ]
    assert source.poll() == []


def test_new_changed_and_deleted_files_are_picked_up(tmp_path):
    source = FeedsDirSource(DirSourceSettings(tmp_path))
    assert summary(source.poll()) == [("synced", 0)]
    write(tmp_path / "a.yaml", manifest("c2"))
    assert summary(source.poll()) == [("upserted", "c2", "https://feeds.example/c2.txt"), ("synced", 1)]
    write(tmp_path / "b.yaml", manifest("exfil", "https://feeds.example/exfil.txt"))
    assert summary(source.poll()) == [("upserted", "exfil", "https://feeds.example/exfil.txt"), ("synced", 2)]
    write(tmp_path / "a.yaml", manifest("c2", "https://feeds.example/c2-v2.txt"))
    assert summary(source.poll()) == [("upserted", "c2", "https://feeds.example/c2-v2.txt"), ("synced", 2)]
    write(tmp_path / "a.yaml", "# a comment changes nothing the feed depends on\n" + manifest("c2", "https://feeds.example/c2-v2.txt"))
    assert summary(source.poll()) == [("synced", 2)]
    (tmp_path / "b.yaml").unlink()
    assert summary(source.poll()) == [("removed", "exfil"), ("synced", 1)]
    write(tmp_path / "a.yaml", manifest("renamed", "https://feeds.example/c2-v2.txt"))
    assert summary(source.poll()) == [("upserted", "renamed", "https://feeds.example/c2-v2.txt"), ("removed", "c2"), ("synced", 1)]


def test_a_bad_file_is_reported_and_never_stops_the_others(tmp_path):
    write(tmp_path / "good.yaml", manifest("c2"))
    write(tmp_path / "broken.yaml", "apiVersion: [unclosed\n")
    source = FeedsDirSource(DirSourceSettings(tmp_path))
    changes = source.poll()
    assert summary(changes) == [("invalid", None), ("upserted", "c2", "https://feeds.example/c2.txt"), ("synced", 1)]
    assert "broken.yaml: cannot read" in changes[0].message
    write(tmp_path / "broken.yaml", manifest("exfil"))
    assert summary(source.poll()) == [("upserted", "exfil", "https://feeds.example/c2.txt"), ("synced", 2)]
    write(tmp_path / "broken.yaml", manifest("exfil")[:40])  # caught half-written: exfil stays in force
    assert summary(source.poll()) == [("invalid", None), ("synced", 2)]
    write(tmp_path / "broken.yaml", b"\xff\xfe\x00bad".decode("latin-1"))
    assert summary(source.poll())[0] == ("invalid", None)
    (tmp_path / "broken.yaml").unlink()
    assert summary(source.poll()) == [("removed", "exfil"), ("synced", 1)]


def test_invalid_documents_are_reported_beside_valid_ones(tmp_path):
    docs = [
        manifest("c2"),
        manifest("slow", pull={"period": "1m", "http": {"url": "https://feeds.example/x"}}),
        manifest("ftp", "ftp://feeds.example/x"),
        json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other"}}),
        json.dumps({"apiVersion": "dnswatch.dev/v1", "kind": "GlobalThreatFeed", "spec": {}}),
    ]
    write(tmp_path / "feeds.yaml", "\n---\n".join(docs))
    source = FeedsDirSource(DirSourceSettings(tmp_path))
    changes = source.poll()
    assert summary(changes) == [
        ("invalid", None),
        ("invalid", None),
        ("upserted", "c2", "https://feeds.example/c2.txt"),
        ("invalid", "ftp"),
        ("invalid", "slow"),
        ("synced", 1),
    ]
    messages = [c.message for c in changes if isinstance(c, FeedInvalid)]
    assert "document 4: kind" in messages[0] and "document 5: metadata.name: required" in messages[1]
    assert "spec.pull.http.url" in messages[2] and "spec.pull.period" in messages[3]
    assert changes[4].origin.endswith("feeds.yaml document 2")


def test_a_name_defined_twice_comes_from_the_first_file(tmp_path):
    write(tmp_path / "a.yaml", manifest("c2", "https://a.example/c2"))
    write(tmp_path / "b.yaml", manifest("c2", "https://b.example/c2"))
    source = FeedsDirSource(DirSourceSettings(tmp_path))
    changes = source.poll()
    assert summary(changes) == [("invalid", "c2"), ("upserted", "c2", "https://a.example/c2"), ("synced", 1)]
    assert "already defined in" in changes[0].message and "a.yaml" in changes[0].message
    write(tmp_path / "other.yaml", manifest("x"))
    assert summary(source.poll()) == [("upserted", "x", "https://feeds.example/c2.txt"), ("synced", 2)]
    (tmp_path / "a.yaml").unlink()
    assert summary(source.poll()) == [("upserted", "c2", "https://b.example/c2"), ("synced", 2)]


def test_file_urls_only_when_allowed_and_relative_to_the_manifest(tmp_path):
    write(tmp_path / "demo.yaml", (PCAPS / "demo-feeds.yaml").read_text())
    refused = summary(FeedsDirSource(DirSourceSettings(tmp_path)).poll())
    assert refused == [("invalid", "badips"), ("invalid", "c2"), ("invalid", "exfil"), ("synced", 0)]
    source = FeedsDirSource(DirSourceSettings(PCAPS, allow_file_urls=True))
    changes = [c for c in source.poll() if isinstance(c, FeedUpserted)]
    urls = {c.spec.name: c.spec.url for c in changes}
    assert urls == {name: (PCAPS / f"demo-{name}.txt").as_uri() for name in ("c2", "exfil", "badips")}


def test_a_missing_folder_is_said_once_and_keeps_the_feeds(tmp_path):
    folder = tmp_path / "feeds"
    folder.mkdir()
    write(folder / "a.yaml", manifest("c2"))
    source = FeedsDirSource(DirSourceSettings(folder))
    source.poll()
    (folder / "a.yaml").rename(tmp_path / "a.yaml")
    folder.rmdir()
    assert summary(source.poll()) == [("invalid", None)]
    assert source.poll() == []
    folder.mkdir()
    (tmp_path / "a.yaml").rename(folder / "a.yaml")
    assert source.poll() == []  # the same file is back: nothing changed
    (folder / "a.yaml").unlink()
    assert summary(source.poll()) == [("removed", "c2"), ("synced", 0)]


def test_run_and_changes_follow_the_folder(tmp_path):
    write(tmp_path / "a.yaml", manifest("c2"))
    source = FeedsDirSource(DirSourceSettings(tmp_path, poll_seconds=0.02))
    seen: list = []
    thread = threading.Thread(target=source.run, args=(seen.append,))
    thread.start()
    try:
        wait_for(lambda: any(isinstance(c, FeedsSynced) for c in seen))
        write(tmp_path / "b.yaml", manifest("exfil"))
        wait_for(lambda: len(seen) >= 4)
    finally:
        source.close()
        thread.join(2)
    assert summary(seen)[:4] == [("upserted", "c2", "https://feeds.example/c2.txt"), ("synced", 1),
                                 ("upserted", "exfil", "https://feeds.example/c2.txt"), ("synced", 2)]  # fmt: skip

    async def follow() -> list[tuple]:
        folder_source = FeedsDirSource(DirSourceSettings(tmp_path, poll_seconds=0.02))
        got = []
        async with contextlib.aclosing(folder_source.changes()) as changes:
            async for change in changes:
                got += summary([change])
                if isinstance(change, FeedsSynced) and change.count == 2:
                    (tmp_path / "b.yaml").unlink()
                if isinstance(change, FeedDeleted):
                    break
        return got

    assert asyncio.run(asyncio.wait_for(follow(), 30))[-1] == ("removed", "exfil")
