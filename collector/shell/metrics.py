"""The collector's Prometheus series: events ingested, feeds and their pulls, streams open.

    metrics = CollectorMetrics()
    server = serve_metrics(metrics.registry, port=9090, ready=lambda: started.is_set())
    metrics.read_feeds_from(hub.feeds)                                  # feeds' versions, entries, last sync
    FeedPuller(settings, on_result=metrics.counting_pulls(hub.record_pull), ...)   # pull outcomes
    add_ingest_service(server, metrics.counting_store(store), ...)     # events ingested, by outcome
    grpc.aio.server(interceptors=[..., StreamCounter(metrics)])          # streams open (collector/shell/streamcount.py)

(or tell it yourself: `observe_ingest(result)`, `observe_pull(feed, outcome)`, `set_feeds(hub.feeds())`,
`with metrics.stream("ingest"): ...`.)

Event and pull counters are plain prometheus_client counters bumped where the thing happens. The feeds are a
snapshot rendered on each scrape, so a feed removed from the cluster takes all its series with it at once
(`set_feeds` replaces the snapshot; `set_feed` and `remove_feed` edit one feed).

`serve_metrics` and `configure_logging` are re-exported from the agent's shell (the endpoint and the log
format are the same in both processes; the import contract allows exactly these two modules).
"""

from __future__ import annotations

import calendar
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from dnswatch.logfmt import add_log_arguments, configure_logging
from dnswatch.metricsserver import MetricsServer, package_version, serve_metrics
from dnswatch.feeds.feedinfo import FeedInfo

__all__ = ["CollectorMetrics", "MetricsServer", "PREFIX", "STREAM_KINDS", "add_log_arguments",
           "configure_logging", "serve_metrics"]

log = logging.getLogger("dnswatch.collector.metrics")

PREFIX = "dnswatch_collector"

STREAM_KINDS = ("ingest", "feeds", "watch")
"""`ingest`: agents sending events (EventIngest.Send); `feeds`: agents subscribed to the feeds
(FeedDistribution); `watch`: consumers following events (Events.Watch)."""

# Outcomes of a pull (dnswatch.feeds.outcomes) after which the feed holds a set as fresh as the source's.
_GOOD_PULLS = frozenset({"Updated", "Unchanged", "NotModified"})
_BAD_PULLS = frozenset({"Refused", "Failed"})


@dataclass(frozen=True, slots=True)
class _FeedSeries:
    content: str
    enabled: bool
    version: int
    entries: int
    rejected_lines: int
    error_conditions: int
    last_successful_sync: float | None


@dataclass(slots=True)
class _PullSeries:
    outcomes: dict[str, int]
    last_success: bool | None = None
    last_pull: float | None = None


class CollectorMetrics:
    """The collector's registry; every method is thread-safe and may be called from the event loop."""

    def __init__(self, version: str = "") -> None:
        self.registry = CollectorRegistry()
        """This collector's own registry (never the global one: tests run several collectors in one process)."""
        p = PREFIX
        self._events = Counter(f"{p}_events_ingested", "Events received from agents, by what the store did "
                               "with them: inserted (new id), replaced (grown), unchanged (already held).",
                               ["outcome"], registry=self.registry)
        for outcome in ("inserted", "replaced", "unchanged"):
            self._events.labels(outcome)  # present at 0 from the start, so rate() sees the first events
        self._batches = Counter(f"{p}_ingest_batches", "Event batches durably written and acknowledged.",
                                registry=self.registry)
        self._ingest_errors = Counter(f"{p}_ingest_errors", "Event batches refused or not stored (the agent "
                                      "sends them again).", registry=self.registry)
        self._deleted = Counter(f"{p}_events_deleted", "Events deleted by retention.", registry=self.registry)
        self._streams = Gauge(f"{p}_streams", "Long-lived streams open now: ingest (agents sending events), "
                              "feeds (agents subscribed to feeds), watch (consumers following events).",
                              ["stream"], registry=self.registry)
        self._streams_opened = Counter(f"{p}_streams_opened", "Long-lived streams opened.", ["stream"],
                                       registry=self.registry)
        for kind in STREAM_KINDS:
            self._streams.labels(kind)
            self._streams_opened.labels(kind)
        self._auth_failures = Counter(f"{p}_auth_failures", "Calls refused for their credentials, by reason.",
                                      ["reason"], registry=self.registry)
        self._lock = threading.Lock()
        self._version = version or package_version()
        self._feeds: dict[str, _FeedSeries] = {}
        self._pulls: dict[str, _PullSeries] = {}
        self._feeds_reader: Callable[[], Iterable[FeedInfo]] | None = None
        self.registry.register(_FeedRenderer(self))
        ProcessCollector(registry=self.registry)

    # -- events

    def observe_ingest(self, result: Any) -> None:
        """One batch durably written: an `IngestResult` (`inserted`, `updated`, `unchanged`)."""
        self._events.labels("inserted").inc(result.inserted)
        self._events.labels("replaced").inc(result.updated)
        self._events.labels("unchanged").inc(result.unchanged)
        self._batches.inc()

    def observe_ingest_error(self) -> None:
        """A batch that was refused (bad event) or that the store could not write."""
        self._ingest_errors.inc()

    def observe_retention(self, deleted: int) -> None:
        """A retention pass deleted `deleted` events."""
        self._deleted.inc(deleted)

    def observe_auth_failure(self, reason: str) -> None:
        """A call refused for its credentials (`no-token`, `bad-token`, `token-review-failed`, ...)."""
        self._auth_failures.labels(reason).inc()

    # -- streams

    def stream_opened(self, kind: str) -> None:
        kind = _stream_kind(kind)
        self._streams.labels(kind).inc()
        self._streams_opened.labels(kind).inc()

    def stream_closed(self, kind: str) -> None:
        self._streams.labels(_stream_kind(kind)).dec()

    @contextlib.contextmanager
    def stream(self, kind: str) -> Iterator[None]:
        """Count a stream as open for the duration of the block, however it ends (works in a coroutine)."""
        self.stream_opened(kind)
        try:
            yield
        finally:
            self.stream_closed(kind)

    # -- feeds

    def set_feeds(self, feeds: Iterable[FeedInfo]) -> None:
        """Every feed now (`FeedHub.feeds()`); series of feeds not named end."""
        snapshot = {feed.name: _feed_series(feed) for feed in feeds}
        with self._lock:
            self._feeds = snapshot
            for name in list(self._pulls):
                if name not in snapshot:
                    del self._pulls[name]

    def set_feed(self, feed: FeedInfo) -> None:
        """One feed's spec and status changed."""
        series = _feed_series(feed)
        with self._lock:
            self._feeds[feed.name] = series

    def remove_feed(self, name: str) -> None:
        """The feed was deleted: all its series end."""
        with self._lock:
            self._feeds.pop(name, None)
            self._pulls.pop(name, None)

    def observe_pull(self, feed: str, outcome: str, *, when: float | None = None) -> None:
        """A pull of `feed` ended with `outcome` (`PullResult.outcome`: Updated, Unchanged, NotModified, Refused,
        Failed, Disabled)."""
        with self._lock:
            pulls = self._pulls.setdefault(feed, _PullSeries({}))
            pulls.outcomes[outcome] = pulls.outcomes.get(outcome, 0) + 1
            if outcome in _GOOD_PULLS or outcome in _BAD_PULLS:  # Disabled says nothing about the source
                pulls.last_success = outcome in _GOOD_PULLS
                pulls.last_pull = time.time() if when is None else when

    # -- hooks: the collector's parts, counted without changing them

    def read_feeds_from(self, feeds: Callable[[], Iterable[FeedInfo]]) -> None:
        """Read the feeds at each scrape (`metrics.read_feeds_from(hub.feeds)`) instead of being told of each
        change. The read runs in the scrape's thread; one that fails (the hub changing under it) keeps the
        snapshot of the last read that worked."""
        with self._lock:
            self._feeds_reader = feeds

    def counting_pulls(self, on_result: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
        """The puller's `on_result`, counting each pull's outcome first:
        `FeedPuller(settings, on_result=metrics.counting_pulls(hub.record_pull))`."""

        async def record(result: Any) -> None:
            self.observe_pull(result.feed, result.outcome)
            await on_result(result)

        return record

    def counting_store(self, store: Any) -> Any:
        """`store`, with each `ingest_events` and `ingest_json` counted (its IngestResult, or an error): hand it to the ingest
        service, `add_ingest_service(server, metrics.counting_store(store), ...)`; every other call goes through
        unchanged."""
        return _CountingStore(store, self)

    def _families(self) -> Iterator[Any]:
        self._read_feeds()
        with self._lock:
            feeds = dict(self._feeds)
            pulls = {name: _PullSeries(dict(series.outcomes), series.last_success, series.last_pull)
                     for name, series in self._pulls.items()}
        p = PREFIX
        yield InfoMetricFamily(f"{p}_build", "The collector's version.", value={"version": self._version})
        labels = ["feed", "content"]
        version = GaugeMetricFamily(f"{p}_feed_version", "Version of the set in force (0 before the first good "
                                    "pull); bumped each time the set changes.", labels=labels)
        entries = GaugeMetricFamily(f"{p}_feed_entries", "Entries of the set in force.", labels=labels)
        rejected = GaugeMetricFamily(f"{p}_feed_rejected_lines", "Lines of the last good body that could not be "
                                     "an entry.", labels=labels)
        errors = GaugeMetricFamily(f"{p}_feed_error_conditions", "Error conditions in the feed's status now.",
                                   labels=labels)
        enabled = GaugeMetricFamily(f"{p}_feed_enabled", "1 for a feed in mode Enabled, 0 for Disabled.",
                                    labels=labels)
        synced = GaugeMetricFamily(f"{p}_feed_last_successful_sync_timestamp_seconds", "When a pull last "
                                   "succeeded (Unix time); absent before the first.", labels=labels)
        for name in sorted(feeds):
            feed = feeds[name]
            key = [name, feed.content]
            version.add_metric(key, feed.version)
            entries.add_metric(key, feed.entries)
            rejected.add_metric(key, feed.rejected_lines)
            errors.add_metric(key, feed.error_conditions)
            enabled.add_metric(key, 1 if feed.enabled else 0)
            if feed.last_successful_sync is not None:
                synced.add_metric(key, feed.last_successful_sync)
        yield from (version, entries, rejected, errors, enabled, synced)
        yield GaugeMetricFamily(f"{p}_feeds", "Feeds known.", value=len(feeds))

        total = CounterMetricFamily(f"{p}_feed_pulls", "Pulls ended, by outcome.", labels=["feed", "outcome"])
        last = GaugeMetricFamily(f"{p}_feed_last_pull_success", "1 when the feed's last pull (Refused and Failed "
                                 "included, Disabled not) got a good answer, 0 when it did not.", labels=["feed"])
        when = GaugeMetricFamily(f"{p}_feed_last_pull_timestamp_seconds", "When the feed's last pull ended (Unix "
                                 "time).", labels=["feed"])
        for name in sorted(pulls):
            series = pulls[name]
            for outcome in sorted(series.outcomes):
                total.add_metric([name, outcome], series.outcomes[outcome])
            if series.last_success is not None:
                last.add_metric([name], 1 if series.last_success else 0)
                when.add_metric([name], series.last_pull)
        yield from (total, last, when)


    def _read_feeds(self) -> None:
        reader = self._feeds_reader
        if reader is None:
            return
        try:
            infos = list(reader())
        except Exception as error:  # noqa: BLE001 - a scrape must answer; the last snapshot stands
            log.debug("metrics: cannot read the feeds (%s); showing the last snapshot", error)
            return
        self.set_feeds(infos)


class _CountingStore:
    """A store whose `ingest_events` and `ingest_json` results are counted; every other attribute is the
    store's own."""

    def __init__(self, store: Any, metrics: CollectorMetrics) -> None:
        self._store = store
        self._metrics = metrics

    async def ingest_events(self, *args: Any, **kwargs: Any) -> Any:
        return await self._counted(self._store.ingest_events(*args, **kwargs))

    async def ingest_json(self, *args: Any, **kwargs: Any) -> Any:
        return await self._counted(self._store.ingest_json(*args, **kwargs))

    async def _counted(self, ingest: Any) -> Any:
        try:
            result = await ingest
        except Exception:  # a cancelled call (the agent went away) is not the store's failure
            self._metrics.observe_ingest_error()
            raise
        self._metrics.observe_ingest(result)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class _FeedRenderer(Collector):
    def __init__(self, metrics: CollectorMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Any]:
        return self._metrics._families()


def _stream_kind(kind: str) -> str:
    if kind not in STREAM_KINDS:
        raise ValueError(f"stream kind must be one of {', '.join(STREAM_KINDS)}, not {kind!r}")
    return kind


def _feed_series(feed: FeedInfo) -> _FeedSeries:
    status = feed.status
    return _FeedSeries(content=feed.content or "unknown", enabled=feed.mode != "Disabled", version=status.version,
                       entries=status.entries, rejected_lines=status.rejected_lines,
                       error_conditions=len(status.error_conditions),
                       last_successful_sync=_unix_time(status.last_successful_sync))


def _unix_time(rfc3339: str | None) -> float | None:
    """`2026-11-27T21:53:31Z` (FeedStatus' form, always UTC) as Unix time; None for None or another form."""
    if not rfc3339:
        return None
    try:
        return float(calendar.timegm(time.strptime(rfc3339, "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return None
