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

from dnswatch.feeds.formats import parse_feed_body
from dnswatch.feeds.lines import DOMAIN_NAME_SET
from dnswatch.feeds.status import entries_sha256
from consumer import cli
from collector.shell import main as collector_main
from harness.collector import RunningCollector, pulled
from tests.collector.running import BODY_V1, BODY_V2, db_url, feed_server, feeds_dir  # noqa: F401
from tests.collector.securitykit import pki, tls_flags  # noqa: F401

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
        (["--listen", "127.0.0.1:0", "--insecure", "--pull-timeout", "0"], "--pull-timeout 0: expected"),
        (["--listen", "127.0.0.1:0", "--insecure", "--pull-timeout", "nan"], "--pull-timeout nan: expected"),
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


def collector_process(*flags: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """`dnswatch-collector` run to its end as a real process."""
    return subprocess.run([sys.executable, "-m", "collector.shell.main", *flags], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "PYTHONPATH": str(REPO)})


def assert_one_line(result: subprocess.CompletedProcess, *says: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("dnswatch-collector: error: "), result.stderr
    for words in says:
        assert words in lines[0], lines[0]


@pytest.mark.parametrize(("flags", "says"), [
    (["--tls-cert", "{tmp}/nope.pem", "--tls-key", "{tmp}/nope.key"], "--tls-cert {tmp}/nope.pem: no such file"),
    (["--tls-cert", "{tmp}/there.pem", "--tls-key", "{tmp}/nope.key"], "--tls-key {tmp}/nope.key: no such file"),
    (["--tls-cert", "{tmp}", "--tls-key", "{tmp}/there.pem"], "--tls-cert {tmp}: is a folder, not a file"),
    (["{tls}", "--client-ca", "{tmp}/ca.pem", "--mtls-listen", "127.0.0.1:0"],
     "--client-ca {tmp}/ca.pem: no such file"),
    (["{tls}", "--agent-token-file", "{tmp}/tokens"], "--agent-token-file {tmp}/tokens: no such file"),
    (["{tls}", "--consumer-token-file", "{tmp}"], "--consumer-token-file {tmp}: is a folder, not a file"),
])
def test_a_missing_file_names_its_flag_and_path(tmp_path, pki, flags, says):
    # there.pem exists but is no certificate: the flags checked before it are the ones that name a missing file.
    (tmp_path / "there.pem").write_text("not a certificate\n")
    (tmp_path / "feeds").mkdir()
    given = [str(part) for flag in flags
             for part in (tls_flags(pki) if flag == "{tls}" else [flag.format(tmp=tmp_path)])]
    result = collector_process("--db", f"sqlite:///{tmp_path / 'db.sqlite'}", "--listen", "127.0.0.1:0",
                               "--feeds-dir", str(tmp_path / "feeds"), *given)
    assert_one_line(result, says.format(tmp=tmp_path))


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0", "localhost"])
def test_a_listen_port_in_use_is_our_one_line_only(tmp_path, host):
    (tmp_path / "feeds").mkdir()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = collector_process("--db", f"sqlite:///{tmp_path / 'db.sqlite'}", "--listen", f"{host}:{port}",
                                   "--insecure", "--feeds-dir", str(tmp_path / "feeds"))
    assert_one_line(result, f"--listen {host}:{port}: cannot listen there (the port is in use: stop what "
                    "listens there (another collector?) or choose another port)")


def test_a_listen_host_that_does_not_resolve_is_one_line(tmp_path):
    (tmp_path / "feeds").mkdir()
    result = collector_process("--db", f"sqlite:///{tmp_path / 'db.sqlite'}", "--listen", "no-such-host.invalid:7443",
                               "--insecure", "--feeds-dir", str(tmp_path / "feeds"))
    assert_one_line(result, "--listen no-such-host.invalid:7443: cannot listen there (no such host")


@pytest.mark.parametrize("db", ["sqlite:///{tmp}/a/b/c.sqlite", "sqlite:///{tmp}/a-file/c.sqlite"])
def test_a_sqlite_file_in_a_folder_that_does_not_exist_is_refused(tmp_path, db):
    (tmp_path / "feeds").mkdir()
    (tmp_path / "a-file").write_text("")
    result = collector_process("--db", db.format(tmp=tmp_path), "--listen", "127.0.0.1:0", "--insecure",
                               "--feeds-dir", str(tmp_path / "feeds"))
    assert_one_line(result, "--db: the database's folder", "create it first")
    assert not (tmp_path / "a").exists()  # nothing was made


@pytest.mark.parametrize(("pull", "poll", "seconds"), [("2m", "500ms", (120, 0.5)), ("90", "2", (90, 2)),
                                                       ("1m30s", "0.25", (90, 0.25))])
def test_the_collectors_durations_take_the_one_syntax_and_plain_seconds(tmp_path, pull, poll, seconds):
    (tmp_path / "feeds").mkdir()
    settings = collector_main.settings_from_args([
        "--db", f"sqlite:///{tmp_path / 'db.sqlite'}", "--listen", "127.0.0.1:0", "--insecure",
        "--feeds-dir", str(tmp_path / "feeds"), "--pull-timeout", pull, "--feeds-dir-poll", poll])
    assert (settings.pull_timeout, settings.poll_seconds) == seconds


def test_the_collector_says_its_version_and_completes_its_flags():
    from dnswatch.version import package_version

    version = collector_process("--version")
    assert version.returncode == 0 and version.stdout == f"dnswatch-collector {package_version()}\n"
    completion = collector_process("--completion", "bash")
    assert completion.returncode == 0 and "--pull-timeout" in completion.stdout
