"""The collector's feeds end to end: a real feed server, a feeds folder, the collector on 127.0.0.1 with a
SQLite store, and gRPC clients (Feeds, FeedDistribution, health, reflection)."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from dnswatch.feeds.domainset import DomainSet
from dnswatch.feeds.formats import parse_feed_body
from dnswatch.feeds.lines import DOMAIN_NAME_SET, IP_SET
from dnswatch.feeds.wire import (FeedDelta, FeedSnapshot, apply_domain_delta, domains_from_snapshot,
                                 ip_entries_from_snapshot, join_snapshot_parts)
from dnswatch.feeds.wire import FeedRemoved
from dnswatch.feeds.status import entries_sha256
from dnswatch.pbconvert.feeds import update_from_pb
from dnswatch_pb.v1 import feeds_pb2, feeds_pb2_grpc
from harness.collector import RunningCollector, manifest, pulled
from harness.feedserver import ERROR
from tests.collector.running import BODY_V1, BODY_V2, IPS, db_url, feed_server, feeds_dir  # noqa: F401


def initial_state(call) -> list:
    """The domain updates before `synced`."""
    updates = []
    for message in call:
        update = update_from_pb(message)
        if update is None:
            return updates
        updates.append(update)
    raise AssertionError("the stream ended before synced")


def snapshots(updates: list) -> dict[str, FeedSnapshot]:
    parts: dict[str, list[FeedSnapshot]] = {}
    for update in updates:
        if isinstance(update, FeedSnapshot):
            parts.setdefault(update.name, []).append(update)
    return {name: join_snapshot_parts(series) for name, series in parts.items()}


def expected_domains(body: bytes) -> DomainSet:
    return DomainSet.from_names(parse_feed_body(body, DOMAIN_NAME_SET).entries)


def test_feeds_are_pulled_and_listed_with_status(db_url, feeds_dir):
    with RunningCollector(db_url, feeds_dir) as collector:
        feeds = collector.wait_for(pulled("c2", "ips"), "both feeds pulled")
    c2 = feeds["c2"]
    parsed = parse_feed_body(BODY_V1, DOMAIN_NAME_SET)
    assert c2.content == feeds_pb2.FEED_CONTENT_DOMAIN_NAME_SET
    assert c2.mode == feeds_pb2.FEED_MODE_ENABLED
    assert c2.status.entries == len(parsed.entries) == 2002
    assert c2.status.rejected_lines == 1
    assert c2.status.sha256 == entries_sha256(parsed.entries)
    assert c2.status.version == 1
    assert c2.status.HasField("last_successful_sync")
    assert [c.type for c in c2.status.error_conditions] == ["RejectedLines"]
    assert c2.period.seconds == 3600 and c2.format == "newlineDelimited"
    assert feeds["ips"].content == feeds_pb2.FEED_CONTENT_IP_SET and feeds["ips"].status.entries == 3


def test_get_and_sync_of_an_unknown_feed_are_not_found(db_url, feeds_dir):
    with RunningCollector(db_url, feeds_dir) as collector, collector.channel() as channel:
        stub = feeds_pb2_grpc.FeedsStub(channel)
        for call, request in ((stub.Get, feeds_pb2.GetFeedRequest(name="nope")),
                              (stub.Sync, feeds_pb2.SyncFeedRequest(name="nope"))):
            with pytest.raises(grpc.RpcError) as caught:
                call(request, timeout=5)
            assert caught.value.code() == grpc.StatusCode.NOT_FOUND
            assert "nope" in caught.value.details()


def test_sync_of_a_disabled_feed_is_a_failed_precondition(db_url, feeds_dir, feed_server):
    (feeds_dir / "off.yaml").write_text(manifest("off", feed_server.url("/c2.txt"), mode="Disabled"))
    with RunningCollector(db_url, feeds_dir) as collector, collector.channel() as channel:
        collector.wait_for(lambda feeds: "off" in feeds, "the disabled feed listed")
        with pytest.raises(grpc.RpcError) as caught:
            feeds_pb2_grpc.FeedsStub(channel).Sync(feeds_pb2.SyncFeedRequest(name="off"), timeout=5)
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert collector.feeds()["off"].mode == feeds_pb2.FEED_MODE_DISABLED


def test_subscribe_sends_snapshots_matching_the_parsed_feeds_then_synced(db_url, feeds_dir):
    with RunningCollector(db_url, feeds_dir) as collector:
        collector.wait_for(pulled("c2", "ips"), "both feeds pulled")
        channel, call = collector.subscribe()
        with channel:
            updates = initial_state(call)
            call.cancel()
    got = snapshots(updates)
    assert set(got) == {"c2", "ips"} and len(updates) == 2
    c2 = got["c2"]
    assert c2.version == 1 and c2.entries == 2002
    assert domains_from_snapshot(c2).to_bytes() == expected_domains(BODY_V1).to_bytes()
    assert ip_entries_from_snapshot(got["ips"]) == set(parse_feed_body(IPS, IP_SET).entries)


def test_a_changed_feed_reaches_a_live_subscriber_and_a_resuming_one_as_a_delta(db_url, feeds_dir, feed_server):
    with RunningCollector(db_url, feeds_dir) as collector:
        collector.wait_for(pulled("c2", "ips"), "both feeds pulled")
        live_channel, live = collector.subscribe()
        with live_channel:
            held = domains_from_snapshot(snapshots(initial_state(live))["c2"])

            feed_server.serve("/c2.txt", BODY_V2)
            with collector.channel() as channel:
                synced = feeds_pb2_grpc.FeedsStub(channel).Sync(feeds_pb2.SyncFeedRequest(name="c2"), timeout=10)
            assert synced.feed.status.version == 2

            change = update_from_pb(next(live))
            live.cancel()
        assert isinstance(change, FeedDelta) and (change.from_version, change.to_version) == (1, 2)
        assert apply_domain_delta(held, change).to_bytes() == expected_domains(BODY_V2).to_bytes()

        channel, call = collector.subscribe(have={"c2": 1, "ips": 1})
        with channel:
            updates = initial_state(call)
            call.cancel()
    assert updates == [change]  # ips is up to date; c2 comes as the same delta, not a snapshot


def test_a_resubscriber_holding_an_unknown_version_gets_a_snapshot(db_url, feeds_dir):
    with RunningCollector(db_url, feeds_dir) as collector:
        collector.wait_for(pulled("c2", "ips"), "both feeds pulled")
        channel, call = collector.subscribe(have={"c2": 7, "gone": 3})
        with channel:
            updates = initial_state(call)
            call.cancel()
    assert FeedRemoved("gone") in updates
    assert set(snapshots(updates)) == {"c2", "ips"}


def test_a_removed_manifest_removes_the_feed_for_subscribers(db_url, feeds_dir):
    with RunningCollector(db_url, feeds_dir) as collector:
        collector.wait_for(pulled("c2", "ips"), "both feeds pulled")
        channel, call = collector.subscribe()
        with channel:
            initial_state(call)
            (feeds_dir / "ips.yaml").unlink()
            gone = update_from_pb(next(call))
            call.cancel()
        assert gone == FeedRemoved("ips")
        assert set(collector.feeds()) == {"c2"}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_restarted_collector_serves_the_stored_sets_before_any_pull(request, backend, db_url, feeds_dir,
                                                                       feed_server):
    if backend == "postgresql":
        db_url = request.getfixturevalue("pg_fresh_url")
    with RunningCollector(db_url, feeds_dir) as collector:
        collector.wait_for(pulled("c2", "ips"), "both feeds pulled")
        feed_server.serve("/c2.txt", BODY_V2)
        with collector.channel() as channel:
            feeds_pb2_grpc.FeedsStub(channel).Sync(feeds_pb2.SyncFeedRequest(name="c2"), timeout=10)
    requests = feed_server.count("/c2.txt")
    feed_server.fault("/c2.txt", ERROR)  # a pull now would fail: what is served comes from the store
    with RunningCollector(db_url, feeds_dir) as collector:
        feeds = collector.feeds()
        assert feeds["c2"].status.version == 2 and feeds["c2"].status.entries == 2002
        assert feeds["ips"].status.version == 1
        channel, call = collector.subscribe(have={"c2": 1})
        with channel:
            updates = initial_state(call)
            call.cancel()
        resumed = [u for u in updates if u.name == "c2"]
        assert len(resumed) == 1 and isinstance(resumed[0], FeedDelta)  # the delta is made from the store
        assert snapshots(updates)["ips"].version == 1
    assert feed_server.count("/c2.txt") == requests  # the restart pulled nothing: the period is not over


def test_health_and_reflection_are_served(db_url, feeds_dir):
    with RunningCollector(db_url, feeds_dir) as collector, collector.channel() as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "dnswatch.v1.Feeds", "dnswatch.v1.FeedDistribution"):
            answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        answers = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                                  timeout=5)
        services = {s.name for answer in answers for s in answer.list_services_response.service}
    assert {"dnswatch.v1.Feeds", "dnswatch.v1.FeedDistribution", "grpc.health.v1.Health"} <= services


def test_a_stopping_collector_ends_agent_streams(db_url, feeds_dir):
    collector = RunningCollector(db_url, feeds_dir).__enter__()
    try:
        collector.wait_for(pulled("c2"), "c2 pulled")
        channel, call = collector.subscribe(timeout=30)
        with channel:
            initial_state(call)
            collector.__exit__()
            assert list(call) == []  # the stream ended cleanly, well before its deadline
    finally:
        collector.__exit__()
