"""`kill -9` of an agent shipping with `--spool`: every event it printed is in the spool or in the collector.

A real `dnswatch-agent` process replays a real capture (written here: tens of thousands of distinct suspicious
names, one event each) to a real collector (in this process, SQLite, its feed pulled from a feed server) and
is SIGKILLed while it prints; so is a live agent (`run` on the netns testbed) under dnsperf load. Afterwards,
for every event id on its stdout, the spool (read with the spool module, as the next agent would) or the
collector's store holds an emission at least as recent as the last one printed: nothing printed is lost.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from agent.shell.spool import Spool
from harness.collector import RunningCollector, manifest, pulled
from harness.feedserver import FeedServer
from harness.netns import DNS_IPV4
from pcaps.synth import write_tunnel_capture
from tests.agent.storedevents import stored
from tests.collector.running import db_url  # noqa: F401
from tests.netns import testbed  # noqa: F401  (testbed is a fixture)

AGENT = str(Path(sys.executable).with_name("dnswatch-agent"))


def killed_while_printing(argv: list[str], after: int, popen=subprocess.Popen) -> list[bytes]:
    """Start the agent, SIGKILL it once it has printed `after` lines, and return every whole line it printed."""
    agent = popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        printed = []
        for line in agent.stdout:
            printed.append(line)
            if len(printed) == after:
                os.kill(agent.pid, signal.SIGKILL)
                break
        printed += agent.stdout.readlines()  # what it wrote before it died
        assert agent.wait(timeout=30) == -signal.SIGKILL, agent.stderr.read().decode()
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
        agent.stdout.close()
        agent.stderr.close()
    return [line for line in printed if line.endswith(b"\n")]  # a line cut by the kill was never wholly printed


def assert_kept(printed: list[bytes], spool_dir: Path, db_url: str) -> int:  # noqa: F811
    """Every event printed has an emission at least as recent in the spool or the store; how many were printed."""
    latest: dict[str, int] = {}
    for line in printed:
        event = json.loads(line)
        latest[event["id"]] = event["record"]["count"]
    with Spool.open(spool_dir, 256 << 20) as spool:
        spooled = {event["id"]: event["record"]["count"] for event in spool.recover()}
    have = {event_id: event["record"]["count"] for event_id, event in stored(db_url)[0].items()}
    lost = [event_id for event_id, count in latest.items()
            if max(spooled.get(event_id, 0), have.get(event_id, 0)) < count]
    assert not lost, f"{len(lost)} of {len(latest)} printed events neither spooled nor stored"
    return len(latest)


@contextlib.contextmanager
def collector_with_tunnel_feed(tmp_path: Path, db_url: str, *flags: str) -> Iterator[RunningCollector]:  # noqa: F811
    """A collector (this process, SQLite) whose feed c2, `*.tunnel.example`, has been pulled from a feed server."""
    with FeedServer() as feed_server:
        feed_server.serve("/c2.txt", b"*.tunnel.example\n")
        feeds_dir = tmp_path / "feeds"
        feeds_dir.mkdir()
        (feeds_dir / "c2.yaml").write_text(manifest("c2", feed_server.url("/c2.txt")))
        with RunningCollector(db_url, feeds_dir, *flags) as collector:
            collector.wait_for(pulled("c2"), "the c2 feed pulled")
            yield collector


def test_kill_9_of_a_replay_while_printing_loses_no_printed_event(tmp_path, db_url):  # noqa: F811
    capture = tmp_path / "many.pcap"
    write_tunnel_capture(capture, 40_000)
    spool_dir = tmp_path / "spool"
    with collector_with_tunnel_feed(tmp_path, db_url) as collector:
        printed = killed_while_printing(
            [AGENT, "replay", str(capture), "--collector", collector.address, "--insecure", "--spool",
             str(spool_dir), "-o", "json"], after=5000)
    assert 5000 <= assert_kept(printed, spool_dir, db_url) < 40_000, "killed in the middle of the replay"


def test_kill_9_of_a_live_agent_while_printing_loses_no_printed_event(testbed, tmp_path, db_url):  # noqa: F811
    """`run --spool-dir`: dnsperf asks a pod's DNS for thousands of new names a second, each an event."""
    bed = testbed
    host_address, _ = bed.link_to_host()
    load = bed.add_pod("load")
    queries = tmp_path / "queries.txt"
    queries.write_text("".join(f"h{i:06d}.tunnel.example A\n" for i in range(60_000)))
    spool_dir = tmp_path / "spool"
    with collector_with_tunnel_feed(tmp_path, db_url, "--listen", "0.0.0.0:0") as collector:
        argv = [AGENT, "run", "--interfaces", "cali*", "--collector", f"{host_address}:{collector.port}",
                "--insecure", "--spool-dir", str(spool_dir), "-o", "json"]
        # dnsperf starts once the first line is printed: the agent captures by then (an event needs it).
        load_started: list[subprocess.Popen] = []

        def agent_then_load(argv, **kwargs):
            agent = bed.popen_in_node(argv, **kwargs)
            load_started.append(bed.popen_in_pod(load, ["dnsperf", "-s", DNS_IPV4, "-d", str(queries), "-n",
                                                         "1", "-c", "4", "-Q", "4000", "-q", "200"],
                                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            return agent

        printed = killed_while_printing(argv, after=3000, popen=agent_then_load)
        for process in load_started:
            process.kill()
            process.wait()
    assert assert_kept(printed, spool_dir, db_url) >= 3000
