"""The hostile captures of pcaps/hostile/ through the real `dnswatch-agent replay`: each replay ends, counts the
hostile messages as malformed, still reports what they held intact, and loses no event around them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pcaps import make_hostile

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = ROOT / "pcaps" / "hostile"
AGENT = [sys.executable, "-c", "import sys; from agent.shell.cli import main; sys.exit(main())"]
# A guard against a replay that never ends, not a speed target: each capture replays in well under a second.
REPLAY_TIMEOUT_S = 60


def test_committed_hostile_captures_are_what_the_generator_makes():
    assert make_hostile.check() == []


def replay(capture: Path) -> tuple[list[dict], str]:
    result = subprocess.run(
        [*AGENT, "replay", str(capture), "--feed", f"bad={HOSTILE / make_hostile.FEED_FILE}", "-o", "json"],
        capture_output=True, text=True, timeout=REPLAY_TIMEOUT_S, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()], result.stderr


@pytest.mark.parametrize("hostile", make_hostile.CAPTURES, ids=lambda hostile: hostile.file)
def test_hostile_capture_is_counted_and_loses_nothing_around_it(hostile):
    events, stderr = replay(HOSTILE / hostile.file)
    summary = stderr.strip().splitlines()[-1]
    assert f"{make_hostile.FLOOD + 2} DNS messages, {make_hostile.FLOOD} malformed" in summary
    counts: dict[str, int] = {}
    for event in events:  # a grown event is emitted again under its id: the latest count stands
        for name in event["record"]["suspicious_domains"]:
            counts[name] = event["record"]["count"]
    expected = {"before.evil.example": 1, "after.evil.example": 1}
    expected |= {name: make_hostile.FLOOD for name in hostile.matches_inside}
    assert counts == expected


@pytest.mark.parametrize("capture", make_hostile.TIMESTAMP_CAPTURES, ids=lambda capture: capture.file)
def test_packet_with_an_impossible_time_is_counted_skipped_and_loses_nothing_around_it(capture):
    events, stderr = replay(HOSTILE / capture.file)
    lines = stderr.strip().splitlines()
    assert "replayed 4 packets, 3 DNS messages, 1 malformed, 3 matched" in lines[-1]
    assert any(capture.file in line and "1 packets skipped" in line and "out of range" in line for line in lines)
    latest: dict[str, int] = {}
    for event in events:
        for name in event["record"]["suspicious_domains"]:
            latest[name] = event["record"]["count"]
    # `before` was asked twice before the bad packet: its second count was pending, and comes out at the end.
    assert latest == {"before.evil.example": 2, "after.evil.example": 1}
    assert make_hostile.TIMESTAMP_BAD_NAME not in latest
