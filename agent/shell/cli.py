"""`dnswatch-agent`: the command line. Flags become a frozen `ReplayConfig` here, and nowhere else."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from dnswatch.errors import DnswatchError
from dnswatch.grpcchannel import (ChannelSecurity, add_channel_arguments, channel_security_from_args,
                                     security_flags_given)

DEFAULT_PORTS = frozenset({53})


@dataclass(frozen=True, kw_only=True)
class PipelineOptions:
    """What `replay` and `run` are both told: the feeds, the pods, and how events are made and printed."""

    feeds: tuple[str, ...] = ()
    """`NAME=PATH` DomainNameSet files (any line format of docs/feeds.md)."""
    ip_feeds: tuple[str, ...] = ()
    """`NAME=PATH` IPSet files."""
    manifests: tuple[Path, ...] = ()
    """GlobalThreatFeed YAML files; their `file:` URLs are relative to the manifest."""
    pods: Path | None = None
    """`kubectl get pods -A -o json` output used to attribute clients to pods."""
    node: str = "-"
    """The node name events carry in `host`."""
    ports: frozenset[int] = DEFAULT_PORTS
    """UDP/TCP ports that carry DNS."""
    output: str = "json"
    """`json` (one event per line) or `table`."""
    window: float = 60.0
    """Aggregation window in seconds of capture time."""
    aggregate_by: str = "pod"
    """`pod` or `workload` (Calico's dnsLogsFileAggregationKind 0/1)."""
    dns_server_selector: str = "k8s-app=kube-dns"
    """Label selector of the cluster DNS pods, whose upstream queries raise no events."""
    collector: str | None = None
    """Collector address (`HOST:PORT`): feeds come from it and events go to it (and are still printed)."""
    collector_timeout: float = 30.0
    """Seconds to wait for the collector's feeds at start, and at the end for it to acknowledge every event."""


@dataclass(frozen=True, kw_only=True)
class ReplayConfig(PipelineOptions):
    """Everything `replay` was asked to do."""

    captures: tuple[Path, ...]
    """pcap or pcapng files, replayed in the order given."""
    channel: ChannelSecurity = ChannelSecurity()
    """How to reach the collector: TLS (CA, client certificate, token) unless `--insecure`."""
    spool: Path | None = None
    """Keep events not yet acknowledged by the collector in this directory: a later run resends them first."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, never the usage block, for bad input
        raise DnswatchError(message)


def parse_ports(text: str) -> frozenset[int]:
    try:
        ports = frozenset(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of ports: {text!r}") from None
    if not ports or not all(0 < port < 65536 for port in ports):
        raise argparse.ArgumentTypeError(f"ports must be 1-65535: {text!r}")
    return ports


def parse_window(text: str) -> float:
    try:
        value = float(text.rstrip("s"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("the window must be positive")
    return value


def add_feed_arguments(parser: argparse.ArgumentParser) -> None:
    """The local feed flags, the same on `replay` and `run`."""
    parser.add_argument("--feed", action="append", default=[], metavar="NAME=PATH", help="DomainNameSet file")
    parser.add_argument("--ip-feed", action="append", default=[], metavar="NAME=PATH", help="IPSet file")
    parser.add_argument("--feed-manifest", action="append", default=[], type=Path, metavar="FILE")


def add_pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    """What to decode and how events are made and printed, the same on `replay` and `run`."""
    parser.add_argument("--ports", type=parse_ports, default=DEFAULT_PORTS, help="DNS ports (default 53)")
    parser.add_argument("-o", "--output", choices=("json", "table"), default="json")
    parser.add_argument("--window", type=parse_window, default=60.0, help="aggregation window, seconds")
    parser.add_argument("--aggregate-by", choices=("pod", "workload"), default="pod")
    parser.add_argument("--dns-server-selector", default="k8s-app=kube-dns", metavar="SELECTOR")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dnswatch-agent", description="dnswatch node agent")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    replay = commands.add_parser("replay", help="replay pcap/pcapng files through detection")
    replay.add_argument("captures", nargs="+", type=Path, metavar="PCAP")
    add_feed_arguments(replay)
    replay.add_argument("--pods", type=Path, metavar="PODLIST.json")
    replay.add_argument("--node", default="-", help="node name reported in events (default -)")
    add_pipeline_arguments(replay)
    replay.add_argument(
        "--collector", metavar="ADDR",
        help="take the feeds from the collector at HOST:PORT (TLS unless --insecure) instead of --feed/--ip-feed/"
        "--feed-manifest, and send it the events (they are still printed with -o)",
    )
    replay.add_argument("--collector-timeout", type=parse_window, default=30.0, metavar="SECONDS",
                        help="how long to wait for the collector's feeds, and at the end for it to acknowledge "
                        "every event (default 30)")
    replay.add_argument("--spool", type=Path, metavar="DIR",
                        help="with --collector: keep unacknowledged events in DIR, so that a later replay (or "
                        "agent) with the same DIR resends them first")
    add_channel_arguments(replay)
    from agent.shell.run import add_run_parser

    add_run_parser(commands)
    return parser


def pipeline_options(args: argparse.Namespace, *, node: str) -> dict:
    """The PipelineOptions fields from the flags `replay` and `run` share, as keyword arguments."""
    return dict(feeds=tuple(args.feed), ip_feeds=tuple(args.ip_feed), manifests=tuple(args.feed_manifest),
                pods=args.pods, node=node, ports=args.ports, output=args.output, window=args.window,
                aggregate_by=args.aggregate_by, dns_server_selector=args.dns_server_selector,
                collector=args.collector, collector_timeout=args.collector_timeout)


def replay_config(args: argparse.Namespace) -> ReplayConfig:
    if args.collector is None and security_flags_given(args):
        raise DnswatchError(f"{', '.join(security_flags_given(args))}: only with --collector")
    if args.collector is None and args.spool is not None:
        raise DnswatchError("--spool: only with --collector (it holds the events not yet sent to it)")
    return ReplayConfig(
        **pipeline_options(args, node=args.node),
        captures=tuple(args.captures),
        channel=channel_security_from_args(args) if args.collector else ChannelSecurity(),
        spool=args.spool,
    )


def run_replay(config: ReplayConfig) -> int:
    from agent.core.attribution import PodDirectory
    from agent.core.eventpipeline import EventPipeline
    from agent.shell.output import renderer
    from agent.shell.progress import Progress
    from agent.shell.replay import replay

    if config.collector is not None:
        matcher = _collector_matcher(config)
    else:
        matcher = local_matcher(config)
    pods = PodDirectory.from_pod_list(read_pod_list(config.pods)) if config.pods else None
    # Feeds and pods live as long as the replay: spare the garbage collector walking them again and again.
    gc.collect()
    gc.freeze()
    pipeline = EventPipeline(
        node=config.node,
        pods=pods,
        window=config.window,
        aggregate_by=config.aggregate_by,
        dns_server_selector=config.dns_server_selector,
    )
    output = renderer(config.output)
    shipper = _event_shipper(config) if config.collector is not None else None
    try:
        # Spooled (written to the file, agent.shell.shipper) before printed: a kill loses nothing it printed.
        emit = output if shipper is None else _both(shipper.offer, output)
        progress = Progress.on_terminal(sys.stderr)
        stats = replay(config.captures, matcher, pipeline, config.ports, emit, progress)
        if progress:
            progress.done()
        output.close()
        for path in stats.truncated_files:
            print(f"warning: {path} ends in the middle of a packet record; the rest was replayed", file=sys.stderr)
        print(
            f"replayed {stats.packets} packets, {stats.dns_messages} DNS messages, {stats.malformed} malformed, "
            f"{stats.matched_messages} matched, {stats.events} events in {stats.seconds:.2f}s "
            f"({stats.packets_per_second:,.0f} packets/s)",
            file=sys.stderr,
        )
        if shipper is not None:
            _wait_for_acks(config, shipper)
    finally:
        if shipper is not None:
            shipper.close()
    return 0


def local_matcher(config: ReplayConfig):
    """The Matcher of the local feed flags (--feed, --ip-feed, --feed-manifest); `replay` and `run` share it."""
    from agent.shell import feeds as feed_loading

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


def _collector_matcher(config: ReplayConfig):
    """The feeds the collector distributes, as a live agent would hold them after its first `synced`.

    Local feed flags are refused alongside: merging would make events name feeds no collector knows, and a
    local feed named like a distributed one would have to win or lose silently.
    """
    from agent.core.scanner import Matcher
    from agent.shell.feedclient import FeedStream, FeedStreamSettings
    from dnswatch.grpcchannel import connector

    if not config.collector:
        raise DnswatchError("--collector needs the collector's address, HOST:PORT")
    if config.feeds or config.ip_feeds or config.manifests:
        raise DnswatchError(
            "--collector takes the feeds from the collector: drop --feed, --ip-feed and --feed-manifest"
        )
    stream = FeedStream(FeedStreamSettings(config.collector, node=config.node), connect=connector(config.channel))
    held = stream.sync_once(config.collector_timeout)
    feeds = held.feeds()
    if not feeds:
        raise DnswatchError(f"the collector at {config.collector} distributes no feeds (yet): nothing to match")
    for feed in feeds:
        print(f"feed {feed.name}: {feed.entries} {feed.content} entries (version {feed.version} from the collector)",
              file=sys.stderr)
    return Matcher(*held.matcher_feeds())


def _event_shipper(config: ReplayConfig):
    """Ships the replay's events to the collector (agent/shell/shipper.py), over the channel the feeds used."""
    from dnswatch.grpcchannel import connector
    from agent.shell.shipper import CHANNEL_OPTIONS, EventShipper, ShipperSettings

    # A replay reports the stream's trouble in its last line (_wait_for_acks); without this, Python's
    # last-resort handler would print each reconnection's warning on stderr as well.
    logging.getLogger("dnswatch.agent.shipper").addHandler(logging.NullHandler())
    connect = connector(config.channel)
    address = config.collector
    return EventShipper(lambda: connect(address, CHANNEL_OPTIONS),
                        ShipperSettings(node=config.node, spool_dir=config.spool))


def _both(first, second):
    def emit(event: dict) -> None:
        first(event)
        second(event)

    return emit


def _wait_for_acks(config: ReplayConfig, shipper) -> None:
    """Wait (at most --collector-timeout) until the collector has acknowledged every event; one line either way."""
    done = shipper.flush(config.collector_timeout)
    stats = shipper.stats()
    dropped = f", {stats.dropped} dropped (queue full)" if stats.dropped else ""
    recovered = f" (including {stats.recovered} resent from the spool)" if stats.recovered else ""
    if done and stats.refused:
        raise DnswatchError(f"the collector at {config.collector} refused {stats.refused} events as unusable "
                            f"({stats.last_error}): {stats.acked} acknowledged{dropped}")
    if done:
        print(f"collector {config.collector}: {stats.acked} events acknowledged{recovered}{dropped}",
              file=sys.stderr)
        return
    left = stats.queued + stats.in_flight
    kept = f"; they stay in the spool {config.spool}" if config.spool is not None else ""
    reason = f" ({stats.last_error})" if stats.last_error else ""
    raise DnswatchError(f"the collector at {config.collector} did not acknowledge {left} events within "
                        f"{config.collector_timeout:g}s{reason}: {stats.acked} acknowledged{dropped}{kept}")


def read_pod_list(path: Path) -> dict:
    """`--pods`: the JSON of `kubectl get pods -A -o json`; BadInput with one line when it is not."""
    from dnswatch.errors import BadInput

    try:
        pod_list = json.loads(path.read_bytes())
    except OSError as error:
        raise BadInput(f"cannot read pod list {path}: {error.strerror or error}") from error
    except ValueError as error:
        raise BadInput(f"{path}: not JSON: {error}") from error
    if not isinstance(pod_list, dict) or pod_list.get("kind") not in ("List", "PodList"):
        raise BadInput(f"{path}: expected the output of `kubectl get pods -A -o json` (a List or PodList)")
    return pod_list


def main(argv: list[str] | None = None) -> int:
    # Before gRPC is first imported (it reads this once): its C core would otherwise print each failed TLS
    # handshake on stderr, next to the one line that says why the collector cannot be reached.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    try:
        args = build_parser().parse_args(argv)
        if args.command == "replay":
            return run_replay(replay_config(args))
        if args.command == "run":
            from agent.shell.run import run_config, run_live

            return run_live(run_config(args))
        return 2
    except DnswatchError as error:
        print(f"dnswatch-agent: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dnswatch-agent: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `| head`: the reader left, nothing more to say
        return 0


if __name__ == "__main__":
    sys.exit(main())
