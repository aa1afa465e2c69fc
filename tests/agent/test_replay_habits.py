"""`dnswatch-agent replay` with a capture tool's habits, as a real process: `-r FILE`, `-` for standard input,
gzip and zstd captures told by their bytes, a progress line across many files on a terminal only, a summary
with thousands separators that names emissions and events apart, `--fail-on-match` for CI, one duration
syntax, and one line with exit 2 for a bad flag."""

from __future__ import annotations

import gzip
import json
import os
import pty
import re
import select
import subprocess
import sys
import time

import pytest
import zstandard

from tests.agent.replaying import PCAPS, ROOT, demo_collector, run_cli  # noqa: F401
from tests.collector.running import db_url  # noqa: F401

DEMO = PCAPS / "demo.pcapng"
FEEDS = ["--feed-manifest", str(PCAPS / "demo-feeds.yaml"), "--pods", str(PCAPS / "demo-pods.json"),
         "--node", "node-1"]
SUMMARY = re.compile(r"replayed (?P<packets>[\d,]+) packets, (?P<messages>[\d,]+) DNS messages, "
                     r"(?P<malformed>[\d,]+) malformed, (?P<matched>[\d,]+) matched, "
                     r"(?P<emissions>[\d,]+) emissions? of (?P<events>[\d,]+) events? in (?P<seconds>[\d.]+)s")


def summary(stderr: str) -> dict[str, str]:
    """The counts of the summary line (the last line, unless the collector's follows it)."""
    found = [SUMMARY.search(line) for line in stderr.strip().splitlines()[-2:] if SUMMARY.search(line)]
    assert found, stderr
    return found[-1].groupdict()


def events_of(stdout: str) -> dict[str, dict]:
    latest = {}
    for line in stdout.splitlines():
        event = json.loads(line)
        latest[event["id"]] = event
    return latest


def test_the_summary_names_emissions_and_events_apart():
    result = run_cli("replay", str(DEMO), *FEEDS, "-o", "json")
    assert result.returncode == 0, result.stderr
    counts = summary(result.stderr)
    # pcaps/demo-expected.json: 13 emissions, two of them a grown event sent again under its id.
    assert (counts["emissions"], counts["events"]) == ("13", "11")
    assert len(result.stdout.splitlines()) == 13 and len(events_of(result.stdout)) == 11


def test_thousands_separators_in_the_summary():
    result = run_cli("replay", str(DEMO), str(DEMO), str(DEMO), *FEEDS, "-o", "json")
    assert result.returncode == 0, result.stderr
    counts = summary(result.stderr)
    assert counts["packets"] == "1,422" and counts["messages"] == "1,368"


def test_dash_r_and_standard_input_replay_as_a_file_does(tmp_path):
    by_path = run_cli("replay", str(DEMO), *FEEDS)
    by_r = run_cli("replay", "-r", str(DEMO), *FEEDS)
    by_stdin = subprocess.run([sys.executable, "-m", "agent.shell.cli", "replay", "-", *FEEDS], cwd=ROOT,
                              input=DEMO.read_bytes(), capture_output=True, timeout=120)
    assert by_path.returncode == by_r.returncode == by_stdin.returncode == 0, by_stdin.stderr
    assert by_path.stdout == by_r.stdout == by_stdin.stdout.decode()
    assert summary(by_stdin.stderr.decode())["emissions"] == "13"


@pytest.mark.parametrize("pack", [gzip.compress, zstandard.ZstdCompressor().compress], ids=["gzip", "zstd"])
def test_compressed_captures_are_told_by_their_bytes_not_their_name(tmp_path, pack):
    plain = run_cli("replay", str(DEMO), *FEEDS)
    packed = tmp_path / "capture.pcapng"  # no .gz or .zst: the name says nothing
    packed.write_bytes(pack(DEMO.read_bytes()))
    result = run_cli("replay", str(packed), *FEEDS)
    assert result.returncode == 0, result.stderr
    assert result.stdout == plain.stdout


def test_a_streamed_zstd_capture_without_a_content_size(tmp_path):
    packed = tmp_path / "stream.pcap"
    with open(packed, "wb") as out, zstandard.ZstdCompressor().stream_writer(out) as writer:
        writer.write(DEMO.read_bytes())
    assert run_cli("replay", str(packed), *FEEDS).stdout == run_cli("replay", str(DEMO), *FEEDS).stdout


def test_a_damaged_compressed_capture_is_one_line(tmp_path):
    broken = tmp_path / "broken.pcap"
    broken.write_bytes(gzip.compress(DEMO.read_bytes())[:200])
    result = run_cli("replay", str(broken), *FEEDS)
    lines = [line for line in result.stderr.splitlines() if line.startswith("dnswatch-agent: error:")]
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(lines) == 1 and f"{broken}: a damaged gzip capture" in lines[0]


def test_fail_on_match_exits_3_when_anything_matched(tmp_path):
    matched = run_cli("replay", str(DEMO), *FEEDS, "--fail-on-match")
    assert matched.returncode == 3 and summary(matched.stderr)["matched"] == "62"
    assert run_cli("replay", str(DEMO), *FEEDS).returncode == 0  # without the flag, a match is no failure
    (tmp_path / "quiet.txt").write_text("nothing-in-the-capture.example\n")
    clean = run_cli("replay", str(DEMO), "--feed", f"quiet={tmp_path / 'quiet.txt'}", "--fail-on-match")
    assert clean.returncode == 0 and summary(clean.stderr)["matched"] == "0"


def test_the_window_takes_the_duration_syntax_and_plain_seconds():
    by_seconds = run_cli("replay", str(DEMO), *FEEDS, "--window", "60")
    by_unit = run_cli("replay", str(DEMO), *FEEDS, "--window", "1m")
    by_old_suffix = run_cli("replay", str(DEMO), *FEEDS, "--window", "60s")
    assert by_seconds.returncode == by_unit.returncode == by_old_suffix.returncode == 0, by_unit.stderr
    assert by_seconds.stdout == by_unit.stdout == by_old_suffix.stdout
    shorter = run_cli("replay", str(DEMO), *FEEDS, "--window", "5s")
    assert events_of(shorter.stdout).keys() != events_of(by_unit.stdout).keys()


@pytest.mark.parametrize(("args", "says"), [
    (["--window", "soon"], "argument --window: 'soon' is not a duration: 30s, 15m, 2h, 1d, 1h30m"),
    (["--window", "0"], "argument --window: '0': expected more than 0 seconds"),
    (["--collector-timeout", "nan"], "argument --collector-timeout: 'nan': expected more than 0 seconds"),
    (["--aggregate-by", "cluster"], "invalid choice: 'cluster'"),
    (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
])
def test_a_bad_flag_is_one_line_that_says_what_to_do(args, says):
    result = run_cli("replay", str(DEMO), *FEEDS, *args)
    assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and says in result.stderr, result.stderr
    assert result.stderr.rstrip().endswith("(see dnswatch-agent replay --help)") or "unrecognized" in result.stderr


def test_no_capture_or_stdin_twice_is_one_line():
    nothing = run_cli("replay", *FEEDS)
    assert nothing.returncode == 2 and "replay needs a capture: PCAP..., -r PCAP, or - for standard input" in \
        nothing.stderr
    twice = run_cli("replay", "-", "-r", "-", *FEEDS)
    assert twice.returncode == 2 and "standard input (-) can be replayed once" in twice.stderr


def test_without_pods_one_line_says_clients_are_reported_by_address():
    result = run_cli("replay", str(DEMO), "--feed-manifest", str(PCAPS / "demo-feeds.yaml"))
    assert result.returncode == 0
    notes = [line for line in result.stderr.splitlines() if "--pods" in line]
    assert notes == ["no --pods: clients are reported by address (give `kubectl get pods -A -o json` output to "
                     "name their pods)"]
    assert "--pods" not in run_cli("replay", str(DEMO), *FEEDS).stderr


def test_spool_dir_is_the_replays_flag_as_the_readme_shows_it(demo_collector, tmp_path):
    spool = tmp_path / "spool"
    result = run_cli("replay", str(DEMO), "--collector", demo_collector.address, "--insecure", "--pods",
                     str(PCAPS / "demo-pods.json"), "--node", "node-1", "--spool-dir", str(spool))
    assert result.returncode == 0, result.stderr
    assert (spool / "spool.log").exists()
    assert result.stderr.strip().splitlines()[-1].endswith("11 events acknowledged")
    assert summary(result.stderr)["events"] == "11"


def read_terminal(master: int, process: subprocess.Popen, timeout: float = 120) -> bytes:
    """Everything written to the terminal whose other end is `master`, until the process ends."""
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the other end closed
                break
            if not chunk:
                break
            seen += chunk
        elif process.poll() is not None:
            break
    return seen


def test_progress_across_many_files_on_a_terminal_only():
    files = [str(DEMO)] * 4
    master, slave = pty.openpty()
    try:
        process = subprocess.Popen([sys.executable, "-m", "agent.shell.cli", "replay", *files, *FEEDS],
                                   cwd=ROOT, stdout=subprocess.DEVNULL, stderr=slave)
        os.close(slave)
        screen = read_terminal(master, process).decode(errors="replace")
        assert process.wait(timeout=30) == 0
    finally:
        os.close(master)
    # The share of all the bytes replayed before each file, then the line is cleared for the summary.
    for share, n in (("0%", 1), ("25%", 2), ("50%", 3), ("75%", 4)):
        assert re.search(rf"\r\x1b\[K +{share}  demo.pcapng \({n}/4\)", screen), screen
    assert "replayed 1,896 packets" in screen
    piped = run_cli("replay", *files, *FEEDS)
    assert "%" not in piped.stderr and "\x1b[K" not in piped.stderr  # not a terminal: no progress
