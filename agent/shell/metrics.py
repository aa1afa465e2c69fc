"""The agent's Prometheus series (docs/operations.md): what it captured, decoded, matched, emitted and shipped.

    metrics = AgentMetrics(node="node-1")
    server = serve_metrics(metrics.registry, port=9478, ready=lambda: synced.is_set())
    ...                                    # every tick, from the thread that owns each counter:
    metrics.observe_replay_stats(stats)    # packets, DNS messages, malformed, matched, events emitted
    metrics.observe_interface("cali1", packets=..., drops=...)
    metrics.observe_shipper(shipper.stats())  # or observe_outbox / observe_spool / observe_sent
    metrics.set_feeds(held.feeds())

The per-packet loop never touches prometheus_client (docs/architecture.md: a few µs a packet in all): it keeps
plain integer counters, as replay's `ReplayStats` does, and the owner of those counters hands a *snapshot of
the totals* here now and then (each tick). A scrape renders the latest snapshots, so a counter is exactly
the pipeline's own count at the last tick, and no lock is shared with the hot path.

Every `observe_*` takes totals since the process started (or since the interface appeared) — never
increments — so calling it twice with the same stats changes nothing. Counters that restart (an interface
that vanished and came back) are counter resets, which Prometheus' rate() handles.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from dnswatch.version import package_version

__all__ = ["AgentMetrics", "InterfaceCounters", "PREFIX"]

PREFIX = "dnswatch_agent"


@dataclass(frozen=True, slots=True)
class InterfaceCounters:
    """One capture socket's kernel counters (PACKET_STATISTICS), summed since the interface was opened.

    The kernel resets PACKET_STATISTICS on every read: the capture adds each read to its running totals and
    hands those totals here.
    """

    packets: int
    """Packets the kernel delivered to the socket's filter and queued (tp_packets, drops included)."""
    drops: int
    """Packets the kernel dropped because the socket's buffer or ring was full (tp_drops)."""


@dataclass(frozen=True, slots=True)
class _Pipeline:
    packets: int = 0
    dns_messages: int = 0
    malformed: int = 0
    matched_messages: int = 0
    events: int = 0
    decode: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class _Shipping:
    acked: int = 0
    dropped: int = 0
    refused: int = 0
    replaced: int = 0
    queued: int = 0
    in_flight: int = 0
    # What only some sources know stays None until one reports it, so no series claims a 0 it never counted.
    sent: int | None = None
    recovered: int | None = None
    streams: int | None = None
    queued_bytes: int | None = None
    in_flight_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class _Spool:
    events: int = 0
    dropped: int = 0
    file_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class _Loop:
    last_progress: float | None = None
    liveness_timeout: float | None = None


@dataclass(frozen=True, slots=True)
class _Feed:
    content: str
    version: int
    entries: int


class AgentMetrics:
    """The agent's registry and the snapshots it renders; every method is thread-safe and cheap."""

    def __init__(self, node: str = "", version: str = "") -> None:
        self.registry = CollectorRegistry()
        """This agent's own registry (never prometheus_client's global one: tests run several agents)."""
        self._lock = threading.Lock()
        self._info = {"node": node, "version": version or package_version()}
        self._pipeline = _Pipeline()
        self._interfaces: dict[str, InterfaceCounters] = {}
        self._shipping = _Shipping()
        self._spool: _Spool | None = None
        self._feeds: dict[str, _Feed] = {}
        self._connected: dict[str, bool] = {}
        self._pods: int | None = None
        self._loop = _Loop()
        self.registry.register(_Renderer(self))
        ProcessCollector(registry=self.registry)  # CPU seconds and memory: what the agent costs its node

    # -- what the pipeline saw

    def observe_replay_stats(self, stats: Any) -> None:
        """Totals of a `ReplayStats`: `packets`, `dns_messages`, `malformed`, `matched_messages`, `events` and the
        decoder's counters `decode` (a flat dict, `DecodeStats.as_dict()`)."""
        self.observe_pipeline(packets=stats.packets, dns_messages=stats.dns_messages, malformed=stats.malformed,
                              matched_messages=stats.matched_messages, events=stats.events,
                              decode=getattr(stats, "decode", None))

    def observe_pipeline(self, *, packets: int, dns_messages: int, malformed: int, matched_messages: int,
                         events: int, decode: Mapping[str, int] | None = None) -> None:
        """The same totals one by one, for a live run whose counters live in several objects."""
        snapshot = _Pipeline(
            packets=int(packets), dns_messages=int(dns_messages), malformed=int(malformed),
            matched_messages=int(matched_messages), events=int(events),
            decode=tuple(sorted((str(k), int(v)) for k, v in (decode or {}).items() if isinstance(v, int))),
        )
        with self._lock:
            self._pipeline = snapshot

    def observe_interface(self, name: str, counters: InterfaceCounters | None = None, *, packets: int = 0,
                          drops: int = 0) -> None:
        """The kernel counters of the socket capturing `name` (totals since it was opened)."""
        if counters is None:
            counters = InterfaceCounters(int(packets), int(drops))
        with self._lock:
            self._interfaces[name] = counters

    def forget_interface(self, name: str) -> None:
        """The interface vanished: its series end (a pod's veth goes with the pod)."""
        with self._lock:
            self._interfaces.pop(name, None)

    def set_interfaces(self, interfaces: Mapping[str, InterfaceCounters]) -> None:
        """Every captured interface at once: those not named are forgotten."""
        with self._lock:
            self._interfaces = dict(interfaces)

    def observe_loop_progress(self, unix_time: float) -> None:
        """The capture loop came round at `unix_time` (wall clock). Only the loop calls this, from between two
        packets: while it is stuck inside one, the series stops where it was and scrapes keep showing it."""
        with self._lock:
            self._loop = replace(self._loop, last_progress=float(unix_time))

    def set_liveness_timeout(self, seconds: float) -> None:
        """How long the loop may make no progress before /healthz fails (`--liveness-timeout`)."""
        with self._lock:
            self._loop = replace(self._loop, liveness_timeout=float(seconds))

    # -- where the events went

    def observe_shipper(self, stats: Any) -> None:
        """A `ShipperStats` (agent/shell/shipper.py): the outbox's depth and totals, the spool's, and whether the
        event stream is up."""
        with self._lock:
            self._shipping = replace(
                self._shipping, acked=int(stats.acked), dropped=int(stats.dropped),
                refused=int(getattr(stats, "refused", 0)), replaced=int(stats.replaced), queued=int(stats.queued),
                in_flight=int(stats.in_flight), recovered=int(stats.recovered), streams=int(stats.streams),
            )
            self._spool = _Spool(events=int(stats.spooled), dropped=int(stats.spool_dropped),
                                 file_bytes=self._spool.file_bytes if self._spool is not None else None)
            self._connected["events"] = bool(stats.streaming)

    def observe_outbox(self, stats: Any) -> None:
        """An `OutboxStats`: events (and bytes) queued and in flight now; totals acknowledged, dropped, replaced."""
        with self._lock:
            self._shipping = replace(
                self._shipping, acked=int(stats.acked), dropped=int(stats.dropped), replaced=int(stats.replaced),
                queued=int(stats.queued), queued_bytes=int(stats.queued_bytes), in_flight=int(stats.in_flight),
                in_flight_bytes=int(stats.in_flight_bytes),
            )

    def observe_sent(self, events_sent: int) -> None:
        """Total events the shipper has put on the wire (a batch sent again after a reconnect counts again)."""
        with self._lock:
            self._shipping = replace(self._shipping, sent=int(events_sent))

    def observe_spool(self, stats: Any) -> None:
        """A `SpoolStats`: events held on disk now, the log file's size; total events dropped at its byte bound."""
        with self._lock:
            self._spool = _Spool(events=int(stats.events), dropped=int(stats.dropped), file_bytes=int(stats.file_bytes))

    def set_collector_connected(self, stream: str, connected: bool) -> None:
        """Whether the `feeds` subscription or the `events` stream to the collector is up now."""
        with self._lock:
            self._connected[stream] = bool(connected)

    # -- what the agent holds

    def set_feeds(self, feeds: Iterable[Any]) -> None:
        """Every feed held now (`HeldFeed`s: `name`, `content`, `version`, `entries`); others are forgotten."""
        snapshot = {f.name: _Feed(str(f.content), int(f.version), int(f.entries)) for f in feeds}
        with self._lock:
            self._feeds = snapshot

    def set_pods(self, count: int) -> None:
        """Pods in the attribution directory now (this node's, plus deleted ones kept for their grace period)."""
        with self._lock:
            self._pods = int(count)

    # -- rendering (called by the registry on each scrape)

    def _families(self) -> Iterator[Any]:
        with self._lock:
            info, pipeline, shipping, spool = dict(self._info), self._pipeline, self._shipping, self._spool
            interfaces, feeds = dict(self._interfaces), dict(self._feeds)
            connected, pods, loop = dict(self._connected), self._pods, self._loop
        p = PREFIX
        yield InfoMetricFamily(f"{p}_build", "The agent's version and node.", value=info)
        if loop.last_progress is not None:
            yield GaugeMetricFamily(f"{p}_loop_last_progress_timestamp_seconds", "When the capture loop last came "
                                    "round (unix time; about every second, quiet or not). It stops moving while "
                                    "the loop is stuck.", value=loop.last_progress)
        if loop.liveness_timeout is not None:
            yield GaugeMetricFamily(f"{p}_loop_liveness_timeout_seconds", "Seconds without progress of the "
                                    "capture loop after which /healthz fails (--liveness-timeout).",
                                    value=loop.liveness_timeout)
        for name, doc, value in (
            ("packets", "Frames read from the capture sockets or files.", pipeline.packets),
            ("dns_messages", "Whole DNS messages decoded (UDP datagrams, reassembled TCP messages).",
             pipeline.dns_messages),
            ("malformed_messages", "DNS messages found damaged (counted and skipped, never raised).",
             pipeline.malformed),
            ("matched_messages", "DNS messages with at least one feed match.", pipeline.matched_messages),
            ("events_emitted", "Event emissions (an event that grows is emitted again under its id).",
             pipeline.events),
        ):
            yield CounterMetricFamily(f"{p}_{name}", doc, value=value)
        decoder = CounterMetricFamily(f"{p}_decoder", "The decoder's counters: non-DNS frames, fragments, TCP "
                                      "gaps and evictions...", labels=["counter"])
        for counter, value in pipeline.decode:
            decoder.add_metric([counter], value)
        yield decoder

        kernel_packets = CounterMetricFamily(f"{p}_interface_packets", "Packets the kernel queued to the capture "
                                             "socket of an interface (PACKET_STATISTICS tp_packets).",
                                             labels=["interface"])
        kernel_drops = CounterMetricFamily(f"{p}_kernel_drops", "Packets the kernel dropped because the capture "
                                           "socket was full (PACKET_STATISTICS tp_drops).", labels=["interface"])
        for name in sorted(interfaces):
            kernel_packets.add_metric([name], interfaces[name].packets)
            kernel_drops.add_metric([name], interfaces[name].drops)
        yield kernel_packets
        yield kernel_drops
        yield GaugeMetricFamily(f"{p}_capture_interfaces", "Interfaces being captured now.", value=len(interfaces))

        if shipping.sent is not None:
            yield CounterMetricFamily(f"{p}_events_sent", "Events put on the wire to the collector (resends count "
                                      "again).", value=shipping.sent)
        yield CounterMetricFamily(f"{p}_events_acknowledged", "Events the collector acknowledged (stored).",
                                  value=shipping.acked)
        dropped = CounterMetricFamily(f"{p}_events_dropped", "Events dropped unacknowledged: a bound of the outbox "
                                      "or the spool was hit, or the collector refused their batch.", labels=["where"])
        dropped.add_metric(["outbox"], shipping.dropped)
        dropped.add_metric(["refused"], shipping.refused)
        if spool is not None:
            dropped.add_metric(["spool"], spool.dropped)
        yield dropped
        yield CounterMetricFamily(f"{p}_events_replaced", "Unacknowledged emissions superseded by a newer emission "
                                  "of the same event.", value=shipping.replaced)
        if shipping.recovered is not None:
            yield CounterMetricFamily(f"{p}_events_recovered", "Events recovered from the spool at start.",
                                      value=shipping.recovered)
        if shipping.streams is not None:
            yield CounterMetricFamily(f"{p}_event_streams_opened", "Event streams opened to the collector (1 plus "
                                      "the reconnections).", value=shipping.streams)
        queue = GaugeMetricFamily(f"{p}_outbox_events", "Events held for the collector now.", labels=["state"])
        queue.add_metric(["queued"], shipping.queued)
        queue.add_metric(["in_flight"], shipping.in_flight)
        yield queue
        if shipping.queued_bytes is not None and shipping.in_flight_bytes is not None:
            queue_bytes = GaugeMetricFamily(f"{p}_outbox_bytes", "Bytes of the events held for the collector now.",
                                            labels=["state"])
            queue_bytes.add_metric(["queued"], shipping.queued_bytes)
            queue_bytes.add_metric(["in_flight"], shipping.in_flight_bytes)
            yield queue_bytes
        if spool is not None:
            yield GaugeMetricFamily(f"{p}_spool_events", "Unacknowledged events held in the on-disk spool.",
                                    value=spool.events)
            if spool.file_bytes is not None:
                yield GaugeMetricFamily(f"{p}_spool_bytes", "Size of the spool's log file.", value=spool.file_bytes)
        up = GaugeMetricFamily(f"{p}_collector_connected", "1 while the stream to the collector is up.",
                               labels=["stream"])
        for stream in sorted(connected):
            up.add_metric([stream], 1 if connected[stream] else 0)
        yield up

        version = GaugeMetricFamily(f"{p}_feed_version", "The collector's version of each feed held.",
                                    labels=["feed", "content"])
        entries = GaugeMetricFamily(f"{p}_feed_entries", "Entries (domains or addresses) of each feed held.",
                                    labels=["feed", "content"])
        for name in sorted(feeds):
            feed = feeds[name]
            version.add_metric([name, feed.content], feed.version)
            entries.add_metric([name, feed.content], feed.entries)
        yield version
        yield entries
        yield GaugeMetricFamily(f"{p}_feeds", "Feeds held.", value=len(feeds))
        if pods is not None:
            yield GaugeMetricFamily(f"{p}_pods", "Pods in the attribution directory.", value=pods)


class _Renderer(Collector):
    def __init__(self, metrics: AgentMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Any]:
        return self._metrics._families()
