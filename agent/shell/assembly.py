"""The agent, assembled: `replay` and `run` built from their parts, in order, from a config of
agent/shell/config.py.

    replay: feeds (files, or the collector) → pods (a list) → event pipeline → output (and the collector)
            → captures read in order (agent/shell/replay.py) → the scan loop (agent/shell/scanloop.py)
    run:    logging → pods (a list, or watched through the API) → feeds (files, or the collector, followed)
            → event pipeline → live capture (AF_PACKET) → output (and the collector) → metrics endpoint
            → the scan loop, until SIGTERM or SIGINT

Both use the same scan loop and the same collector link (agent/shell/collectorlink.py); they differ in where
messages come from and what time is: a replay's time is its captures', so windows close as capture time
passes them; a live agent's is the wall clock, and the pipeline is ticked from the capture's once-a-second
callback, quiet or not, so a window closes on time and an unanswered query becomes a transaction `tx_timeout`
after it was made. A live agent stopped by a signal flushes pending aggregates, says its summary on stderr and
exits 0.
"""

from __future__ import annotations

import gc
import json
import logging
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from agent.core.attribution import PodDirectory
from agent.core.decode import Decoder
from agent.core.eventpipeline import EventPipeline
from agent.core.scanner import Matcher
from agent.shell import feeds as feed_loading
from agent.shell.capture import CaptureSettings, LiveCapture
from agent.shell.collectorlink import CollectorLink, LinkSettings
from agent.shell.config import EXIT_MATCHED, PipelineOptions, ReplayConfig, RunConfig
from agent.shell.metrics import AgentMetrics, InterfaceCounters
from agent.shell.output import renderer
from agent.shell.progress import Progress
from agent.shell.replay import replay
from agent.shell.scanloop import ScanCounts, drain, scan_messages
from dnswatch.errors import BadInput, DnswatchError
from dnswatch.logfmt import configure_logging
from dnswatch.metricsserver import listen_failure, serve_metrics

log = logging.getLogger("dnswatch.agent.run")


# -- replay ---------------------------------------------------------------------------------------------------


def run_replay(config: ReplayConfig) -> int:
    """Replay the captures; the exit status (EXIT_MATCHED when asked to fail on a match and something did)."""
    if config.log_level is not None:
        configure_logging(config.log_level)
    link = None
    if config.collector is not None:
        # A replay reports the stream's trouble in its last line (CollectorLink.finish); without this, Python's
        # last-resort handler would print each reconnection's warning on stderr as well.
        logging.getLogger("dnswatch.agent.shipper").addHandler(logging.NullHandler())
        link = CollectorLink(_link_settings(config), follow=False, say=_say)
    try:
        matcher = link.matcher if link is not None else local_matcher(config)
        pods = PodDirectory.from_pod_list(read_pod_list(config.pods)) if config.pods else None
        if pods is None:
            print("no --pods: clients are reported by address (give `kubectl get pods -A -o json` output to name "
                  "their pods)", file=sys.stderr)
        _freeze_what_lives_long()
        pipeline = event_pipeline(config, pods)
        output = renderer(config.output)
        # Spooled (written to the file, agent/shell/shipper.py) before printed: a kill loses nothing it printed.
        emit = output if link is None else _both(link.shipper.offer, output)
        progress = Progress.on_terminal(sys.stderr)
        stats = replay(config.captures, matcher, pipeline, config.ports, emit, progress)
        if progress:
            progress.done()
        output.close()
        for path in stats.truncated_files:
            print(f"warning: {path} ends in the middle of a packet record; the rest was replayed", file=sys.stderr)
        print(replay_summary(stats), file=sys.stderr)
        if link is not None:
            _say(link.finish())
    finally:
        if link is not None:
            link.close()
    return EXIT_MATCHED if config.fail_on_match and stats.matched_messages else 0


def replay_summary(stats) -> str:
    """The replay's last line. Emissions and events apart: an event that grows is emitted again under its id,
    so a collector holds fewer events than were emitted. The rate is the replay's own: the wait for the
    collector's acknowledgements comes after it, and says its own line."""
    emissions = "emission" if stats.events == 1 else "emissions"
    events = "event" if stats.distinct_events == 1 else "events"
    return (f"replayed {stats.packets:,} packets, {stats.dns_messages:,} DNS messages, {stats.malformed:,} malformed, "
            f"{stats.matched_messages:,} matched, {stats.events:,} {emissions} of {stats.distinct_events:,} {events} "
            f"in {stats.seconds:.2f}s ({stats.packets_per_second:,.0f} packets/s)")


def _say(line: str) -> None:
    print(line, file=sys.stderr)


# -- run --------------------------------------------------------------------------------------------------------


@dataclass
class RunStats:
    """What a run went through, for the summary line and the metrics."""

    counts: ScanCounts = field(default_factory=ScanCounts)
    dns_messages: int = 0
    rounds: int = 0
    """Seconds the capture loop has come round (its heartbeat)."""
    started: float = field(default_factory=time.monotonic)


def run_live(config: RunConfig) -> int:
    configure_logging(config.log_level, config.log_format)
    pods, watcher = _live_pods(config)
    link = CollectorLink(_link_settings(config), follow=True, say=log.info) if config.collector else None
    matcher = link.matcher if link is not None else local_matcher(config)
    if watcher is not None:
        watcher.start()
        if watcher.wait_synced(config.pods_sync_timeout):
            log.info("pods of node %s: %d listed from the API", config.node, watcher.counters()["pods"])
        else:
            log.warning("pods of node %s not listed after %.0fs: clients are reported by address until they are",
                        config.node, config.pods_sync_timeout)
    _freeze_what_lives_long()
    pipeline = event_pipeline(config, pods)
    capture = LiveCapture(CaptureSettings(patterns=config.interfaces, ports=config.ports,
                                          buffer_bytes=config.buffer_bytes, ring_bytes=config.ring_bytes))
    output = renderer(config.output)
    # Spooled (written to the file, agent/shell/shipper.py) before printed: a kill loses nothing it printed.
    emit = output if link is None else _both(link.shipper.offer, output)
    stats = RunStats()
    decoder = Decoder(config.ports)
    stopping: list[int] = []
    # When the capture loop last came round. Only the loop itself moves it (every_second, called from inside
    # capture.frames between two packets), never a thread of its own: a loop stuck inside one packet — a
    # write to a stdout nobody reads, a walk that never ends — stops it, and /healthz then fails.
    heartbeat = [time.monotonic()]
    metrics = AgentMetrics(node=config.node) if config.metrics_port is not None else None
    metrics_server = None
    if metrics is not None:
        metrics.set_liveness_timeout(config.liveness_timeout)
        metrics.observe_loop_progress(time.time())
        try:
            metrics_server = serve_metrics(
                metrics.registry, config.metrics_port, host=config.metrics_address,
                healthy=lambda: time.monotonic() - heartbeat[0] < config.liveness_timeout,
                # No interface to capture on is no agent at work, however long the loop has run.
                ready=lambda: bool(capture.interfaces) and (watcher is None or watcher.synced)
                and (link is None or link.synced),
            )
        except OSError as error:
            failure = listen_failure(config.metrics_address, config.metrics_port, error)
            raise DnswatchError(f"--metrics-port {config.metrics_port}: {failure}") from None
        log.info("metrics, /healthz and /readyz on port %d (%s)", metrics_server.port, metrics_server.address)

    next_progress = time.monotonic() + config.stats_every
    report_build_errors = _build_error_reporter(pipeline)
    report_interfaces = _interface_reporter(capture, config.interfaces)

    def every_second(now: float) -> None:
        nonlocal next_progress
        heartbeat[0] = time.monotonic()
        report_interfaces()
        if metrics is not None:
            metrics.observe_loop_progress(now)
        stats.rounds += 1
        stats.dns_messages = decoder.stats.udp_messages + decoder.stats.tcp.messages
        drain(pipeline.tick(now), emit, stats.counts)
        report_build_errors()
        if metrics is not None:
            _observe(metrics, capture, decoder, stats, pipeline)
            if link is not None:
                metrics.observe_shipper(link.shipper.stats())
                metrics.set_feeds(link.feeds)
        if config.stats_every > 0 and heartbeat[0] >= next_progress:
            next_progress = heartbeat[0] + config.stats_every
            log.info("%s", _progress(capture.stats, decoder, stats))

    def on_signal(signum, _frame) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        messages = decoder.messages(capture.frames(lambda: bool(stopping), every_second))
        scan_messages(messages, matcher, pipeline, emit, stats.counts,
                      new_matchers=link.new_matchers if link is not None else None)
        stats.dns_messages = decoder.stats.udp_messages + decoder.stats.tcp.messages
        drain(pipeline.finish(), emit, stats.counts)
        report_build_errors()
        if link is not None:
            try:
                log.info("%s", link.finish())
            except DnswatchError as error:
                log.warning("%s", error)
    except PermissionError as error:
        raise DnswatchError(f"cannot open a packet socket ({error.strerror}): run as root or with CAP_NET_RAW")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        capture.close()
        if watcher is not None:
            watcher.stop()
        if metrics_server is not None:
            metrics_server.close()
        if link is not None:
            link.close()
    output.close()
    print(_summary(capture.stats, stats), file=sys.stderr, flush=True)
    return 0


def _live_pods(config: RunConfig):
    """The PodDirectory the pipeline reads and, when it is watched through the API, its watcher (not started)."""
    if config.pods:
        return PodDirectory.from_pod_list(read_pod_list(config.pods)), None
    if config.kubeconfig or config.in_cluster:
        # Imported only in this mode: the kubernetes client is slow to import.
        from agent.shell.podwatch import pod_directory_from_api

        return pod_directory_from_api(config.kubeconfig, config.node)
    log.warning("no --pods or --kubeconfig and not in a cluster: clients are reported by address")
    return None, None


def _interface_reporter(capture: LiveCapture, patterns: tuple[str, ...]) -> Callable[[], None]:
    """A warning when no interface matches the patterns (the agent is then not ready), and a line when one
    does again; called once a second."""
    idle = [False]

    def report() -> None:
        if not capture.interfaces and not idle[0]:
            present = sorted(name for _index, name in socket.if_nameindex())
            shown = ", ".join(present[:12]) + (f" and {len(present) - 12} more" if len(present) > 12 else "")
            log.warning("no interface matches --interfaces %s (this host has %s): nothing is captured and "
                        "/readyz answers 503 until one appears", ",".join(patterns), shown or "none")
            idle[0] = True
        elif capture.interfaces and idle[0]:
            log.info("capturing again: %s", ", ".join(capture.interfaces))
            idle[0] = False

    return report


def _build_error_reporter(pipeline: EventPipeline) -> Callable[[], None]:
    """One warning line for the events that could not be built since the last one (called at most once a
    second)."""
    logged = [0]

    def report() -> None:
        if pipeline.build_errors > logged[0]:
            log.warning("%d events could not be built and were left out; the last error: %s",
                        pipeline.build_errors - logged[0], pipeline.last_build_error)
            logged[0] = pipeline.build_errors

    return report


def _observe(metrics: AgentMetrics, capture: LiveCapture, decoder: Decoder, stats: RunStats,
             pipeline: EventPipeline) -> None:
    """Hand the metrics a snapshot of every total (never increments: agent/shell/metrics.py)."""
    metrics.observe_pipeline(
        packets=capture.stats.frames,
        dns_messages=decoder.stats.udp_messages + decoder.stats.tcp.messages,
        malformed=stats.counts.malformed,
        matched_messages=stats.counts.matched_messages,
        events=stats.counts.events,
        decode=decoder.stats.as_dict(),
    )
    metrics.set_interfaces({c.name: InterfaceCounters(c.packets, c.drops) for c in capture.stats.interfaces.values()})
    if pipeline.pods is not None:
        metrics.set_pods(len(pipeline.pods))


def _progress(capture_stats, decoder: Decoder, stats: RunStats) -> str:
    return (f"{capture_stats.frames} packets, {decoder.stats.udp_messages + decoder.stats.tcp.messages} DNS "
            f"messages, {stats.counts.events} events; kernel: {capture_stats.kernel_packets} packets, "
            f"{capture_stats.kernel_drops} drops")


def _summary(capture_stats, stats: RunStats) -> str:
    seconds = time.monotonic() - stats.started
    interfaces = len(capture_stats.interfaces) + len(capture_stats.retired)
    per_interface = ", ".join(
        f"{c.name} {c.packets}/{c.drops}"
        for c in sorted([*capture_stats.interfaces.values(), *capture_stats.retired], key=lambda c: c.name)
    )
    counts = stats.counts
    return (
        f"captured {capture_stats.frames} packets on {interfaces} interfaces in {seconds:.1f}s: "
        f"{stats.dns_messages} DNS messages, {counts.malformed} malformed, {counts.matched_messages} matched, "
        f"{counts.events} events, {capture_stats.duplicate_copies} duplicate copies skipped; "
        f"kernel: {capture_stats.kernel_packets} packets, {capture_stats.kernel_drops} drops"
        + (f" (packets/drops: {per_interface})" if per_interface else "")
    )


# -- the parts both share ---------------------------------------------------------------------------------------


def local_matcher(config: PipelineOptions) -> Matcher:
    """The Matcher of the local feed flags (--feed, --ip-feed, --feed-manifest)."""
    loaded = [feed_loading.load_feed_file(*feed_loading.split_feed_flag(f), "DomainNameSet") for f in config.feeds]
    loaded += [feed_loading.load_feed_file(*feed_loading.split_feed_flag(f), "IPSet") for f in config.ip_feeds]
    for manifest in config.manifests:
        loaded += feed_loading.load_manifest(manifest)
    if not loaded:
        raise DnswatchError("no feeds: give --feed, --ip-feed, --feed-manifest or --collector")
    for feed in loaded:
        note = f", {feed.parsed.rejected} lines rejected" if feed.parsed.rejected else ""
        print(f"feed {feed.name}: {len(feed.parsed.entries)} {feed.content} entries{note}", file=sys.stderr)
    return feed_loading.build_matcher(loaded)  # the entries as text go with `loaded`: the matcher is ~10 bytes a domain


def event_pipeline(config: PipelineOptions, pods: PodDirectory | None) -> EventPipeline:
    return EventPipeline(node=config.node, pods=pods, window=config.window, aggregate_by=config.aggregate_by,
                         dns_server_selector=config.dns_server_selector)


def read_pod_list(path: Path) -> dict:
    """`--pods`: the JSON of `kubectl get pods -A -o json`; BadInput with one line when it is not."""
    try:
        pod_list = json.loads(path.read_bytes())
    except OSError as error:
        raise BadInput(f"cannot read pod list {path}: {error.strerror or error}") from error
    except ValueError as error:
        raise BadInput(f"{path}: not JSON: {error}") from error
    if not isinstance(pod_list, dict) or pod_list.get("kind") not in ("List", "PodList"):
        raise BadInput(f"{path}: expected the output of `kubectl get pods -A -o json` (a List or PodList)")
    return pod_list


def _link_settings(config: PipelineOptions) -> LinkSettings:
    assert config.collector and config.channel is not None  # cli.pipeline_options checked the flags
    return LinkSettings(config.collector, config.node, config.channel, config.collector_timeout, config.spool)


def _freeze_what_lives_long() -> None:
    """Feeds and pods live as long as the process: spare the garbage collector walking them again and again."""
    gc.collect()
    gc.freeze()


def _both(first, second):
    def emit(event: dict) -> None:
        first(event)
        second(event)

    return emit
