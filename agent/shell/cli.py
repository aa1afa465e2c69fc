"""`dnswatch-agent`: the command line. Flags become a frozen `ReplayConfig` or `RunConfig`
(agent/shell/config.py) here, and nowhere else; agent/shell/assembly.py builds the command from it."""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

from agent.shell.capturefile import STDIN
from agent.shell.config import (DEFAULT_INTERFACES, DEFAULT_PORTS, EXIT_MATCHED, LIVENESS_SECONDS, ReplayConfig,
                                RunConfig)
from dnswatch.collectoraddress import check_collector_address
from dnswatch.completion import add_completion_command, completion_script
from dnswatch.durations import DURATION_FORMS, parse_duration
from dnswatch.errors import BadInput, DnswatchError
from dnswatch.grpcchannel import add_channel_arguments, channel_security_from_args, security_flags_given
from dnswatch.logfmt import LOG_LEVELS, add_log_arguments
from dnswatch.metricsserver import ALL_ADDRESSES, metrics_address
from dnswatch.version import version_line

PROG = "dnswatch-agent"
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # bad input is one line on stderr, never the usage block
        raise DnswatchError(f"{message} (see {self.prog} --help)")


def parse_ports(text: str) -> frozenset[int]:
    try:
        ports = frozenset(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of ports: {text!r}") from None
    if not ports or not all(0 < port < 65536 for port in ports):
        raise argparse.ArgumentTypeError(f"ports must be 1-65535: {text!r}")
    return ports


def parse_window(text: str) -> float:
    """A duration more than 0 (dnswatch/durations.py: `90s`, `1m`, or a number of seconds)."""
    try:
        value = parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: expected more than 0 seconds ({DURATION_FORMS})")
    return value


def parse_interval(text: str) -> float:
    """A duration of 0 (never) or more."""
    try:
        value = parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: expected 0 (never) or more seconds ({DURATION_FORMS})")
    return value


def parse_mebibytes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of MiB: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: expected more than 0 MiB")
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
    parser.add_argument("--window", type=parse_window, default=60.0, metavar="DURATION",
                        help=f"aggregation window ({DURATION_FORMS}, or seconds; default 60s)")
    parser.add_argument("--aggregate-by", choices=("pod", "workload"), default="pod")
    parser.add_argument("--dns-server-selector", default="k8s-app=kube-dns", metavar="SELECTOR")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="dnswatch node agent")
    parser.add_argument("--version", action="version", version=version_line(PROG))
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    replay = commands.add_parser("replay", help="replay pcap/pcapng files through detection")
    replay.add_argument("captures", nargs="*", type=Path, metavar="PCAP",
                        help="pcap or pcapng files, plain, gzip or zstd; - for standard input")
    replay.add_argument("-r", "--read", dest="read", action="append", default=[], type=Path, metavar="PCAP",
                        help="a capture to replay, as tcpdump and tshark take it (may be repeated)")
    add_feed_arguments(replay)
    replay.add_argument("--pods", type=Path, metavar="PODLIST.json")
    replay.add_argument("--node", default="-", help="node name reported in events (default -)")
    add_pipeline_arguments(replay)
    replay.add_argument(
        "--collector", metavar="ADDR",
        help="take the feeds from the collector at HOST:PORT (TLS unless --insecure) instead of --feed/--ip-feed/"
        "--feed-manifest, and send it the events (they are still printed with -o)",
    )
    replay.add_argument("--collector-timeout", type=parse_window, default=30.0, metavar="DURATION",
                        help="how long to wait for the collector's feeds, and at the end for it to acknowledge "
                        "every event (default 30s)")
    replay.add_argument("--spool-dir", "--spool", dest="spool", type=Path, metavar="DIR",
                        help="with --collector: keep unacknowledged events in DIR, so that a later replay (or "
                        "agent) with the same DIR resends them first")
    replay.add_argument("--fail-on-match", action="store_true",
                        help=f"exit {EXIT_MATCHED} when anything in the captures matched a feed (for CI: test a "
                        "capture against a feed)")
    replay.add_argument("--log-level", choices=LOG_LEVELS, type=str.upper, default=None,
                        help="log at this level on stderr; DEBUG also shows gRPC's own words when the collector "
                        "cannot be reached (default: warnings only)")
    add_channel_arguments(replay)
    add_run_parser(commands)
    add_completion_command(commands)
    return parser


def add_run_parser(commands) -> None:
    """Register `run` on the `dnswatch-agent` subcommand parsers."""
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
    run.add_argument("--buffer-mb", type=parse_mebibytes, default=8.0, metavar="MB",
                     help="without a ring: socket receive buffer per interface, MiB (default 8; above "
                     "net.core.rmem_max only with CAP_NET_ADMIN)")
    run.add_argument("--stats-every", type=parse_interval, default=0.0, metavar="DURATION",
                     help="log packet and kernel drop counts this often (default 0: never)")
    run.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                     help="serve /metrics, /healthz and /readyz on this port (default: none)")
    run.add_argument("--metrics-address", type=metrics_address, default=ALL_ADDRESSES, metavar="ADDRESS",
                     help="address of --metrics-port (default: every address, IPv4 and IPv6)")
    run.add_argument("--liveness-timeout", type=parse_window, default=LIVENESS_SECONDS, metavar="DURATION",
                     help="/healthz fails once the capture loop has made no progress for this long (default "
                     f"{LIVENESS_SECONDS:g}, what the DaemonSet's liveness probe expects)")
    run.add_argument("--collector", metavar="ADDR",
                     help="take the feeds from the collector at HOST:PORT, follow their changes, and send it the "
                     "events (still printed with -o); TLS unless --insecure")
    run.add_argument("--collector-timeout", type=parse_window, default=30.0, metavar="DURATION",
                     help="how long to wait for the collector's feeds at start and its acknowledgements at the "
                     "stop (default 30s)")
    run.add_argument("--spool-dir", "--spool", dest="spool", type=Path, metavar="DIR",
                     help="with --collector: keep unacknowledged events in DIR across restarts")
    add_channel_arguments(run)
    add_log_arguments(run)


def pipeline_options(args: argparse.Namespace, *, node: str) -> dict:
    """The PipelineOptions fields from the flags `replay` and `run` share, as keyword arguments; BadInput when
    the collector flags do not go together."""
    if args.collector is None:
        if security_flags_given(args):
            raise BadInput(f"{', '.join(security_flags_given(args))}: only with --collector")
        if args.spool is not None:
            raise BadInput("--spool-dir: only with --collector (it holds the events not yet sent to it)")
    elif args.feed or args.ip_feed or args.feed_manifest:
        # Merging would make events name feeds no collector knows, and a local feed named like a distributed
        # one would have to win or lose silently.
        raise BadInput("--collector takes the feeds from the collector: drop --feed, --ip-feed and --feed-manifest")
    else:
        args.collector = check_collector_address(args.collector)
    return dict(feeds=tuple(args.feed), ip_feeds=tuple(args.ip_feed), manifests=tuple(args.feed_manifest),
                pods=args.pods, node=node, ports=args.ports, output=args.output, window=args.window,
                aggregate_by=args.aggregate_by, dns_server_selector=args.dns_server_selector,
                collector=args.collector, collector_timeout=args.collector_timeout,
                channel=channel_security_from_args(args) if args.collector else None, spool=args.spool)


def replay_config(args: argparse.Namespace) -> ReplayConfig:
    captures = (*args.captures, *args.read)
    if not captures:
        raise BadInput("replay needs a capture: PCAP..., -r PCAP, or - for standard input")
    if captures.count(STDIN) > 1:
        raise BadInput("standard input (-) can be replayed once")
    return ReplayConfig(**pipeline_options(args, node=args.node), captures=captures,
                        fail_on_match=args.fail_on_match, log_level=args.log_level)


def run_config(args: argparse.Namespace) -> RunConfig:
    patterns = tuple(p.strip() for p in args.interfaces.split(",") if p.strip())
    if not patterns:
        raise BadInput("--interfaces needs at least one interface name pattern")
    if not 0 <= args.ring_mb <= 1024:
        raise BadInput("--ring-mb must be between 0 (no ring) and 1024")
    if args.liveness_timeout < 2:
        raise BadInput("--liveness-timeout must be at least 2 seconds: the capture loop comes round once a second")
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
        metrics_address=args.metrics_address,
        stats_every=args.stats_every,
        liveness_timeout=args.liveness_timeout,
    )


def main(argv: list[str] | None = None) -> int:
    # Before gRPC is first imported (it reads this once): its C core would otherwise print each failed TLS
    # handshake on stderr, next to the one line that says why the collector cannot be reached.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command == "completion":
            sys.stdout.write(completion_script(parser, args.shell))
            return 0
        # Imported here, after GRPC_VERBOSITY is set: the assembly brings gRPC in.
        from agent.shell import assembly

        if args.command == "replay":
            return assembly.run_replay(replay_config(args))
        return assembly.run_live(run_config(args))
    except DnswatchError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `| head`: the reader left, nothing more to say
        return 0


if __name__ == "__main__":
    sys.exit(main())
