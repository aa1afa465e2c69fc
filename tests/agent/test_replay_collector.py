"""`dnswatch-agent replay --collector`: feeds from a real collector (fed by a real feed server serving the demo
feeds) give exactly the events the same replay gives with the demo manifest read locally; a collector that
cannot be reached, or local feed flags next to --collector, get one line and exit 2."""

from __future__ import annotations

import pytest

from dnswatch.feeds.domainset import DomainSet
from dnswatch.feeds.wire import domain_delta, domain_snapshot, ip_delta, ip_snapshot, snapshot_parts
from agent.core.heldfeeds import HeldFeeds
from dnswatch.feeds.wire import FeedRemoved, UnusableFeed
from tests.agent.replaying import DEMO_FEEDS, PCAPS, comparable, demo_collector, replay_events, run_cli  # noqa: F401
from tests.agent.storedevents import stored
from tests.collector.running import db_url  # noqa: F401


def test_feeds_from_the_collector_give_the_same_events_as_the_local_manifest(demo_collector):
    local, _ = replay_events("--feed-manifest", str(PCAPS / "demo-feeds.yaml"))
    remote, stderr = replay_events("--collector", demo_collector.address, "--insecure")
    assert local, "the demo replay gives events"
    # Only the versions differ (the collector's numbers, the local bodies' digests), and the lines, which the
    # collector fills in as it stores the events: the lines it stored are those the local replay found.
    assert [comparable(event) for event in remote] == [comparable(event) for event in local]
    assert all(m["line"] is None for e in remote for m in e["record"]["matches"])
    assert {m["feed_version"] for e in remote for m in e["record"]["matches"]} == {"1"}
    assert all(m["feed_version"].startswith("sha256:") for e in local for m in e["record"]["matches"])
    have, _ = stored(demo_collector.settings.db)
    assert {e["id"]: versionless(e) for e in have.values()} == {e["id"]: versionless(e) for e in local}
    for name in DEMO_FEEDS:
        assert f"feed {name}: " in stderr and "(version 1 from the collector)" in stderr


def versionless(event: dict) -> dict:
    matches = [{**m, "feed_version": None} for m in event["record"]["matches"]]
    return {**event, "record": {**event["record"], "matches": matches}}


def test_an_unreachable_collector_is_one_line_and_exit_2():
    result = run_cli("replay", str(PCAPS / "demo.pcapng"), "--collector", "127.0.0.1:1", "--insecure",
                     "--collector-timeout", "5")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("dnswatch-agent: error: cannot reach the collector at 127.0.0.1:1: ")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize("flag", [["--feed-manifest", "pcaps/demo-feeds.yaml"], ["--feed", "c2=pcaps/demo-c2.txt"],
                                  ["--ip-feed", "ips=pcaps/demo-badips.txt"]])
def test_local_feeds_next_to_collector_are_refused(flag):
    result = run_cli("replay", "pcaps/demo.pcapng", "--collector", "127.0.0.1:1", *flag)
    assert result.returncode == 2
    assert result.stderr == ("dnswatch-agent: error: --collector takes the feeds from the collector: "
                             "drop --feed, --ip-feed and --feed-manifest\n")


def test_help_says_events_are_sent_to_the_collector():
    result = run_cli("replay", "--help")
    text = " ".join(result.stdout.split())
    assert "and send it the events (they are still printed with -o)" in text and "not done yet" not in text
    assert "--spool DIR" in text


# ---------------------------------------------------------------------------------------------- HeldFeeds


OLD = DomainSet.from_names([f"n{i}.example" for i in range(300)])
NEW = DomainSet.from_names([f"n{i}.example" for i in range(5, 310)])


def test_held_feeds_join_parts_apply_deltas_and_forget():
    held = HeldFeeds()
    for part in snapshot_parts(domain_snapshot("c2", 1, "", OLD), part_bytes=100):
        held.apply(part)
    held.apply(ip_snapshot("ips", 4, "", ["192.0.2.1", "198.51.100.0/24"]))
    assert held.versions() == {"c2": 1, "ips": 4}
    held.apply(domain_delta("c2", 1, 2, "", OLD, NEW))
    held.apply(ip_delta("ips", 4, 5, "", ["192.0.2.1", "198.51.100.0/24"], ["192.0.2.1"]))
    assert held.versions() == {"c2": 2, "ips": 5}
    domain_feeds, ip_feeds = held.matcher_feeds()
    assert [(name, domains.to_bytes()) for name, domains in domain_feeds] == [("c2", NEW.to_bytes())]
    assert [name for name, _ in ip_feeds] == ["ips"] and held.feeds()[1].ips == frozenset({"192.0.2.1"})
    held.apply(FeedRemoved("ips"))
    assert held.versions() == {"c2": 2}


def test_a_delta_that_does_not_fit_names_its_feed():
    held = HeldFeeds()
    held.apply(domain_snapshot("c2", 1, "", NEW))  # not the set the delta was made from
    with pytest.raises(UnusableFeed) as caught:
        held.apply(domain_delta("c2", 1, 2, "", OLD, NEW))
    assert caught.value.feed == "c2"
    with pytest.raises(UnusableFeed, match="from version 7"):
        held.apply(domain_delta("c2", 7, 8, "", OLD, NEW))
    held.forget("c2")
    assert held.versions() == {}
