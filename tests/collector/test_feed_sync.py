"""`dnswatch feeds sync` against a collector whose feed server stalls: the answer comes within the pull timeout,
with what the pull did, however the server stalls (silent, or trickling a byte at a time)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from collector.core.pulling import RetryPolicy
from consumer import cli
from collector.shell.puller import PullerSettings
from harness.collector import RunningCollector, free_port, manifest
from harness.feedserver import TIMEOUT, TRICKLE, FeedServer
from tests.collector.running import BODY_V1, db_url  # noqa: F401

REPO = Path(__file__).resolve().parents[2]

# Four attempts of up to 1 s each, and backoff between them, would hold a sync about 4 s (123 s with the
# defaults): the pull timeout of 1.5 s must end it, and the sync with it.
STALLING = PullerSettings(connect_timeout=1.0, read_timeout=1.0, pull_timeout=1.5,
                          retry=RetryPolicy(attempts=4, base_seconds=0.2, cap_seconds=0.5))


@pytest.mark.parametrize(("mode", "options"), [(TIMEOUT, {}), (TRICKLE, {"delay": 0.05})],
                         ids=["silent", "trickling"])
def test_a_sync_of_a_stalled_feed_returns_within_the_pull_timeout(tmp_path, capsys, db_url, mode, options):
    with FeedServer() as server:
        server.serve("/c2.txt", BODY_V1)
        server.fault("/c2.txt", mode, **options)
        folder = tmp_path / "feeds"
        folder.mkdir()
        (folder / "c2.yaml").write_text(manifest("c2", server.url("/c2.txt")))
        with RunningCollector(db_url, folder, puller_settings=STALLING) as collector:
            collector.wait_for(lambda feeds: "c2" in feeds, "c2 known")  # its first pull is under way
            start = time.monotonic()
            code = cli.main(["--collector", collector.address, "--insecure", "feeds", "sync", "c2", "-o", "json"])
            seconds = time.monotonic() - start
            out, err = capsys.readouterr()

            server.clear_faults("/c2.txt")  # the server recovers: the next sync takes the set
            assert cli.main(["--collector", collector.address, "--insecure", "feeds", "sync", "c2"]) == 0
            recovered = capsys.readouterr()
    assert code == 1
    assert seconds < 3.0  # one pull timeout and the call's own overhead, not four stalled attempts
    assert err.startswith("dnswatch: feed c2: the pull failed: GET http://127.0.0.1:")
    assert "within 1.5 s, the pull timeout" in err and err.count("\n") == 1
    shown = json.loads(out)
    assert shown["name"] == "c2" and shown["errorConditions"][-1]["type"] == "PullFailed"
    assert recovered.err == "" and "c2" in recovered.out and "PullFailed" not in recovered.out


def test_the_collector_flag_sets_the_pull_timeout_a_sync_waits_for(tmp_path, capsys):
    """`dnswatch-collector --pull-timeout` reaches the puller: a real collector process, its defaults
    otherwise (a 30 s read timeout), answers a sync of a silent feed server once its pull timeout is over."""
    with FeedServer() as server:
        server.serve("/c2.txt", BODY_V1)
        server.fault("/c2.txt", TIMEOUT)
        folder = tmp_path / "feeds"
        folder.mkdir()
        (folder / "c2.yaml").write_text(manifest("c2", server.url("/c2.txt")))
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "collector.shell.main", "--db", f"sqlite:///{tmp_path / 'db.sqlite'}",
             "--listen", f"127.0.0.1:{port}", "--feeds-dir", str(folder), "--insecure", "--pull-timeout", "2"],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        try:
            address = ["--collector", f"127.0.0.1:{port}", "--insecure"]
            deadline = time.monotonic() + 30
            while cli.main([*address, "feeds", "get", "c2", "-o", "json"]) != 0:
                assert process.poll() is None and time.monotonic() < deadline, "the collector did not start"
                time.sleep(0.1)
            capsys.readouterr()
            code = cli.main([*address, "feeds", "sync", "c2", "-o", "json"])
            _, err = capsys.readouterr()
        finally:
            process.kill()
            process.communicate()
    assert code == 1
    assert "within 2 s, the pull timeout" in err and err.count("\n") == 1
