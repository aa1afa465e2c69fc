"""`dnswatch-collector`: the collector process, assembled in one place.

    dnswatch-collector --db sqlite:///var/lib/dnswatch/db.sqlite --listen 0.0.0.0:7443 \\
                       [--feeds-dir DIR | --kubeconfig F | (in-cluster)] \\
                       (--tls-cert F --tls-key F [credentials, see collector/shell/security/] | --insecure) \\
                       [--http-listen HOST:PORT]

Flags become one frozen `CollectorSettings` (`settings_from_args`); `serve` wires the parts: the store, the
feed hub restored from it, the puller, the feed source (a folder, or the Kubernetes API with status
write-back), the gRPC server, the alert exceptions and the SecurityEventWebhooks (their keepers, and in
Kubernetes mode their sources; in folder mode the folder gives them, with the Secrets and ConfigMaps webhooks
read, docs/webhooks.md), a forwarder per `--forward` target (docs/forwarding.md), and the webhooks' delivery.
SIGTERM or SIGINT stops it cleanly: the server stops taking calls, streams end, pulls are cancelled, each
forwarder saves its cursor, webhook attempts in flight are written back, the store is closed, and the process
exits 0.

gRPC is TLS unless `--insecure`; who may call what is the business of collector/shell/security/. With
`--http-listen`, the HTTP JSON API (collector/shell/httpapi/) is served beside it on the same event loop, with
the same certificate and credentials.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import gc
import logging
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import grpc

from dnswatch.alerting.webhooks import ValueRef
from dnswatch.completion import add_completion_flag
from dnswatch.durations import duration_flag
from dnswatch.errors import DnswatchError
from dnswatch.metricsserver import ALL_ADDRESSES, listen_failure, metrics_address
from dnswatch.version import version_line
from collector.core.watchloop import FeedChange
from collector.shell.eventbell import EventBell
from collector.shell.exceptionkeeper import ExceptionKeeper
from collector.shell.feedhub import FeedHub, Refusals, StatusSink
from collector.shell.grpc_alerting import add_alerting_service
from collector.shell.forwarder import Forwarding
from collector.shell.forwardmetrics import ForwardMetrics
from collector.shell.forwardsettings import ForwardSettings, add_forward_arguments, forward_settings_from_args
from collector.shell.grpc_events import add_events_service
from collector.shell.grpc_feeds import add_feed_services
from collector.shell.grpc_ingest import add_ingest_service
from collector.shell.grpc_webhooks import add_webhooks_service
# The metrics server and log formatter are the agent's, shared through collector.shell.metrics (the one
# place the import contract lets the collector reach into agent.shell for them).
from collector.shell.metrics import CollectorMetrics, add_log_arguments, configure_logging, serve_metrics
from collector.shell.puller import FeedPuller, PullerSettings, Resolver
from collector.shell.httpapi import HttpApi, HttpApiSettings, HttpListenError
from collector.shell.httpapi.resourcewrites import FolderResources, KubeResources
from collector.shell.security.interceptor import AuthInterceptor, Authenticator, authenticator_for
from collector.shell.security.ports import add_secure_ports
from collector.shell.security.settings import ServerSecurity, add_security_arguments, server_security_from_args
from collector.shell.streamcount import StreamCounter
from collector.shell.webhookkeeper import Resolver as ValueResolver
from collector.shell.webhookdelivery import DeliverySettings, WebhookDelivery
from collector.shell.webhookkeeper import WebhookKeeper
from collector.shell.webhookmetrics import WebhookMetrics
from collector.store import BadStoreUrl, StoreError, open_store

__all__ = ["AlertingParts", "CollectorSettings", "UsageError", "main", "serve", "settings_from_args"]

log = logging.getLogger("dnswatch.collector")

PROG = "dnswatch-collector"
EXIT_USAGE = 2

# Agent streams live for days and are mostly idle: the server pings each connection so a node that vanished
# (no FIN, no RST) frees its stream within about a minute and a half, and it lets agents ping it as often
# as every 10 s so they can notice a vanished collector just as fast.
_SERVER_OPTIONS = (
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    # gRPC sets SO_REUSEPORT by default: a second collector on the same port would then bind it too and
    # silently take half the calls with its own database. Without it a port in use is a bind error.
    ("grpc.so_reuseport", 0),
)


class UsageError(DnswatchError):
    """Flags that cannot be used together or at all; the message says which and what to do."""


@dataclass(frozen=True)
class CollectorSettings:
    """Everything the collector is told by its flags, built once in `settings_from_args`."""

    db: str
    """The store URL: `sqlite:///PATH` or `postgresql://USER@HOST/DB`."""
    listen: str
    """`HOST:PORT` the gRPC server binds (port 0: any free port, see `serve`'s `on_listening`)."""
    feeds_dir: Path | None = None
    """Read GlobalThreatFeed manifests from this folder instead of the Kubernetes API."""
    kubeconfig: Path | None = None
    """Kubernetes client configuration; None with no --feeds-dir means the in-cluster configuration."""
    namespace: str = "dnswatch"
    """The collector's namespace: where the ConfigMaps and Secrets of feed headers and webhooks' config are."""
    security: ServerSecurity = ServerSecurity(insecure=True)
    """TLS and credentials, or plaintext with no checks (`--insecure`)."""
    poll_seconds: float = 5.0
    """Seconds between two looks at --feeds-dir."""
    grace_seconds: float = 5.0
    """On SIGTERM, how long calls in flight may take to finish."""
    log_level: str = "INFO"
    """Logging level for stderr."""
    log_format: str = "text"
    """`text` for people, `json` for one object per line (log shippers)."""
    metrics_port: int | None = None
    """Serve /metrics, /healthz and /readyz over HTTP on this port (0: any free port); None: not at all."""
    metrics_address: str = ALL_ADDRESSES
    """The address of the metrics port: every one, IPv4 and IPv6, by default."""
    pull_timeout: float = 60.0
    """Seconds one feed pull may take in all, retries included; `dnswatch feeds sync` answers within it."""
    forward: ForwardSettings = ForwardSettings()
    """Where every event is forwarded (`--forward`, docs/forwarding.md); no target: nowhere."""
    ui_url: str | None = None
    """The web UI's base URL (`--ui-url`): webhook messages link to `{ui_url}/events/{id}`; None: no link."""
    http_listen: str | None = None
    """`HOST:PORT` of the HTTP JSON API (docs/http-api.md); None: no HTTP API."""

    @property
    def insecure(self) -> bool:
        """Plaintext gRPC with no authentication."""
        return self.security.insecure

    @property
    def source(self) -> str:
        """`dir` or `kubernetes`: where the feeds come from."""
        return "dir" if self.feeds_dir is not None else "kubernetes"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="The dnswatch collector: pulls threat feeds and "
                                     "distributes them to agents over gRPC.")
    parser.add_argument("--version", action="version", version=version_line(PROG))
    add_completion_flag(parser)
    parser.add_argument("--db", required=True, help="store URL: sqlite:///PATH or postgresql://USER@HOST/DB")
    parser.add_argument("--listen", required=True, metavar="HOST:PORT", help="gRPC address to listen on")
    parser.add_argument("--http-listen", metavar="HOST:PORT",
                        help="serve the HTTP JSON API (docs/http-api.md) there, TLS as gRPC (default: none)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--feeds-dir", type=Path, metavar="DIR",
                        help="read GlobalThreatFeed manifests from this folder (default: the Kubernetes API)")
    source.add_argument("--kubeconfig", type=Path, metavar="FILE",
                        help="Kubernetes client configuration (default: in-cluster)")
    parser.add_argument("--namespace", default="dnswatch",
                        help="namespace of the ConfigMaps and Secrets named by feed headers and webhooks' "
                        "config (default: dnswatch)")
    parser.add_argument("--feeds-dir-poll", type=duration_flag, default=5.0, metavar="DURATION",
                        help="how long between looks at --feeds-dir (5s, 1m, or seconds; default: 5s)")
    parser.add_argument("--metrics-port", type=int, metavar="PORT",
                        help="serve Prometheus /metrics and the /healthz, /readyz probes over HTTP on this port")
    parser.add_argument("--metrics-address", type=metrics_address, default=ALL_ADDRESSES, metavar="ADDRESS",
                        help="address of --metrics-port (default: every address, IPv4 and IPv6)")
    parser.add_argument("--pull-timeout", type=duration_flag, default=60.0, metavar="DURATION",
                        help="how long one feed pull may take in all, retries included, and so the longest a "
                        "`dnswatch feeds sync` waits (30s, 2m, or seconds; default: 60s)")
    parser.add_argument("--ui-url", metavar="URL",
                        help="the web UI's base URL: Slack and Jira webhook messages link to URL/events/ID")
    add_log_arguments(parser)
    add_security_arguments(parser)
    add_forward_arguments(parser)
    return parser


def settings_from_args(argv: Sequence[str] | None = None) -> CollectorSettings:
    """The settings the flags describe; UsageError (or argparse's exit 2) when they cannot be used."""
    args = build_parser().parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--listen {args.listen!r}: expected HOST:PORT, e.g. 0.0.0.0:7443 or [::]:7443")
    if args.http_listen is not None:
        host, _, port = args.http_listen.rpartition(":")
        if not host or not port.isdigit() or int(port) > 65535:
            raise UsageError(f"--http-listen {args.http_listen!r}: expected HOST:PORT, e.g. 0.0.0.0:8443 or "
                             "[::]:8443")
    if args.feeds_dir is not None and not args.feeds_dir.is_dir():
        raise UsageError(f"--feeds-dir {args.feeds_dir}: no such folder")
    if args.kubeconfig is not None and not args.kubeconfig.is_file():
        raise UsageError(f"--kubeconfig {args.kubeconfig}: no such file")
    if args.feeds_dir_poll <= 0:
        raise UsageError("--feeds-dir-poll must be more than 0 seconds")
    if not 0 < args.pull_timeout < float("inf"):
        raise UsageError(f"--pull-timeout {args.pull_timeout:g}: expected a number of seconds, more than 0")
    if args.metrics_port is not None and not 0 <= args.metrics_port <= 65535:
        raise UsageError(f"--metrics-port {args.metrics_port}: expected a port number, 0 to 65535")
    if args.ui_url is not None and (urlsplit(args.ui_url).scheme not in ("http", "https")
                                    or not urlsplit(args.ui_url).hostname):
        raise UsageError(f"--ui-url {args.ui_url!r}: expected an absolute http:// or https:// URL, e.g. "
                         "https://dnswatch.example.com")
    security = server_security_from_args(args)
    forward = forward_settings_from_args(args)
    return CollectorSettings(db=args.db, listen=args.listen, feeds_dir=args.feeds_dir,
                             kubeconfig=args.kubeconfig, namespace=args.namespace, security=security,
                             poll_seconds=args.feeds_dir_poll, log_level=args.log_level,
                             log_format=args.log_format, metrics_port=args.metrics_port,
                             metrics_address=args.metrics_address,
                             pull_timeout=args.pull_timeout, forward=forward, ui_url=args.ui_url,
                             http_listen=args.http_listen)


# ---------------------------------------------------------------------------------------------- the sources


@dataclass(frozen=True)
class _Source:
    changes: Callable[[], AsyncIterator[FeedChange]]
    resolve: Resolver | None
    status_sink: StatusSink | None
    refusals: Refusals | None = None
    resolve_value: ValueResolver | None = None
    """Reads the Secret and ConfigMap keys webhooks' `valueFrom` name: the folder's, or the namespace's."""


def _feed_source(settings: CollectorSettings,
                 on_exceptions: Callable[[dict[str, dict]], None] | None = None,
                 on_webhooks: Callable[[dict[str, dict]], None] | None = None) -> _Source:
    if settings.feeds_dir is not None:
        # Each source is imported only when chosen: the folder mode never loads the kubernetes client.
        from collector.shell.dirsource import DirSourceSettings, FeedsDirSource

        folder = FeedsDirSource(DirSourceSettings(settings.feeds_dir, poll_seconds=settings.poll_seconds,
                                                  on_exceptions=on_exceptions, on_webhooks=on_webhooks))

        async def folder_value(ref: ValueRef) -> str | None:
            return folder.lookup(ref)  # in memory, as of the last poll

        return _Source(folder.changes, None, None, folder.refusals, folder_value)
    from collector.shell.kubefeeds import KubeFeeds
    from collector.shell.kubesource import KubeSourceSettings

    kube = KubeFeeds(_kube_api_client(settings), KubeSourceSettings(namespace=settings.namespace))
    return _Source(kube.changes, kube.resolve, kube.write_status, kube.refusals, kube.resolve)


def _kube_api_client(settings: CollectorSettings):
    # The Kubernetes client is imported only when needed: it is slow to import and useless with a folder.
    from kubernetes import client, config

    try:
        if settings.kubeconfig is not None:
            api_client = config.new_client_from_config(config_file=str(settings.kubeconfig))
        else:
            config.load_incluster_config()
            api_client = client.ApiClient()
    except config.ConfigException as error:
        where = f"--kubeconfig {settings.kubeconfig}" if settings.kubeconfig else "the in-cluster configuration"
        raise UsageError(f"cannot use {where}: {error} (outside a cluster, pass --kubeconfig or --feeds-dir)"
                         ) from None
    return api_client


# ---------------------------------------------------------------------------------------------- the process


@dataclass(frozen=True)
class AlertingParts:
    """The collector's alerting state, as `serve` assembled it (handed to `serve`'s `on_assembled`)."""

    exceptions: ExceptionKeeper
    webhooks: WebhookKeeper
    loop: asyncio.AbstractEventLoop
    """The event loop they belong to: only it may call them."""


async def serve(settings: CollectorSettings, stop: asyncio.Event, *,
                on_listening: Callable[[int], None] | None = None,
                puller_settings: PullerSettings | None = None,
                on_assembled: Callable[[AlertingParts], None] | None = None) -> None:
    """Run the collector until `stop` is set. `on_listening(port)` is called once the server takes calls.
    `puller_settings` replaces the pulling settings the flags describe (tests shorten every timeout);
    `on_assembled` is given the alerting parts before the server starts (tests look into the keepers).

    Raises StoreError for an unusable --db and UsageError for an unusable source or address, before serving.
    """
    _check_listen("--listen", settings.listen)
    if settings.security.mtls_listen is not None:
        _check_listen("--mtls-listen", settings.security.mtls_listen)
    if settings.http_listen is not None:
        _check_listen("--http-listen", settings.http_listen)
    loop = asyncio.get_running_loop()
    # The folder is read on a worker thread; its AlertExceptions and SecurityEventWebhooks reach their keepers
    # (made below, before the folder is first read) on the event loop.
    source = _feed_source(settings, lambda manifests: loop.call_soon_threadsafe(keeper.replace, manifests),
                          lambda manifests: loop.call_soon_threadsafe(webhooks.replace, manifests))
    try:
        store = await open_store(settings.db)
    except OSError as error:  # e.g. the SQLite file's folder cannot be created
        raise StoreError(f"cannot open the store: {error}") from error
    metrics = CollectorMetrics()
    serving = asyncio.Event()
    try:
        exporter = _serve_metrics(settings, metrics, ready=serving.is_set)
    except BaseException:
        await store.close()
        raise
    try:
        hub = FeedHub(store, status_sink=source.status_sink, refusals=source.refusals)
        metrics.read_feeds_from(hub.feeds)
        if puller_settings is None:
            puller_settings = PullerSettings(pull_timeout=settings.pull_timeout)
        async with FeedPuller(puller_settings, resolve=source.resolve,
                              on_result=metrics.counting_pulls(hub.record_pull)) as puller:
            hub.attach(puller)
            await hub.restore()
            authenticator = _authenticator(settings)
            interceptors = [AuthInterceptor(authenticator)] if authenticator is not None else []
            server = grpc.aio.server(options=_SERVER_OPTIONS, interceptors=[*interceptors, StreamCounter(metrics)])
            health = await add_feed_services(server, hub)
            bell = EventBell()  # the ingest rings it after each durable write; watches and forwarders wake on it
            forwarding = Forwarding(settings.forward, store, bell, ForwardMetrics(metrics.registry))
            add_events_service(server, store, bell)
            keeper = ExceptionKeeper(store)
            add_alerting_service(server, keeper)
            webhooks = WebhookKeeper(source.resolve_value)
            add_webhooks_service(server, webhooks)
            delivery = WebhookDelivery(webhooks, store, bell, WebhookMetrics(metrics.registry),
                                       DeliverySettings(ui_url=settings.ui_url))
            if on_assembled is not None:
                on_assembled(AlertingParts(keeper, webhooks, loop))
            add_ingest_service(server, metrics.counting_store(store), on_stored=bell.ring,
                               entry_lines=hub.entry_lines)
            http_api = _http_api(settings, store, bell, hub, keeper, webhooks, authenticator)
            port = _bind(server, settings)
            await server.start()
            if http_api is not None:
                await http_api.start()
                log.info("HTTP API on %s (port %d, %s)", settings.http_listen, http_api.port,
                         "TLS" if http_api.tls else "plaintext")
            log.info("listening on %s (port %d), feeds from %s", settings.listen, port, settings.source)
            serving.set()
            if on_listening is not None:
                on_listening(port)
            forwarding.start()
            delivery.start()
            alerting_tasks = []
            if settings.feeds_dir is None:
                # Imported only here: the folder mode never loads the kubernetes client.
                from collector.shell.exceptionsource import AlertExceptionSource
                from collector.shell.webhooksource import SecurityEventWebhookSource

                exception_source = AlertExceptionSource(_kube_api_client(settings), keeper)
                webhook_source = SecurityEventWebhookSource(_kube_api_client(settings), webhooks)
                alerting_tasks = [asyncio.create_task(exception_source.follow(), name="AlertException source"),
                                  asyncio.create_task(webhook_source.follow(), name="SecurityEventWebhook source")]
            tasks = [*alerting_tasks, asyncio.create_task(puller.run(), name="puller"),
                     asyncio.create_task(_follow(source, hub), name="feed source"),
                     asyncio.create_task(keeper.run(first_replace=True),
                                         name="alert exceptions")]
            try:
                stopping = asyncio.create_task(stop.wait())
                done, _ = await asyncio.wait([stopping, *tasks], return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task is not stopping and task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]
            finally:
                log.info("stopping")
                await health.enter_graceful_shutdown()
                hub.close()  # agent streams end now, not after the grace period
                bell.close()  # and so do event watches
                if http_api is not None:
                    await http_api.stop()
                await server.stop(settings.grace_seconds)
                for task in [*tasks, stopping]:
                    task.cancel()
                await asyncio.gather(*tasks, stopping, return_exceptions=True)
                await forwarding.close()  # each target's cursor saved before the store closes
                await delivery.close()  # attempts in flight written back, and the dispatch cursors saved
    finally:
        serving.clear()
        if exporter is not None:
            exporter.close()
        await store.close()


def _serve_metrics(settings: CollectorSettings, metrics: CollectorMetrics, ready: Callable[[], bool]):
    """The /metrics and probe server, or None without --metrics-port; UsageError when the port is taken."""
    if settings.metrics_port is None:
        return None
    try:
        exporter = serve_metrics(metrics.registry, settings.metrics_port, host=settings.metrics_address, ready=ready)
    except OSError as error:
        failure = listen_failure(settings.metrics_address, settings.metrics_port, error)
        raise UsageError(f"--metrics-port {settings.metrics_port}: {failure}") from None
    log.info("metrics on port %d (%s)", exporter.port, exporter.address)
    return exporter


def _authenticator(settings: CollectorSettings) -> Authenticator | None:
    """Who may call the gRPC and HTTP APIs; None with --insecure (no checks)."""
    if settings.insecure:
        return None
    api_client = _kube_api_client(settings) if settings.security.wants_kubernetes else None
    return authenticator_for(settings.security, api_client)


def _http_api(settings: CollectorSettings, store, bell: EventBell, hub: FeedHub, keeper: ExceptionKeeper,
              webhooks: WebhookKeeper, authenticator: Authenticator | None) -> HttpApi | None:
    """The HTTP API, bound, or None without --http-listen; its writes go where the feeds are read from."""
    if settings.http_listen is None:
        return None
    if settings.feeds_dir is not None:
        resources = FolderResources(settings.feeds_dir)
    else:
        resources = KubeResources(_kube_api_client(settings))
    security = settings.security
    api_settings = HttpApiSettings(settings.http_listen, tls_cert=security.tls_cert, tls_key=security.tls_key)
    try:
        return HttpApi.bind(api_settings, store=store, bell=bell, hub=hub, keeper=keeper, resources=resources,
                            authenticator=authenticator, webhooks=webhooks)
    except HttpListenError as error:
        raise UsageError(str(error)) from None


def _check_listen(flag: str, address: str) -> None:
    """UsageError when `address` cannot be listened on (taken, or not this machine's), found by binding it
    first: gRPC's C core would log its own line about the failed bind on stderr, before ours, and at any
    GRPC_VERBOSITY but NONE, which would hide every other message of the core too."""
    host, _, port = address.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if int(port) == 0:
        return
    try:
        places = socket.getaddrinfo(host or None, int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError):
        raise UsageError(f"{flag} {address}: cannot listen there (no such host: give an address of this "
                         "machine, e.g. 0.0.0.0 or [::])") from None
    for family, kind, protocol, _, where in places:
        try:
            with socket.socket(family, kind, protocol) as probe:
                # As gRPC binds: a port whose last connections are still in TIME_WAIT is free.
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(where)
        except OSError as error:
            if error.errno == errno.EAFNOSUPPORT:
                continue  # no IPv6 here: gRPC listens on IPv4 for [::] then
            why = {errno.EADDRINUSE: "the port is in use: stop what listens there (another collector?) or "
                   "choose another port",
                   errno.EADDRNOTAVAIL: "no such address here",
                   errno.EACCES: "permission denied: ports below 1024 need privileges"}.get(
                error.errno, error.strerror)
            raise UsageError(f"{flag} {address}: cannot listen there ({why})") from None


def _bind(server: grpc.aio.Server, settings: CollectorSettings) -> int:
    """Bind --listen (and --mtls-listen) and return the port of --listen."""
    # Looked at again just before binding: another collector may have taken the port since serve's first look
    # (two starting together), and gRPC's own failure would come with a log line of its C core.
    _check_listen("--listen", settings.listen)
    if settings.security.mtls_listen is not None:
        _check_listen("--mtls-listen", settings.security.mtls_listen)
    try:
        port, mtls_port = add_secure_ports(server, settings.security, settings.listen)
    except RuntimeError as error:
        mtls_listen = settings.security.mtls_listen
        where = f"--listen {settings.listen}" + (f" / --mtls-listen {mtls_listen}" if mtls_listen else "")
        # gRPC's text ends by telling how to see its details (GRPC_VERBOSITY=debug): not ours to say.
        reason = str(error).split("; set GRPC_VERBOSITY", 1)[0]
        raise UsageError(f"{where}: cannot listen there ({reason}: stop what listens there or choose another "
                         "address)") from None
    for flag, address, bound in (("--listen", settings.listen, port),
                                 ("--mtls-listen", settings.security.mtls_listen, mtls_port)):
        if address is not None and bound == 0 and not address.endswith(":0"):
            raise UsageError(f"{flag} {address}: cannot listen there (in use, or no such address: stop what "
                             "listens there or choose another address)")
    if mtls_port is not None:
        log.info("agents with client certificates: port %d", mtls_port)
    return port


async def _follow(source: _Source, hub: FeedHub) -> None:
    async with contextlib.aclosing(source.changes()) as changes:
        async for change in changes:
            await hub.apply(change)


# Young collections after this many new container objects rather than CPython's 700. Ingest parses about 60
# per event (the event's JSON) that live until its batch is written, so with the default a young collection
# ran every dozen events and the older generations, which traverse the whole backlog, ever more often: 40 % of
# the event loop's CPU at 20,000 events/s (15.7 against 9.3 µs an event, bench/ingest.py). The collector's
# own data is not cyclic garbage; what is cyclic is still collected, a little later.
GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """Move what startup built out of the collector's sight and collect the young generation less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def _main_async(settings: CollectorSettings) -> None:
    tune_gc()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await serve(settings, stop)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = settings_from_args(argv)
    except DnswatchError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(settings.log_level, settings.log_format)
    # httpx logs every request at INFO; the puller already logs each pull's outcome once.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        asyncio.run(_main_async(settings))
    except BadStoreUrl as error:
        print(f"{PROG}: error: --db: {error}", file=sys.stderr)
        return EXIT_USAGE
    except StoreError as error:
        print(f"{PROG}: error: --db: {error}", file=sys.stderr)  # the URL itself may hold a password
        return EXIT_USAGE
    except DnswatchError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
