"""The demo replay for tests: `dnswatch-agent replay` as a subprocess, its events, and a collector serving
the demo feeds.

The `demo_collector` fixture asks for `db_url` (tests.collector.running): a test module using it imports
both.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.collector import RunningCollector, pulled
from harness.feedserver import FeedServer

ROOT = Path(__file__).resolve().parents[2]
PCAPS = ROOT / "pcaps"
DEMO_FEEDS = {"c2": "demo-c2.txt", "exfil": "demo-exfil.txt", "badips": "demo-badips.txt"}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent.shell.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def replay_events(*feed_flags: str) -> tuple[list[dict], str]:
    """Every event the demo replay prints (in order), and its stderr."""
    result = run_cli("replay", str(PCAPS / "demo.pcapng"), *feed_flags, "--pods", str(PCAPS / "demo-pods.json"),
                     "--node", "node-1", "-o", "json")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()], result.stderr


def comparable(event: dict) -> dict:
    """The event without what differs between a replay with local feeds and one fed by the collector: the
    versions (digests of the local bodies, the collector's numbers) and the lines (which the collector fills
    in as it stores the events)."""
    matches = [{**m, "feed_version": None, "line": None, "line_text": None} for m in event["record"]["matches"]]
    return {**event, "record": {**event["record"], "matches": matches}}


def summary(event: dict) -> tuple:
    """What the ground truth says of an event: its pod, what matched, and its count."""
    record = event["record"]
    return (
        event["source_namespace"], event["source_name"], event["source_ip"],
        tuple(record["suspicious_domains"]), tuple(record["suspicious_ips"]), tuple(record["feeds"]),
        record["count"],
    )


@pytest.fixture
def demo_collector(tmp_path: Path, db_url: str) -> Iterator[RunningCollector]:
    """A collector pulling the demo feeds (pcaps/demo-feeds.yaml, its URLs pointed at a feed server)."""
    with FeedServer() as server:
        manifests = (PCAPS / "demo-feeds.yaml").read_text()
        for name, file in DEMO_FEEDS.items():
            server.serve(f"/{file}", (PCAPS / file).read_bytes())
            manifests = manifests.replace(f"url: file:{file}", f"url: {server.url('/' + file)}")
        assert "url: file:" not in manifests and "matchSubdomains: true" in manifests
        feeds_dir = tmp_path / "feeds"
        feeds_dir.mkdir()
        (feeds_dir / "demo-feeds.yaml").write_text(manifests)
        with RunningCollector(db_url, feeds_dir) as collector:
            collector.wait_for(pulled(*DEMO_FEEDS), "the demo feeds pulled")
            yield collector
