"""`dnswatch feeds list|get|sync` against a running collector, and `dnswatch-collector`'s flags, exit
statuses and clean stop on SIGTERM/SIGINT (as a real process)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from agent.core.feedformats import parse_feed_body
from agent.core.feedlines import DOMAIN_NAME_SET
from collector.core.status import entries_sha256
from collector.shell import cli
from collector.shell import main as collector_main
from tests.collector.running import (BODY_V1, BODY_V2, RunningCollector, db_url, feed_server,  # noqa: F401
                                     feeds_dir, pulled)

SPEC_FIELDS = ["name", "content", "mode", "entries", "rejectedLines", "lastSuccessfulSync", "errorConditions",
               "version", "sha256"]
REPO = Path(__file__).resolve().parents[2]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_feeds_list_get_and_sync(capsys, db_url, feeds_dir, feed_server):
    with RunningCollector(db_url, feeds_dir) as collector:
        collector.wait_for(pulled("c2", "ips"), "both feeds pulled")
        address = collector.address

        code, out, err = run_cli(capsys, "--collector", address, "--insecure", "feeds", "list", "-o", "json")
        assert code == 0 and err == ""
        records = [json.loads(line) for line in out.splitlines()]
        assert [r["name"] for r in records] == ["c2", "ips"]
        c2 = records[0]
        assert list(c2) == SPEC_FIELDS
        parsed = parse_feed_body(BODY_V1, DOMAIN_NAME_SET)
        assert (c2["content"], c2["mode"], c2["entries"], c2["rejectedLines"], c2["version"]) == (
            "DomainNameSet", "Enabled", len(parsed.entries), 1, 1)
        assert c2["sha256"] == entries_sha256(parsed.entries)
        assert c2["lastSuccessfulSync"].endswith("Z")
        assert c2["errorConditions"][0]["type"] == "RejectedLines"

        code, out, _ = run_cli(capsys, "--collector", address, "--insecure", "feeds", "get", "c2", "-o", "yaml")
        got = yaml.safe_load(out)
        assert code == 0 and got["name"] == "c2" and got["url"] == feed_server.url("/c2.txt")
        assert got["periodSeconds"] == 3600 and got["version"] == 1

        code, out, _ = run_cli(capsys, "--collector", address, "--insecure", "feeds", "list")
        header, *rows = out.splitlines()
        assert header.split()[:3] == ["NAME", "CONTENT", "MODE"] and rows[0].split()[:5] == [
            "c2", "DomainNameSet", "Enabled", str(len(parsed.entries)), "1"]

        pulls = feed_server.count("/c2.txt")
        feed_server.serve("/c2.txt", BODY_V2)
        code, out, _ = run_cli(capsys, "--collector", address, "--insecure", "feeds", "sync", "c2", "-o", "json")
        synced = json.loads(out)
        assert code == 0 and synced["version"] == 2
        assert synced["sha256"] == entries_sha256(parse_feed_body(BODY_V2, DOMAIN_NAME_SET).entries)
        assert feed_server.count("/c2.txt") == pulls + 1

        code, out, err = run_cli(capsys, "--collector", address, "--insecure", "feeds", "get", "nope")
        assert code == 1 and out == "" and err.count("\n") == 1 and "nope" in err


def test_an_unreachable_collector_is_one_line_and_exit_2(capsys):
    code, out, err = run_cli(capsys, "--collector", f"127.0.0.1:{free_port()}", "--insecure", "feeds", "list")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "cannot be reached" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--listen", "127.0.0.1:0"], "TLS needs --tls-cert FILE and --tls-key FILE (or --insecure"),
        (["--listen", "nowhere", "--insecure"], "--listen"),
        (["--listen", "127.0.0.1:0", "--insecure", "--feeds-dir", "/no/such/folder"], "--feeds-dir"),
    ],
)
def test_bad_collector_flags_are_one_line_and_exit_2(capsys, tmp_path, flags, says):
    code = collector_main.main(["--db", f"sqlite:///{tmp_path / 'db.sqlite'}", *flags])
    _, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and says in err


@pytest.mark.parametrize("db", ["mysql://somewhere/db", "sqlite:///{tmp}/a-file/db.sqlite",
                                "sqlite:///{tmp}/not-a-database.sqlite"])
def test_an_unusable_db_is_one_line_and_exit_2(capsys, tmp_path, db):
    (tmp_path / "a-file").write_text("")
    (tmp_path / "not-a-database.sqlite").write_bytes(b"this is no SQLite file, not at all" * 100)
    (tmp_path / "feeds").mkdir()
    code = collector_main.main(["--db", db.format(tmp=tmp_path), "--listen", "127.0.0.1:0", "--insecure",
                                "--feeds-dir", str(tmp_path / "feeds")])
    _, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.startswith("dnswatch-collector:")]
    assert code == 2 and len(lines) == 1 and "--db" in lines[0] and "Traceback" not in err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_collector_process_stops_cleanly_on_a_signal(tmp_path, feeds_dir, capfd, signum):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "collector.shell.main", "--db", f"sqlite:///{tmp_path / 'db.sqlite'}",
         "--listen", f"127.0.0.1:{port}", "--feeds-dir", str(feeds_dir), "--insecure"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            code = cli.main(["--collector", f"127.0.0.1:{port}", "--insecure", "feeds", "list", "-o", "json"])
            if code == 0:
                break
            assert process.poll() is None and time.monotonic() < deadline, "the collector did not start"
            time.sleep(0.1)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr and "stopping" in stderr
