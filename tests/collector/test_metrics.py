"""The collector's /metrics, /healthz and /readyz (docs/operations.md): a real HTTP server on 127.0.0.1 port 0, scraped
with httpx and read back with prometheus_client's parser. Ingest results come from a real SQLite store."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dnswatch.feeds.feedinfo import FeedInfo
from dnswatch.feeds.outcomes import DISABLED, FAILED, NOT_MODIFIED, UPDATED
from dnswatch.feeds.status import ErrorCondition, FeedStatus
from agent.shell.shipper import EventShipper, ShipperSettings
from collector.shell.grpc_ingest import add_ingest_service
from collector.shell.metrics import CollectorMetrics, serve_metrics
from collector.shell.puller import FeedState, PullResult
from collector.store import BadEvent, open_store
from tests.collector.eventdata import event as make_event


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert response.status_code == 200
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


@pytest.fixture
def metrics():
    return CollectorMetrics()


@pytest.fixture
def server(metrics):
    with serve_metrics(metrics.registry, 0, host="127.0.0.1") as running:
        yield running


def ingest_in_sqlite(tmp_path, *batches: list[dict]):
    async def run():
        store = await open_store(f"sqlite:///{tmp_path / 'db.sqlite'}")
        try:
            return [await store.ingest_events(batch) for batch in batches]
        finally:
            await store.close()

    return asyncio.run(run())


def test_events_ingested_by_outcome_from_real_store_results(metrics, server, tmp_path):
    samples = scrape(server.port)
    for outcome in ("inserted", "replaced", "unchanged"):  # present at 0 before the first batch
        assert samples[("dnswatch_collector_events_ingested_total", (("outcome", outcome),))] == 0
    results = ingest_in_sqlite(tmp_path, [make_event(1), make_event(2)], [make_event(1, count=3), make_event(2)])
    for result in results:
        metrics.observe_ingest(result)
    metrics.observe_ingest_error()
    metrics.observe_retention(4)
    samples = scrape(server.port)
    assert samples[("dnswatch_collector_events_ingested_total", (("outcome", "inserted"),))] == 2
    assert samples[("dnswatch_collector_events_ingested_total", (("outcome", "replaced"),))] == 1
    assert samples[("dnswatch_collector_events_ingested_total", (("outcome", "unchanged"),))] == 1
    assert samples[("dnswatch_collector_ingest_batches_total", ())] == 2
    assert samples[("dnswatch_collector_ingest_errors_total", ())] == 1
    assert samples[("dnswatch_collector_events_deleted_total", ())] == 4


def feed(name: str, version: int, entries: int, *, sync: str | None = "2026-11-27T21:53:31Z", errors=(),
         mode: str = "Enabled") -> FeedInfo:
    status = FeedStatus(last_successful_sync=sync, error_conditions=tuple(errors), entries=entries,
                        rejected_lines=1, sha256="ab" * 32 if version else "", version=version)
    return FeedInfo(name=name, content="DomainNameSet", mode=mode, status=status)


def test_feed_versions_entries_and_last_sync(metrics, server):
    metrics.set_feeds([feed("c2", 3, 1200), feed("exfil", 0, 0, sync=None, mode="Disabled",
                                                 errors=[ErrorCondition("PullFailed", "HTTP 500")])])
    samples = scrape(server.port)
    c2, exfil = (("content", "DomainNameSet"), ("feed", "c2")), (("content", "DomainNameSet"), ("feed", "exfil"))
    assert samples[("dnswatch_collector_feed_version", c2)] == 3
    assert samples[("dnswatch_collector_feed_entries", c2)] == 1200
    assert samples[("dnswatch_collector_feed_rejected_lines", c2)] == 1
    assert samples[("dnswatch_collector_feed_enabled", c2)] == 1
    assert samples[("dnswatch_collector_feed_last_successful_sync_timestamp_seconds", c2)] == dt.datetime(
        2026, 11, 27, 21, 53, 31, tzinfo=dt.timezone.utc).timestamp()
    assert ("dnswatch_collector_feed_last_successful_sync_timestamp_seconds", exfil) not in samples
    assert samples[("dnswatch_collector_feed_error_conditions", exfil)] == 1
    assert samples[("dnswatch_collector_feed_enabled", exfil)] == 0
    assert samples[("dnswatch_collector_feeds", ())] == 2
    metrics.set_feed(feed("c2", 4, 1300))
    metrics.remove_feed("exfil")
    samples = scrape(server.port)
    assert samples[("dnswatch_collector_feed_version", c2)] == 4
    assert not any(labels == exfil for _, labels in samples)


def test_pull_outcomes_and_the_last_pull(metrics, server):
    metrics.observe_pull("c2", UPDATED, when=1795311211.5)
    metrics.observe_pull("c2", NOT_MODIFIED, when=1795311300.0)
    metrics.observe_pull("exfil", FAILED, when=1795311301.0)
    metrics.observe_pull("exfil", DISABLED)  # says nothing about the source: the last pull stays the failure
    samples = scrape(server.port)
    assert samples[("dnswatch_collector_feed_pulls_total", (("feed", "c2"), ("outcome", "Updated")))] == 1
    assert samples[("dnswatch_collector_feed_pulls_total", (("feed", "c2"), ("outcome", "NotModified")))] == 1
    assert samples[("dnswatch_collector_feed_pulls_total", (("feed", "exfil"), ("outcome", "Disabled")))] == 1
    assert samples[("dnswatch_collector_feed_last_pull_success", (("feed", "c2"),))] == 1
    assert samples[("dnswatch_collector_feed_last_pull_timestamp_seconds", (("feed", "c2"),))] == 1795311300.0
    assert samples[("dnswatch_collector_feed_last_pull_success", (("feed", "exfil"),))] == 0
    assert samples[("dnswatch_collector_feed_last_pull_timestamp_seconds", (("feed", "exfil"),))] == 1795311301.0
    metrics.set_feeds([feed("c2", 1, 10)])  # exfil deleted: its pull series end with it
    samples = scrape(server.port)
    assert ("dnswatch_collector_feed_last_pull_success", (("feed", "exfil"),)) not in samples
    assert ("dnswatch_collector_feed_last_pull_success", (("feed", "c2"),)) in samples


def test_streams_open_now_and_opened_in_total(metrics, server):
    async def hold_streams():
        with metrics.stream("ingest"), metrics.stream("watch"):
            with metrics.stream("ingest"):
                inside = scrape(server.port)
            try:
                with metrics.stream("feeds"):
                    raise ConnectionResetError("the agent went away")
            except ConnectionResetError:
                pass
            return inside

    inside = asyncio.run(hold_streams())
    assert inside[("dnswatch_collector_streams", (("stream", "ingest"),))] == 2
    assert inside[("dnswatch_collector_streams", (("stream", "watch"),))] == 1
    assert inside[("dnswatch_collector_streams", (("stream", "feeds"),))] == 0
    after = scrape(server.port)
    for kind in ("ingest", "feeds", "watch"):
        assert after[("dnswatch_collector_streams", (("stream", kind),))] == 0
    assert after[("dnswatch_collector_streams_opened_total", (("stream", "ingest"),))] == 2
    assert after[("dnswatch_collector_streams_opened_total", (("stream", "feeds"),))] == 1
    with pytest.raises(ValueError, match="ingest, feeds, watch"):
        metrics.stream_opened("consumers")


def test_auth_failures_by_reason(metrics, server):
    metrics.observe_auth_failure("bad-token")
    metrics.observe_auth_failure("bad-token")
    assert scrape(server.port)[("dnswatch_collector_auth_failures_total", (("reason", "bad-token"),))] == 2


def test_two_collectors_in_one_process_do_not_share_counters(metrics, server):
    other = CollectorMetrics()
    other.observe_retention(9)
    with serve_metrics(other.registry, 0, host="127.0.0.1") as second:
        assert scrape(second.port)[("dnswatch_collector_events_deleted_total", ())] == 9
    assert scrape(server.port)[("dnswatch_collector_events_deleted_total", ())] == 0


def test_counting_store_counts_what_a_real_ingest_service_stores_from_a_real_shipper(metrics, server, tmp_path):
    """The wiring the docstring proposes, end to end: EventShipper → EventIngest (grpc.aio on 127.0.0.1:0) →
    metrics.counting_store(SQLite store)."""
    sent = [make_event(n) for n in range(5)] + [make_event(1, count=4)]  # a grown event replaces its row

    async def run() -> tuple[bool, int]:
        store = await open_store(f"sqlite:///{tmp_path / 'db.sqlite'}")
        grpc_server = grpc.aio.server()
        try:
            add_ingest_service(grpc_server, metrics.counting_store(store))
            port = grpc_server.add_insecure_port("127.0.0.1:0")
            await grpc_server.start()
            shipper = EventShipper(lambda: grpc.insecure_channel(f"127.0.0.1:{port}"), ShipperSettings(linger=0.01))
            try:
                for event in sent[:5]:
                    shipper.offer(event)
                assert await asyncio.to_thread(shipper.flush, 30)
                shipper.offer(sent[5])
                flushed = await asyncio.to_thread(shipper.flush, 30)
            finally:
                await asyncio.to_thread(shipper.close)
            return flushed, await store.latest_event_seq()  # any other call goes to the store itself
        finally:
            await grpc_server.stop(None)
            await store.close()

    flushed, seq = asyncio.run(run())
    assert flushed and seq >= 6
    samples = scrape(server.port)
    assert samples[("dnswatch_collector_events_ingested_total", (("outcome", "inserted"),))] == 5
    assert samples[("dnswatch_collector_events_ingested_total", (("outcome", "replaced"),))] == 1
    assert samples[("dnswatch_collector_ingest_batches_total", ())] >= 2
    assert samples[("dnswatch_collector_ingest_errors_total", ())] == 0


def test_counting_store_counts_a_refused_batch(metrics, server, tmp_path):
    async def run() -> None:
        store = metrics.counting_store(await open_store(f"sqlite:///{tmp_path / 'db.sqlite'}"))
        try:
            with pytest.raises(BadEvent):
                await store.ingest_events([{"id": "no other field"}])
        finally:
            await store.close()

    asyncio.run(run())
    assert scrape(server.port)[("dnswatch_collector_ingest_errors_total", ())] == 1


def test_counting_pulls_counts_then_hands_the_result_on(metrics, server):
    handed: list[PullResult] = []

    async def record_pull(result: PullResult) -> None:
        handed.append(result)

    on_result = metrics.counting_pulls(record_pull)
    result = PullResult(feed="c2", outcome=UPDATED, state=FeedState())
    asyncio.run(on_result(result))
    assert handed == [result]
    assert scrape(server.port)[("dnswatch_collector_feed_pulls_total", (("feed", "c2"), ("outcome", "Updated")))] == 1


def test_feeds_read_at_each_scrape_and_a_failed_read_keeps_the_last(metrics, server):
    current = [feed("c2", 1, 10)]

    def feeds() -> list[FeedInfo]:
        if current is None:
            raise RuntimeError("dictionary changed size during iteration")
        return list(current)

    metrics.read_feeds_from(feeds)
    c2 = (("content", "DomainNameSet"), ("feed", "c2"))
    assert scrape(server.port)[("dnswatch_collector_feed_version", c2)] == 1
    current[0] = feed("c2", 2, 12)
    assert scrape(server.port)[("dnswatch_collector_feed_version", c2)] == 2
    current = None
    assert scrape(server.port)[("dnswatch_collector_feed_version", c2)] == 2


def test_probes_follow_their_callables(metrics):
    ready = threading.Event()
    with serve_metrics(metrics.registry, 0, host="127.0.0.1", ready=ready.is_set) as server:
        base = f"http://127.0.0.1:{server.port}"
        assert httpx.get(f"{base}/healthz").status_code == 200
        assert httpx.get(f"{base}/readyz").status_code == 503
        ready.set()
        assert httpx.get(f"{base}/readyz").text == "ready\n"
