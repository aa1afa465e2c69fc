"""FeedHub with real parts (a SQLite store, a FeedPuller against the test feed server): source changes, pulls,
restore, snapshot parts, recompiling on a matchSubdomains switch, Disabled feeds, status write-back.

`store` is tests/conftest.py's: each test runs on SQLite and on the suite's PostgreSQL server."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dnswatch.feeds.domainset import DomainSet
from dnswatch.feeds.formats import JsonFormat, parse_feed_body
from dnswatch.feeds.lines import DOMAIN_NAME_SET
from dnswatch.feeds.spec import FeedSpec
from dnswatch.feeds.wire import FeedSnapshot, domains_from_snapshot, join_snapshot_parts
from dnswatch.feeds.wire import FeedRemoved
from dnswatch.feeds.status import entries_sha256
from collector.core.watchloop import FeedDeleted, FeedInvalid, FeedsSynced, FeedUpserted
from collector.shell.feedhub import FeedDisabled, FeedHub, UnknownFeed
from collector.shell.puller import FeedPuller
from harness.feedserver import FeedServer
from tests.collector.running import BODY_V1

pytestmark = pytest.mark.anyio


@pytest.fixture
def feed_server():
    with FeedServer() as server:
        server.serve("/c2.txt", BODY_V1)
        yield server


def spec(server: FeedServer, **changes) -> FeedSpec:
    return replace(FeedSpec(name="c2", content=DOMAIN_NAME_SET, url=server.url("/c2.txt")), **changes)


async def running_hub(store, **options):
    hub = FeedHub(store, **options)
    puller = FeedPuller(on_result=hub.record_pull)
    await puller.__aenter__()
    hub.attach(puller)
    await hub.restore()
    return hub, puller


async def pulled_once(store, feed_spec: FeedSpec):
    """A collector's life in short: a hub on `store` restores, is told `feed_spec`, pulls it once and stops;
    the feed's FeedInfo after that pull."""
    hub, puller = await running_hub(store)
    try:
        await hub.apply(FeedUpserted(feed_spec, "test"))
        await hub.sync(feed_spec.name)
        return hub.feed(feed_spec.name)
    finally:
        await puller.__aexit__(None, None, None)


async def test_a_large_snapshot_comes_in_parts_that_join_to_the_parsed_set(store, feed_server):
    hub, puller = await running_hub(store, snapshot_part_bytes=256)
    try:
        await hub.apply(FeedUpserted(spec(feed_server), "test"))
        info, _ = await hub.sync("c2")
        updates = await hub.updates_for("c2", None)
    finally:
        await puller.__aexit__(None, None, None)
    assert info.status.version == 1 and hub.distributed() == ["c2"]
    assert len(updates) > 3 and all(isinstance(u, FeedSnapshot) for u in updates)
    assert [u.more for u in updates] == [True] * (len(updates) - 1) + [False]
    expected = DomainSet.from_names(parse_feed_body(BODY_V1, DOMAIN_NAME_SET).entries)
    assert domains_from_snapshot(join_snapshot_parts(updates)).to_bytes() == expected.to_bytes()
    assert await hub.updates_for("c2", 1) == []


async def test_switching_match_subdomains_recompiles_the_set_as_a_new_version(store, feed_server):
    hub, puller = await running_hub(store)
    try:
        await hub.apply(FeedUpserted(spec(feed_server), "test"))
        await hub.sync("c2")
        with hub.subscribe() as subscription:
            await hub.apply(FeedUpserted(spec(feed_server, match_subdomains=True), "test"))
            assert await subscription.changed() == {"c2"}
        assert hub.feed("c2").status.version == 2 and puller.state("c2").status.version == 2
        (update,) = await hub.updates_for("c2", 1)  # not comparable: the snapshot, not a delta
        assert isinstance(update, FeedSnapshot) and update.version == 2
        entries = parse_feed_body(BODY_V1, DOMAIN_NAME_SET).entries
        assert domains_from_snapshot(update).to_bytes() == DomainSet.from_names(entries, True).to_bytes()
        assert (await store.load_feed("c2")).version == 2
        again, _ = await hub.sync("c2")  # the same body again: no new version
        assert again.status.version == 2 and again.status.sha256 == entries_sha256(entries)
    finally:
        await puller.__aexit__(None, None, None)


async def test_a_disabled_feed_is_withdrawn_and_not_synced(store, feed_server):
    hub, puller = await running_hub(store)
    try:
        await hub.apply(FeedUpserted(spec(feed_server), "test"))
        await hub.sync("c2")
        await hub.apply(FeedUpserted(spec(feed_server, mode="Disabled"), "test"))
        assert hub.distributed() == [] and await hub.updates_for("c2", 1) == [FeedRemoved("c2")]
        assert hub.feed("c2").mode == "Disabled" and hub.feed("c2").status.version == 1
        with pytest.raises(FeedDisabled):
            await hub.sync("c2")
        with pytest.raises(UnknownFeed):
            await hub.sync("other")
    finally:
        await puller.__aexit__(None, None, None)


async def test_an_invalid_manifest_keeps_the_feed_and_shows_why_until_a_valid_one(store, feed_server):
    hub, puller = await running_hub(store)
    try:
        await hub.apply(FeedUpserted(spec(feed_server), "test"))
        await hub.sync("c2")
        await hub.apply(FeedInvalid("c2", "spec.pull.period: too short", "c2.yaml"))
        info = hub.feed("c2")
        assert info.status.version == 1 and hub.distributed() == ["c2"]
        assert info.status.error_conditions[-1][:2] == ("InvalidSpec", "spec.pull.period: too short")
        await hub.apply(FeedUpserted(spec(feed_server), "test"))
        assert all(c.type != "InvalidSpec" for c in hub.feed("c2").status.error_conditions)
    finally:
        await puller.__aexit__(None, None, None)


async def test_restored_feeds_without_a_manifest_are_dropped_once_the_source_has_synced(store, feed_server):
    await pulled_once(store, spec(feed_server))
    await store.save_feed("gone", content=DOMAIN_NAME_SET, version=1, sha256=entries_sha256(["a.example"]),
                          entries=["a.example"], status={"version": 1, "entries": 1})
    hub, puller = await running_hub(store)
    try:
        assert hub.distributed() == ["c2", "gone"]  # served at once, before the source says anything
        await hub.apply(FeedUpserted(spec(feed_server), "test"))
        await hub.apply(FeedsSynced(1))
        assert hub.distributed() == ["c2"] and await store.load_feed("gone") is None
        await hub.apply(FeedDeleted("c2"))
        assert hub.feeds() == [] and await store.load_feed("c2") is None
    finally:
        await puller.__aexit__(None, None, None)


async def test_every_new_status_goes_to_the_status_sink(store, feed_server):
    written: list[tuple[str, dict]] = []

    async def sink(name: str, status: dict) -> None:
        written.append((name, status))

    hub, puller = await running_hub(store, status_sink=sink)
    try:
        await hub.apply(FeedUpserted(spec(feed_server), "test"))
        await hub.sync("c2")
        feed_server.fault("/c2.txt", "error", status=404)
        await hub.sync("c2")
    finally:
        await puller.__aexit__(None, None, None)
    assert [status["version"] for _, status in written] == [1, 1]
    assert written[1][1]["errorConditions"][-1]["type"] == "PullFailed"


async def test_a_restart_rebuilds_a_match_subdomains_set_at_the_same_version(store, feed_server):
    hub, puller = await running_hub(store)
    try:
        await hub.apply(FeedUpserted(spec(feed_server, match_subdomains=True), "test"))
        await hub.sync("c2")
        (before,) = await hub.updates_for("c2", None)
    finally:
        await puller.__aexit__(None, None, None)
    hub, puller = await running_hub(store)
    try:
        (restored,) = await hub.updates_for("c2", None)
        await hub.apply(FeedUpserted(spec(feed_server, match_subdomains=True), "test"))
        (after,) = await hub.updates_for("c2", None)
    finally:
        await puller.__aexit__(None, None, None)
    assert before == restored == after and after.version == 1


async def test_after_a_restart_the_first_pull_of_an_unchanged_structured_feed_is_conditional(store, feed_server):
    feed_server.serve("/c2.json", b'{"data": [{"domain": "evil.example"}, {"domain": "bad.example"}]}')
    structured = spec(feed_server, url=feed_server.url("/c2.json"), format=JsonFormat(path="$.data[*].domain"))
    await pulled_once(store, structured)
    first = feed_server.requests[-1]
    assert "if-none-match" not in first.headers  # the very first pull had nothing to send back
    # A new collector on the same store: its first pull sends back what the stored set's body came with.
    info = await pulled_once(store, structured)
    again = feed_server.requests[-1]
    assert again.headers.get("if-none-match") and again.headers.get("if-modified-since")
    assert info.status.version == 1 and info.status.last_successful_sync
    # Another URL for the feed while the collector was away: the stored validators are not sent to it.
    feed_server.serve("/other.json", b'{"data": [{"domain": "evil.example"}, {"domain": "bad.example"}]}')
    await pulled_once(store, replace(structured, url=feed_server.url("/other.json")))
    other = feed_server.requests[-1]
    assert other.path == "/other.json" and "if-none-match" not in other.headers


async def test_after_a_restart_a_line_feed_is_downloaded_once_for_its_lines(store, feed_server):
    """Bodies are held in memory only: a 304 would leave events without their line until the feed changed."""
    await pulled_once(store, spec(feed_server))
    hub, puller = await running_hub(store)
    try:
        await hub.apply(FeedUpserted(spec(feed_server), "test"))
        await hub.sync("c2")
        again = feed_server.requests[-1]
        assert "if-none-match" not in again.headers and "if-modified-since" not in again.headers
        assert hub.feed("c2").status.version == 1  # the same set: no new version
        assert hub.entry_lines()[("c2", 1)].locate("hosts.example") == (2003, "0.0.0.0 hosts.example")
        await hub.sync("c2")  # held now: the next pull is conditional again
        assert feed_server.requests[-1].headers.get("if-none-match")
    finally:
        await puller.__aexit__(None, None, None)


async def test_labels_and_severity_survive_a_restart_without_a_new_version(store, feed_server):
    context = {"labels": (("team", "secops"),), "severity": 70}
    info = await pulled_once(store, spec(feed_server, **context))
    assert info.status.version == 1
    hub, puller = await running_hub(store)
    try:
        (restored,) = await hub.updates_for("c2", None)
        assert (restored.version, restored.labels, restored.severity) == (1, (("team", "secops"),), 70)
        await hub.apply(FeedUpserted(spec(feed_server, **context), "test"))  # the same manifest: nothing new
        assert hub.feed("c2").status.version == 1 and await hub.updates_for("c2", 1) == []
        assert hub.entry_lines() == {}  # a restored set has no body until its next pull
        await hub.apply(FeedUpserted(spec(feed_server, labels=(("team", "red"),), severity=70), "test"))
        (change,) = await hub.updates_for("c2", 1)
        assert (change.from_version, change.to_version, change.labels) == (1, 2, (("team", "red"),))
    finally:
        await puller.__aexit__(None, None, None)


async def test_the_bodies_of_held_versions_give_the_lines_of_their_entries(store, feed_server):
    hub, puller = await running_hub(store)
    try:
        await hub.apply(FeedUpserted(spec(feed_server), "test"))
        await hub.sync("c2")
        lines = hub.entry_lines()[("c2", 1)]
        assert lines.locate("hosts.example") == (2003, "0.0.0.0 hosts.example")
        assert lines.locate("*.wild.example") == (2002, "*.wild.example")
    finally:
        await puller.__aexit__(None, None, None)
