"""Local feed files and manifests (agent/shell/feeds.py): a file past the size limit is refused before it is
read, with one line on stderr, a pipe is never read past the limit, and a manifest URL's credentials are sent
but never shown."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from dnswatch.errors import BadInput
from agent.shell.feeds import load_manifest, read_file
from harness.feedserver import FeedServer
from tests.publishedfeeds import STIX_BUNDLE

REPO = Path(__file__).resolve().parents[2]
GIB = 1024**3

# Runs the agent's command and writes its peak resident memory (KiB) to the file named first.
_MEASURED = """
import resource, sys
from agent.shell.cli import main
try:
    code = main(sys.argv[2:])
except SystemExit as stop:
    code = stop.code
with open(sys.argv[1], "w") as out:
    out.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
sys.exit(code)
"""


@pytest.mark.parametrize("flag", ["--feed", "--ip-feed"])
def test_a_1_gib_feed_file_is_refused_by_its_size_without_reading_it(tmp_path, flag):
    huge = tmp_path / "huge.txt"
    with huge.open("wb") as file:
        file.truncate(GIB)  # sparse: no disk used, but reading it would take 1 GiB of memory
    peak_file = tmp_path / "peak"
    done = subprocess.run(
        [sys.executable, "-c", _MEASURED, str(peak_file), "replay", str(REPO / "pcaps" / "demo.pcapng"),
         flag, f"big={huge}"],
        capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode != 0 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert f"{huge} is {GIB} bytes, over the limit of {256 * 1024 * 1024} bytes" in done.stderr
    peak_mib = int(peak_file.read_text()) / 1024
    assert peak_mib < 300, f"peak RSS {peak_mib:.0f} MiB"  # the interpreter and its imports, not the file


def test_a_pipe_is_read_no_further_than_the_limit_and_one_byte(tmp_path):
    pipe = tmp_path / "feed.fifo"
    os.mkfifo(pipe)
    written = []

    def writer() -> None:
        try:
            with pipe.open("wb", buffering=0) as end:
                for _ in range(100):
                    end.write(b"x" * 1000)
                    written.append(1000)
        except BrokenPipeError:
            pass  # the reader stopped at the limit, as it should

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    with pytest.raises(BadInput, match=r"feed .*feed\.fifo is larger than the limit of 10000 bytes"):
        read_file(pipe, "feed", limit=10_000)
    thread.join(timeout=10)
    assert not thread.is_alive() and sum(written) < 100 * 1000


def test_a_file_within_the_limit_is_read_whole(tmp_path):
    path = tmp_path / "c2.txt"
    path.write_bytes(b"evil.example\n" * 100)
    assert read_file(path, "feed", limit=1300) == b"evil.example\n" * 100
    with pytest.raises(BadInput, match="1300 bytes, over the limit of 1299 bytes"):
        read_file(path, "feed", limit=1299)


def test_a_manifest_urls_credentials_are_used_and_never_shown(tmp_path):
    password, token = "pw-3Jd8-secret", "tok-6Kw1-secret"
    with FeedServer() as server:
        server.serve("/c2.txt", b"evil.example\n", basic_auth=("reader", password), query={"token": token})
        for path, works in (("/c2.txt", True), ("/gone.txt", False)):
            manifest = tmp_path / "feeds.yaml"
            manifest.write_text(
                "apiVersion: dnswatch.dev/v1\nkind: GlobalThreatFeed\nmetadata: {name: c2}\n"
                "spec:\n  content: DomainNameSet\n  pull:\n    http:\n"
                f"      url: http://reader:{password}@127.0.0.1:{server.port}{path}?token={token}\n")
            if works:
                (loaded,) = load_manifest(manifest)
                assert loaded.parsed.entries == ("evil.example",)
                assert loaded.source == f"http://reader:***@127.0.0.1:{server.port}/c2.txt?token=***"
                continue
            with pytest.raises(BadInput) as refused:
                load_manifest(manifest)
            message = str(refused.value)
            assert f"cannot fetch http://reader:***@127.0.0.1:{server.port}/gone.txt?token=***: " in message
            assert "404" in message and password not in message and token not in message


def test_a_manifest_with_a_stix_bundle_is_read_and_a_taxii_feed_refused(tmp_path):
    (tmp_path / "bundle.json").write_bytes(STIX_BUNDLE)
    manifest = tmp_path / "feeds.yaml"
    manifest.write_text(
        "apiVersion: dnswatch.dev/v1\nkind: GlobalThreatFeed\nmetadata: {name: cti}\n"
        "spec:\n  content: DomainNameSet\n  pull:\n    http:\n      url: file:bundle.json\n"
        "      format: {stix: {}}\n")
    (loaded,) = load_manifest(manifest)
    assert "c2.evil.example" in loaded.parsed.entries
    manifest.write_text(
        "apiVersion: dnswatch.dev/v1\nkind: GlobalThreatFeed\nmetadata: {name: cti}\n"
        "spec:\n  content: DomainNameSet\n  pull:\n    taxii: {url: 'https://taxii.example/api1/', collection: c2}\n")
    with pytest.raises(BadInput, match="feed cti: a TAXII collection .* is pulled by the collector only"):
        load_manifest(manifest)
