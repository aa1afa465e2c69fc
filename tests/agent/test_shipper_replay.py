"""`dnswatch-agent replay --collector` ships its events: the collector (real, SQLite, fed by a real feed server
with the demo feeds) ends up holding exactly the latest emission of every event the replay printed; --spool
resends what an earlier agent left unacknowledged; a collector that does not acknowledge is one line."""

from __future__ import annotations

import json

import grpc
import pytest

from dnswatch.errors import DnswatchError
from agent.shell.collectorlink import LinkSettings, acknowledged
from dnswatch.grpcchannel import ChannelSecurity
from agent.shell.shipper import EventShipper, ShipperSettings
from tests.agent.replaying import PCAPS, demo_collector, run_cli  # noqa: F401
from tests.agent.storedevents import free_port, stored, without_lines
from tests.collector.running import db_url  # noqa: F401
from tests.collector.eventdata import event as make_event


def replay_to(collector, *extra: str) -> tuple[list[dict], str]:
    result = run_cli("replay", str(PCAPS / "demo.pcapng"), "--pods", str(PCAPS / "demo-pods.json"),
                     "--node", "node-1", "-o", "json", "--collector", collector.address, "--insecure", *extra)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()], result.stderr


def latest_emissions(printed: list[dict]) -> dict[str, dict]:
    latest: dict[str, dict] = {}
    for event in printed:
        latest[event["id"]] = event
    return latest


def test_the_replay_events_are_stored_once_each_as_last_emitted(demo_collector) -> None:  # noqa: F811
    printed, stderr = replay_to(demo_collector)
    assert printed, "the demo replay gives events"
    have, seq = stored(demo_collector.settings.db)
    assert {id: without_lines(event) for id, event in have.items()} == latest_emissions(printed)
    last_line = stderr.strip().splitlines()[-1]
    assert last_line.startswith(f"collector {demo_collector.address}: ") and last_line.endswith(" events acknowledged")
    # The same replay again stores nothing new: every id is there with the same count already.
    again, _ = replay_to(demo_collector)
    assert again == printed
    assert stored(demo_collector.settings.db) == (have, seq)


def test_the_spool_resends_what_an_earlier_agent_left_behind(demo_collector, tmp_path) -> None:  # noqa: F811
    spool = tmp_path / "spool"
    left_behind = [make_event(i) for i in range(25)]
    # An agent that never reached its collector: its events wait in the spool.
    dead = f"127.0.0.1:{free_port()}"
    with EventShipper(lambda: grpc.insecure_channel(dead), ShipperSettings(spool_dir=spool, backoff_min=0.05)) as agent:
        for event in left_behind:
            agent.offer(event)
        assert not agent.flush(0.2)
    printed, stderr = replay_to(demo_collector, "--spool", str(spool))
    assert "(including 25 resent from the spool)" in stderr
    have, _ = stored(demo_collector.settings.db)
    assert {id: without_lines(event) for id, event in have.items()} == {
        **latest_emissions(printed), **{event["id"]: event for event in left_behind}}


def test_spool_without_collector_is_refused(tmp_path) -> None:
    result = run_cli("replay", str(PCAPS / "demo.pcapng"), "--feed-manifest", str(PCAPS / "demo-feeds.yaml"),
                     "--spool", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr == ("dnswatch-agent: error: --spool-dir: only with --collector (it holds the events not "
                             "yet sent to it)\n")


def test_a_collector_that_does_not_acknowledge_is_one_line(tmp_path) -> None:
    dead = f"127.0.0.1:{free_port()}"
    settings = LinkSettings(dead, "node-1", ChannelSecurity(), timeout=0.3, spool=tmp_path / "spool")
    with EventShipper(lambda: grpc.insecure_channel(dead),
                      ShipperSettings(spool_dir=settings.spool, backoff_min=0.05)) as shipper:
        for i in range(3):
            shipper.offer(make_event(i))
        with pytest.raises(DnswatchError) as refused:
            acknowledged(shipper, settings)
    message = str(refused.value)
    assert message.startswith(f"the collector at {dead} did not acknowledge 3 events within 0.3s (UNAVAILABLE: ")
    assert message.endswith(f": 0 acknowledged; they stay in the spool {settings.spool}")
    assert "\n" not in message
