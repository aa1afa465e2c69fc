"""A feed's context in the events it raises, through real parts: a feed server on 127.0.0.1, a collector
pulling from it, the agent replaying the demo capture as a subprocess, the events read back from the store.

Each stored match names the version of the set that matched and the entry's line in that version's body; the
event carries the feed's labels and severity. A new body (lines moved) or a new severity makes a new version,
which later events name; events stored before keep theirs. Without a collector, `--feed FILE` and
`--feed-manifest` give the same context from the files.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from harness.collector import RunningCollector, pulled
from harness.feedserver import FeedServer
from tests.agent.replaying import PCAPS, ROOT, replay_events, run_cli
from tests.agent.storedevents import stored
from tests.collector.running import db_url  # noqa: F401

C2_BODY = b"# c2 for the context tests\n0.0.0.0 Evil.Example\n*.tunnel.exfil.example.\n"
MOVED_BODY = b"# two lines more above\nnew.example\n" + C2_BODY


def c2_manifest(url: str, severity: int) -> str:
    return (f"apiVersion: dnswatch.dev/v1\nkind: GlobalThreatFeed\nmetadata:\n  name: c2\n  labels:\n"
            f"    team: secops\n    tier: gold\nspec:\n  content: DomainNameSet\n  severity: {severity}\n"
            f"  pull:\n    period: 1h\n    http:\n      url: {url}\n")


def replay_to(collector: RunningCollector, node: str) -> None:
    result = run_cli("replay", str(PCAPS / "demo.pcapng"), "--pods", str(PCAPS / "demo-pods.json"), "--node", node,
                     "--collector", collector.address, "--insecure")
    assert result.returncode == 0, result.stderr


def evil_match(events: dict[str, dict], node: str) -> tuple[dict, dict]:
    """(the event of node's query to evil.example, its match)."""
    [event] = [e for e in events.values() if e["host"] == node and e["record"]["qname"] == "evil.example"]
    [match] = event["record"]["matches"]
    return event, match


def sync(collector: RunningCollector, feed: str) -> None:
    result = subprocess.run([sys.executable, "-m", "consumer.cli", "--collector", collector.address, "--insecure",
                             "feeds", "sync", feed], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_stored_events_name_the_feeds_context_and_a_new_version_is_named_by_later_events(tmp_path: Path,
                                                                                          db_url: str):  # noqa: F811
    feeds_dir = tmp_path / "feeds"
    feeds_dir.mkdir()
    with FeedServer() as server:
        server.serve("/c2.txt", C2_BODY)
        (feeds_dir / "c2.yaml").write_text(c2_manifest(server.url("/c2.txt"), 60))
        with RunningCollector(db_url, feeds_dir) as collector:
            collector.wait_for(pulled("c2"), "c2 pulled")
            replay_to(collector, "node-1")
            first, match = evil_match(stored(db_url)[0], "node-1")
            assert first["severity"] == 60
            assert first["record"]["feed_labels"] == {"c2": {"team": "secops", "tier": "gold"}}
            assert match == {"name": "evil.example", "feed": "c2", "entry": "evil.example", "section": "question",
                             "feed_version": "1", "line": 2, "line_text": "0.0.0.0 Evil.Example"}
            wildcard = [m for e in stored(db_url)[0].values() for m in e["record"]["matches"]
                        if m["entry"] == "*.tunnel.exfil.example"]
            assert wildcard and all((m["line"], m["line_text"]) == (3, "*.tunnel.exfil.example.") for m in wildcard)

            # A new set, with the entry two lines further down: later events name version 2 and its line.
            server.serve("/c2.txt", MOVED_BODY)
            sync(collector, "c2")
            collector.wait_for(pulled("c2", version=2), "c2 version 2")
            replay_to(collector, "node-2")
            events = stored(db_url)[0]
            assert evil_match(events, "node-2")[1]["feed_version"] == "2"
            assert evil_match(events, "node-2")[1]["line"] == 4
            assert evil_match(events, "node-1") == (first, match)  # what was stored keeps the version it matched

            # A new severity alone is a new version too (the same entries and body): events say so.
            (feeds_dir / "c2.yaml").write_text(c2_manifest(server.url("/c2.txt"), 90))
            collector.wait_for(pulled("c2", version=3), "c2 version 3")
            replay_to(collector, "node-3")
            event, match = evil_match(stored(db_url)[0], "node-3")
            assert (event["severity"], match["feed_version"], match["line"]) == (90, "3", 4)


def test_a_severity_change_reaches_an_agent_as_an_empty_delta(tmp_path: Path, db_url: str):  # noqa: F811
    feeds_dir = tmp_path / "feeds"
    feeds_dir.mkdir()
    with FeedServer() as server:
        # Large enough that a delta is worth sending rather than the snapshot (a few bytes of a tiny set).
        server.serve("/c2.txt", C2_BODY + "".join(f"n{i}.example\n" for i in range(500)).encode())
        (feeds_dir / "c2.yaml").write_text(c2_manifest(server.url("/c2.txt"), 60))
        with RunningCollector(db_url, feeds_dir) as collector:
            collector.wait_for(pulled("c2"), "c2 pulled")
            (feeds_dir / "c2.yaml").write_text(c2_manifest(server.url("/c2.txt"), 20))
            collector.wait_for(pulled("c2", version=2), "c2 version 2")
            channel, call = collector.subscribe(have={"c2": 1})
            with channel:
                update = next(iter(call))
                call.cancel()
    assert update.WhichOneof("update") == "delta"
    assert (update.delta.from_version, update.delta.to_version, update.delta.severity) == (1, 2, 20)
    assert update.delta.entries == 502 and len(update.delta.added) + len(update.delta.removed) < 32
    assert dict(update.delta.labels) == {"team": "secops", "tier": "gold"}


def test_a_local_feed_file_gives_its_digest_as_version_and_its_lines(tmp_path: Path):
    feed = tmp_path / "c2.txt"
    feed.write_bytes(C2_BODY)
    events, _ = replay_events("--feed", f"c2={feed}")
    [event] = [e for e in events if e["record"]["qname"] == "evil.example"][-1:]
    [match] = event["record"]["matches"]
    version = "sha256:" + hashlib.sha256(C2_BODY).hexdigest()[:12]
    assert (match["feed_version"], match["line"], match["line_text"]) == (version, 2, "0.0.0.0 Evil.Example")
    assert (event["severity"], event["record"]["feed_labels"]) == (100, {"c2": {}})


def test_a_local_manifest_gives_its_labels_and_severity(tmp_path: Path):
    (tmp_path / "c2.txt").write_bytes(MOVED_BODY)
    (tmp_path / "c2.yaml").write_text(c2_manifest("file:c2.txt", 30))
    events, _ = replay_events("--feed-manifest", str(tmp_path / "c2.yaml"))
    [event] = [e for e in events if e["record"]["qname"] == "evil.example"][-1:]
    [match] = event["record"]["matches"]
    assert (event["severity"], event["record"]["feed_labels"]) == (30, {"c2": {"team": "secops", "tier": "gold"}})
    assert (match["line"], match["feed_version"]) == (4, "sha256:" + hashlib.sha256(MOVED_BODY).hexdigest()[:12])
