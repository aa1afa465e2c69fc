"""`dnswatch-agent run`: live capture on the node's pod interfaces through the same pipeline as replay.

    capture (AF_PACKET + kernel filter, agent.shell.capture) → Decoder → Matcher → EventPipeline → output

Feeds come from the flags, or from the collector (`--collector`: synced at start, then followed, each change a
new Matcher taken over by the loop), which also receives the events (agent.shell.shipper). Pods come from
`--pods` (a static list), or are watched through the API (`--kubeconfig`, or in-cluster when
running in a pod: agent.shell.podwatch, a thread filling the PodDirectory the pipeline reads). The loop is
replay's: decode, look the message up in the matcher's cache or scan it, hand matches to the
pipeline. Time is the wall clock: the capture calls back about once a second, quiet or not, and the pipeline
is ticked then, so a window closes on time and an unanswered query becomes a transaction `tx_timeout` after it
was made. SIGTERM or SIGINT stops the loop; pending aggregates are flushed, the summary goes to stderr, and
the exit status is 0.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from dnswatch.errors import BadInput, DnswatchError
from agent.shell.cli import PipelineOptions, pipeline_options

DEFAULT_INTERFACES = "cali*,veth*,lxc*,eni*"
LIVENESS_SECONDS = 30.0
"""The default of `--liveness-timeout`; deploy/daemonset.yaml's liveness probe is sized for it."""


@dataclass(frozen=True, kw_only=True)
class RunConfig(PipelineOptions):
    """Everything `run` was asked to do (beside what replay is told too: PipelineOptions)."""

    interfaces: tuple[str, ...]
    """Interface name patterns (fnmatch) to capture on."""
    kubeconfig: Path | None = None
    """Watch this node's pods through the API server of this kubeconfig (instead of `pods`)."""
    in_cluster: bool = False
    """Watch this node's pods with the in-cluster ServiceAccount (neither `pods` nor `kubeconfig` given, and
    running in a pod: KUBERNETES_SERVICE_HOST is set)."""
    pods_sync_timeout: float = 30.0
    """Seconds to wait for the first pod list before capturing anyway (clients are reported by address
    until it arrives)."""
    log_level: str = "INFO"
    log_format: str = "text"
    """`text` or `json` (one object per line on stderr)."""
    ring_bytes: int = 2 * 1024 * 1024
    """TPACKET_V3 ring per captured interface; 0: `recvfrom` from a socket buffer of `buffer_bytes`."""
    buffer_bytes: int = 8 * 1024 * 1024
    """Kernel receive buffer per captured interface, without a ring."""
    metrics_port: int | None = None
    """Serve /metrics, /healthz and /readyz on this port (0: any free one); None: no endpoint."""
    stats_every: float = 0.0
    """Seconds between two progress lines on stderr (packets, kernel drops); 0 for none."""
    liveness_timeout: float = LIVENESS_SECONDS
    """/healthz fails once the capture loop has made no progress for this many seconds (it comes round about
    once a second, quiet or not), so that the liveness probe restarts an agent stuck inside one packet."""
    channel: object = None
    """How to reach the collector (dnswatch.grpcchannel.ChannelSecurity); None without a collector."""
    spool_dir: Path | None = None
    """With a collector: keep unacknowledged events here, so that a restarted agent resends them."""


def add_run_parser(commands) -> None:
    """Register `run` on the `dnswatch-agent` subcommand parsers (called from agent.shell.cli)."""
    from agent.shell.cli import add_feed_arguments, add_pipeline_arguments, parse_window
    from dnswatch.grpcchannel import add_channel_arguments
    from dnswatch.logfmt import add_log_arguments

    run = commands.add_parser("run", help="capture DNS on the node's pod interfaces")
    run.add_argument("--interfaces", default=DEFAULT_INTERFACES, metavar="PATTERNS",
                     help=f"comma-separated interface name patterns (default {DEFAULT_INTERFACES})")
    add_feed_arguments(run)
    pods = run.add_mutually_exclusive_group()
    pods.add_argument("--pods", type=Path, metavar="PODLIST.json",
                      help="a static pod list (`kubectl get pods -A -o json`) for hosts without an API")
    pods.add_argument("--kubeconfig", type=Path, metavar="FILE",
                      help="watch this node's pods through this kubeconfig's API server (default: in-cluster "
                      "when running in a pod)")
    run.add_argument("--node", default=None,
                     help="node name reported in events (default $NODE_NAME, else the host name)")
    add_pipeline_arguments(run)
    run.add_argument("--ring-mb", type=float, default=2.0, metavar="MB",
                     help="TPACKET_V3 ring per interface, MiB (default 2); 0 reads packet by packet with recvfrom")
    run.add_argument("--buffer-mb", type=parse_window, default=8.0, metavar="MB",
                     help="without a ring: socket receive buffer per interface, MiB (default 8; above "
                     "net.core.rmem_max only with CAP_NET_ADMIN)")
    run.add_argument("--stats-every", type=float, default=0.0, metavar="SECONDS",
                     help="log packet and kernel drop counts this often (default never)")
    run.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                     help="serve /metrics, /healthz and /readyz on this port (default: none)")
    run.add_argument("--liveness-timeout", type=parse_window, default=LIVENESS_SECONDS, metavar="SECONDS",
                     help="/healthz fails once the capture loop has made no progress for this long (default "
                     f"{LIVENESS_SECONDS:g}, what the DaemonSet's liveness probe expects)")
    run.add_argument("--collector", metavar="ADDR",
                     help="take the feeds from the collector at HOST:PORT, follow their changes, and send it the "
                     "events (still printed with -o); TLS unless --insecure")
    run.add_argument("--collector-timeout", type=parse_window, default=30.0, metavar="SECONDS",
                     help="how long to wait for the collector's feeds at start and its acknowledgements at the "
                     "stop (default 30)")
    run.add_argument("--spool-dir", "--spool", dest="spool_dir", type=Path, metavar="DIR",
                     help="with --collector: keep unacknowledged events in DIR across restarts")
    add_channel_arguments(run)
    add_log_arguments(run)


def run_config(args: argparse.Namespace) -> RunConfig:
    patterns = tuple(p.strip() for p in args.interfaces.split(",") if p.strip())
    if not patterns:
        raise BadInput("--interfaces needs at least one interface name pattern")
    if not 0 <= args.ring_mb <= 1024:
        raise BadInput("--ring-mb must be between 0 (no ring) and 1024")
    if args.liveness_timeout < 2:
        raise BadInput("--liveness-timeout must be at least 2 seconds: the capture loop comes round once a second")
    from dnswatch.grpcchannel import channel_security_from_args, security_flags_given

    if args.collector is None:
        if security_flags_given(args):
            raise BadInput(f"{', '.join(security_flags_given(args))}: only with --collector")
        if args.spool_dir is not None:
            raise BadInput("--spool-dir: only with --collector (it holds the events not yet sent to it)")
    elif not args.collector:
        raise BadInput("--collector needs the collector's address, HOST:PORT")
    elif args.feed or args.ip_feed or args.feed_manifest:
        raise BadInput("--collector takes the feeds from the collector: drop --feed, --ip-feed and --feed-manifest")
    return RunConfig(
        **pipeline_options(args, node=args.node or os.environ.get("NODE_NAME") or socket.gethostname()),
        interfaces=patterns,
        kubeconfig=args.kubeconfig,
        in_cluster=args.pods is None and args.kubeconfig is None and bool(os.environ.get("KUBERNETES_SERVICE_HOST")),
        log_level=args.log_level,
        log_format=args.log_format,
        ring_bytes=int(args.ring_mb * 1024 * 1024),
        buffer_bytes=int(args.buffer_mb * 1024 * 1024),
        metrics_port=args.metrics_port,
        channel=channel_security_from_args(args) if args.collector else None,
        spool_dir=args.spool_dir,
        stats_every=args.stats_every,
        liveness_timeout=args.liveness_timeout,
    )


@dataclass
class RunStats:
    """What a run went through, for the summary line."""

    dns_messages: int = 0
    malformed: int = 0
    matched_messages: int = 0
    events: int = 0
    rounds: int = 0
    """Seconds the capture loop has come round (its heartbeat)."""
    started: float = field(default_factory=time.monotonic)


log = logging.getLogger(__name__)


def run_live(config: RunConfig) -> int:
    from agent.core.attribution import PodDirectory
    from agent.core.decode import Decoder
    from agent.core.eventpipeline import EventPipeline
    from agent.shell.capture import CaptureSettings, LiveCapture
    from agent.shell.cli import local_matcher, read_pod_list
    from agent.shell.collectorlink import CollectorLink
    from dnswatch.logfmt import configure_logging
    from agent.shell.output import renderer

    configure_logging(config.log_level, config.log_format)
    watcher = None
    if config.pods:
        pods = PodDirectory.from_pod_list(read_pod_list(config.pods))
    elif config.kubeconfig or config.in_cluster:
        from agent.shell.podwatch import pod_directory_from_api

        pods, watcher = pod_directory_from_api(config.kubeconfig, config.node)
    else:
        pods = None
        log.warning("no --pods or --kubeconfig and not in a cluster: clients are reported by address")
    link = CollectorLink(config) if config.collector else None  # BadInput, one line, if it refuses us
    matcher = link.matcher if link is not None else local_matcher(config)
    if watcher is not None:
        watcher.start()
        if watcher.wait_synced(config.pods_sync_timeout):
            log.info("pods of node %s: %d listed from the API", config.node, watcher.counters()["pods"])
        else:
            log.warning("pods of node %s not listed after %.0fs: clients are reported by address until they are",
                        config.node, config.pods_sync_timeout)
    gc.collect()
    gc.freeze()  # feeds and pods live as long as the process: spare the collector walking them
    pipeline = EventPipeline(
        node=config.node,
        pods=pods,
        window=config.window,
        aggregate_by=config.aggregate_by,
        dns_server_selector=config.dns_server_selector,
    )
    capture = LiveCapture(
        CaptureSettings(patterns=config.interfaces, ports=config.ports, buffer_bytes=config.buffer_bytes,
                        ring_bytes=config.ring_bytes)
    )
    output = renderer(config.output)
    # Spooled (written to the file, agent.shell.shipper) before printed: a kill loses nothing it printed.
    emit = output if link is None else _both(link.shipper.offer, output)
    stats = RunStats()
    decoder = Decoder(config.ports)
    stopping: list[int] = []
    # When the capture loop last came round. Only the loop itself moves it (every_second, called from inside
    # capture.frames between two packets), never a thread of its own: a loop stuck inside one packet — a
    # write to a stdout nobody reads, a walk that never ends — stops it, and /healthz then fails.
    heartbeat = [time.monotonic()]
    metrics_server = None
    metrics = None
    if config.metrics_port is not None:
        from agent.shell.metrics import AgentMetrics
        from dnswatch.metricsserver import serve_metrics

        metrics = AgentMetrics(node=config.node)
        metrics.set_liveness_timeout(config.liveness_timeout)
        metrics.observe_loop_progress(time.time())
        try:
            metrics_server = serve_metrics(
                metrics.registry, config.metrics_port,
                healthy=lambda: time.monotonic() - heartbeat[0] < config.liveness_timeout,
                ready=lambda: bool(capture.interfaces or stats.rounds) and (watcher is None or watcher.synced)
                and (link is None or link.synced),
            )
        except OSError as error:
            raise DnswatchError(f"cannot serve metrics on port {config.metrics_port}: {error.strerror or error}")
        log.info("metrics, /healthz and /readyz on port %d", metrics_server.port)

    next_progress = time.monotonic() + config.stats_every
    build_errors_logged = 0

    def report_build_errors() -> None:
        """One warning line for the events that could not be built since the last one (at most one a second)."""
        nonlocal build_errors_logged
        if pipeline.build_errors > build_errors_logged:
            log.warning("%d events could not be built and were left out; the last error: %s",
                        pipeline.build_errors - build_errors_logged, pipeline.last_build_error)
            build_errors_logged = pipeline.build_errors

    def every_second(now: float) -> None:
        nonlocal next_progress
        heartbeat[0] = time.monotonic()
        if metrics is not None:
            metrics.observe_loop_progress(now)
        stats.rounds += 1
        for event in pipeline.tick(now):
            stats.events += 1
            emit(event)
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
        _loop(capture.frames(lambda: bool(stopping), every_second), decoder, matcher, pipeline, emit, stats,
              link.new_matchers if link is not None else [])
        for event in pipeline.finish():
            stats.events += 1
            emit(event)
        report_build_errors()
        if link is not None:
            link.finish(config.collector_timeout)
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
    print(_summary(capture.stats, stats, pipeline), file=sys.stderr, flush=True)
    return 0


def _loop(frames, decoder, matcher, pipeline, emit, stats: RunStats, new_matchers: list) -> None:
    """Replay's per-message loop over live frames (see agent.shell.replay._scan_messages); a matcher
    appended to `new_matchers` (feeds changed) takes over at the next message."""
    from agent.shell.replay import sighting_of

    scan_unseen = matcher.scan_unseen
    seen_before = matcher.seen_messages.get
    for ts, src, sport, dst, dport, proto, payload in decoder.messages(frames):
        if new_matchers:
            while new_matchers:
                matcher = new_matchers.pop(0)
            scan_unseen = matcher.scan_unseen
            seen_before = matcher.seen_messages.get
        key = payload[2:]
        damaged, matches = seen_before(key) or scan_unseen(payload, key)
        if damaged:
            stats.malformed += 1
        if matches:
            stats.matched_messages += 1
            for event in pipeline.observe(sighting_of(ts, src, sport, dst, dport, proto, payload, matches)):
                stats.events += 1
                emit(event)
    stats.dns_messages = decoder.stats.udp_messages + decoder.stats.tcp.messages


def _both(first, second):
    def emit(event: dict) -> None:
        first(event)
        second(event)

    return emit


def _observe(metrics, capture, decoder, stats: RunStats, pipeline) -> None:
    """Hand the metrics a snapshot of every total (never increments: agent.shell.metrics)."""
    from agent.shell.metrics import InterfaceCounters

    metrics.observe_pipeline(
        packets=capture.stats.frames,
        dns_messages=decoder.stats.udp_messages + decoder.stats.tcp.messages,
        malformed=stats.malformed,
        matched_messages=stats.matched_messages,
        events=stats.events,
        decode=decoder.stats.as_dict(),
    )
    metrics.set_interfaces({c.name: InterfaceCounters(c.packets, c.drops) for c in capture.stats.interfaces.values()})
    if pipeline.pods is not None:
        metrics.set_pods(len(pipeline.pods))


def _progress(capture_stats, decoder, stats: RunStats) -> str:
    return (f"{capture_stats.frames} packets, {decoder.stats.udp_messages + decoder.stats.tcp.messages} DNS "
            f"messages, {stats.events} events; kernel: {capture_stats.kernel_packets} packets, "
            f"{capture_stats.kernel_drops} drops")


def _summary(capture_stats, stats: RunStats, pipeline) -> str:
    seconds = time.monotonic() - stats.started
    interfaces = len(capture_stats.interfaces) + len(capture_stats.retired)
    per_interface = ", ".join(
        f"{c.name} {c.packets}/{c.drops}"
        for c in sorted([*capture_stats.interfaces.values(), *capture_stats.retired], key=lambda c: c.name)
    )
    return (
        f"captured {capture_stats.frames} packets on {interfaces} interfaces in {seconds:.1f}s: "
        f"{stats.dns_messages} DNS messages, {stats.malformed} malformed, {stats.matched_messages} matched, "
        f"{stats.events} events, {capture_stats.duplicate_copies} duplicate copies skipped; "
        f"kernel: {capture_stats.kernel_packets} packets, {capture_stats.kernel_drops} drops"
        + (f" (packets/drops: {per_interface})" if per_interface else "")
    )
