"""What `dnswatch-agent replay` and `dnswatch-agent run` are asked to do, as frozen values.

agent/shell/cli.py makes them from the flags, and nothing else does; agent/shell/assembly.py builds each
command from them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dnswatch.grpcchannel import ChannelSecurity
from dnswatch.metricsserver import ALL_ADDRESSES

DEFAULT_PORTS = frozenset({53})
DEFAULT_INTERFACES = "cali*,veth*,lxc*,eni*"
EXIT_MATCHED = 3
"""`replay --fail-on-match`'s exit status when anything in the captures matched a feed."""
LIVENESS_SECONDS = 30.0
"""The default of `--liveness-timeout`; deploy/base/daemonset.yaml's liveness probe is sized for it."""


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
    channel: ChannelSecurity | None = None
    """How to reach the collector: TLS (CA, client certificate, token) unless `--insecure`; None without one."""
    spool: Path | None = None
    """With a collector: keep the events it has not acknowledged in this directory, so that a later replay or
    a restarted agent resends them first."""


@dataclass(frozen=True, kw_only=True)
class ReplayConfig(PipelineOptions):
    """Everything `replay` was asked to do."""

    captures: tuple[Path, ...]
    """pcap or pcapng files (plain, gzip or zstd), replayed in the order given; `-` is standard input."""
    fail_on_match: bool = False
    """Exit 3 when anything matched (`--fail-on-match`, for CI)."""
    log_level: str | None = None
    """Log at this level on stderr; None: warnings only, as bare lines."""


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
    metrics_address: str = ALL_ADDRESSES
    """The address of the metrics port: every one, IPv4 and IPv6, by default."""
    stats_every: float = 0.0
    """Seconds between two progress lines on stderr (packets, kernel drops); 0 for none."""
    liveness_timeout: float = LIVENESS_SECONDS
    """/healthz fails once the capture loop has made no progress for this many seconds (it comes round about
    once a second, quiet or not), so that the liveness probe restarts an agent stuck inside one packet."""
