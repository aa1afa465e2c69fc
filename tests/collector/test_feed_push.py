"""Push feeds (docs/feeds.md#push-feeds): a GlobalThreatFeed with no `pull` takes its set from `dnswatch feeds
push NAME FILE` (the real CLI, as a process) against a real collector; the set is versioned, stored (a restart
keeps it) and distributed to agents like a pulled one, and a push the feed cannot take is refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from harness.collector import RunningCollector, pulled
from tests.collector.running import db_url, feed_server, feeds_dir  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
PUSH_MANIFEST = """\
apiVersion: projectcalico.org/v3
kind: GlobalThreatFeed
metadata:
  name: pushed
spec:
  content: DomainNameSet
  description: a push feed, as Calico writes them
"""


def dnswatch(collector: RunningCollector, *argv: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "consumer.cli", "--collector", collector.address, "--insecure",
                           *argv], cwd=REPO, input=stdin, capture_output=True, timeout=60)


def record(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)


def snapshot_of(collector: RunningCollector, name: str):
    channel, call = collector.subscribe()
    try:
        for update in call:
            if update.WhichOneof("update") == "synced":
                return None
            if update.WhichOneof("update") == "snapshot" and update.snapshot.name == name:
                return update.snapshot
    finally:
        call.cancel()
        channel.close()


def test_a_push_feed_takes_pushed_sets_keeps_them_across_a_restart_and_reaches_agents(
        tmp_path, db_url, feeds_dir, feed_server):
    (feeds_dir / "pushed.yaml").write_text(PUSH_MANIFEST)
    lines = tmp_path / "set.txt"
    lines.write_text("a.example\n0.0.0.0 b.example\n@@||allowed.example^\n")
    with RunningCollector(db_url, feeds_dir) as collector:
        collector.wait_for(lambda feeds: "pushed" in feeds and pulled("c2")(feeds), "both feeds read")
        assert collector.feeds()["pushed"].push and collector.feeds()["pushed"].status.version == 0

        pushed = record(dnswatch(collector, "feeds", "push", "pushed", str(lines), "-o", "json"))
        assert (pushed["version"], pushed["entries"], pushed["rejectedLines"], pushed["push"]) == (1, 2, 1, True)
        assert pushed["rejectedSamples"] == [{"line": 3, "text": "@@||allowed.example^",
                                              "reason": "an adblock exception asks for allow-listing, which is not done"}]
        snapshot = snapshot_of(collector, "pushed")
        assert snapshot is not None and (snapshot.version, snapshot.entries) == (1, 2)

        again = record(dnswatch(collector, "feeds", "push", "pushed", "-", "-o", "json", stdin=lines.read_bytes()))
        assert again["version"] == 1  # the set in force again: no new version

        document = json.dumps({"data": [{"d": "c.example"}, {"d": "a.example"}, {"d": 7}]}).encode()
        structured = record(dnswatch(collector, "feeds", "push", "pushed", "-", "--format",
                                     '{json: {path: "$.data[*].d"}}', "-o", "json", stdin=document))
        assert (structured["version"], structured["entries"], structured["rejectedLines"]) == (2, 2, 1)
        assert structured["rejectedSamples"][0]["reason"] == "a JSON value that is not a string"

        empty = dnswatch(collector, "feeds", "push", "pushed", "-", stdin=b"# nothing\nnot a name\n")
        assert empty.returncode == 1 and b"no usable DomainNameSet entry" in empty.stderr
        assert b"the set in force stays" in empty.stderr
        assert collector.feeds()["pushed"].status.version == 2

        to_pulled = dnswatch(collector, "feeds", "push", "c2", str(lines))
        assert to_pulled.returncode == 1 and b"is pulled from its spec.pull.http.url" in to_pulled.stderr
        unknown = dnswatch(collector, "feeds", "push", "nope", str(lines))
        assert unknown.returncode == 1 and b"no feed named 'nope'" in unknown.stderr
        bad_format = dnswatch(collector, "feeds", "push", "pushed", str(lines), "--format", "{xml: {}}")
        assert bad_format.returncode == 2 and b"spec.pull.http.format.xml: unknown field" in bad_format.stderr
        sync = dnswatch(collector, "feeds", "sync", "pushed")
        assert sync.returncode == 1 and b"is a push feed" in sync.stderr

    with RunningCollector(db_url, feeds_dir) as restarted:
        feeds = restarted.wait_for(lambda feeds: "pushed" in feeds, "the push feed restored")
        assert (feeds["pushed"].status.version, feeds["pushed"].status.entries) == (2, 2)
        described = dnswatch(restarted, "feeds", "get", "pushed")
        assert described.returncode == 0
        text = described.stdout.decode()
        assert "push (dnswatch feeds push pushed FILE)" in text and "a JSON value that is not a string" in text
