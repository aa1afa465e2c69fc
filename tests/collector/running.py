"""The collector's test feeds and fixtures, for harness/collector.py's `RunningCollector`.

The fixtures (`feed_server`, `feeds_dir` with feeds `c2` and `ips`, `db_url`) are imported by the test modules
that use them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dnswatch.feeds.lines import IP_SET
from harness.collector import manifest
from harness.feedserver import FeedServer

# ---------------------------------------------------------------------------------------------- feeds and fixtures

NAMES = [f"host{i}.bad{i % 97}.example" for i in range(2000)]
BODY_V1 = ("# a test feed\n" + "\n".join(NAMES) + "\n*.wild.example\n0.0.0.0 hosts.example\nnot a name\n").encode()
BODY_V2 = BODY_V1.replace(b"host7.bad7.example\n", b"") + b"new.bad.example\n"
IPS = b"192.0.2.1\n198.51.100.0/24\n2001:db8::1\n"


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    with FeedServer() as server:
        server.serve("/c2.txt", BODY_V1)
        server.serve("/ips.txt", IPS)
        yield server


@pytest.fixture
def feeds_dir(tmp_path: Path, feed_server: FeedServer) -> Path:
    folder = tmp_path / "feeds"
    folder.mkdir()
    (folder / "c2.yaml").write_text(manifest("c2", feed_server.url("/c2.txt")))
    (folder / "ips.yaml").write_text(manifest("ips", feed_server.url("/ips.txt"), content=IP_SET))
    return folder


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'collector.sqlite'}"
