"""`dnswatch feeds sync` against a collector whose feed server stalls: the answer comes within the pull timeout,
with what the pull did, however the server stalls (silent, or trickling a byte at a time)."""

from __future__ import annotations

import json
import time

import pytest

from collector.core.pulling import RetryPolicy
from collector.shell import cli
from collector.shell.puller import PullerSettings
from tests.collector.running import BODY_V1, RunningCollector, db_url, manifest  # noqa: F401
from tests.feedserver import TIMEOUT, TRICKLE, FeedServer

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
