"""The operations endpoint of a dnswatch process: `/metrics`, `/healthz` and `/readyz` on one small HTTP port.

    server = serve_metrics(metrics.registry, port=9090, healthy=lambda: True, ready=lambda: hub.synced)
    ...
    server.close()

Shared by the agent and the collector (the import contract lets `collector.shell.metrics` use this module and
`dnswatch.logfmt`, nothing else of the agent's shell): the series differ, the endpoint does not.

- `/metrics` is prometheus_client's exposition of the registry given: each process (and each test) has its own
  `CollectorRegistry`, never the global one, so two collectors in one test process do not share counters.
- `/healthz` (liveness) and `/readyz` (readiness) answer 200 while their callable returns true, 503 when it
  returns false or raises; the body is one line saying why. A probe that raises is the process's bug, and the
  kubelet must see it as "not ok", not as a dead port.
- It listens on every address by default, IPv4 and IPv6 alike: one dual-stack `::` socket (IPV6_V6ONLY off),
  or `0.0.0.0` on a machine without IPv6, so a probe or a scrape reaches it over either family.
- A port in use is an OSError at start (no SO_REUSEPORT): a second process never shares the port and answers
  the probes in the first one's place.
- The server runs in a daemon thread and handles each request in its own thread: a slow scrape never holds up
  a probe, and none of it touches the capture or the event loop.
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import TCPServer, ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from dnswatch.version import package_version  # noqa: F401 - the build-info metric of either process takes it here

__all__ = ["ALL_ADDRESSES", "MetricsServer", "Probe", "listen_failure", "metrics_address", "serve_metrics"]

ALL_ADDRESSES = "::"
"""The default address: every address of the machine, IPv4 and IPv6 (IPv4 only where there is no IPv6)."""

Probe = Callable[[], bool]
"""Answers a health question: true when all is well. It runs in a request thread, so it must be quick and
thread-safe (reading a flag or a timestamp, not taking the capture's locks)."""


def _always() -> bool:
    return True


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a scrape in flight never keeps the process from exiting
    allow_reuse_port = False  # said here, whatever the Python: a second process must fail to bind, not share

    def server_bind(self) -> None:
        # http.server's server_bind asks socket.getfqdn(), a reverse DNS lookup that can hang start-up for
        # seconds on a node whose resolver is slow; the name is only used for the WSGI SERVER_NAME.
        TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]
        self.setup_environ()


class _ThreadingServer6(_ThreadingServer):
    address_family = socket.AF_INET6

    def server_bind(self) -> None:
        if self.server_address[0] == ALL_ADDRESSES:
            # Dual stack whatever net.ipv6.bindv6only says: IPv4 peers arrive as ::ffff:a.b.c.d.
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


# Binding `::` fails with these where the machine has no IPv6 (no kernel support, or disabled at boot).
_NO_IPV6 = frozenset({errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, errno.EPROTONOSUPPORT})


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        """Probes come every few seconds: one stderr line each would drown the process's own logs."""


class MetricsServer:
    """A running endpoint; `port` is the one bound (useful with port 0). `close()` stops it, once or more."""

    def __init__(self, registry: CollectorRegistry, *, host: str = ALL_ADDRESSES, port: int = 0,
                 healthy: Probe = _always, ready: Probe = _always) -> None:
        self._metrics_app = make_wsgi_app(registry)
        self._healthy = healthy
        self._ready = ready
        # Binding happens here, so a port in use is an OSError to the caller before anything runs.
        host = host.strip("[]")
        try:
            self._server = self._bind(host, port)
        except OSError as error:
            if host != ALL_ADDRESSES or error.errno not in _NO_IPV6:
                raise
            self._server = self._bind("0.0.0.0", port)
        self.port: int = self._server.server_address[1]
        """The TCP port bound."""
        self.address: str = _host_port(self._server.server_address[0], self.port)
        """Where it listens, as `HOST:PORT` (`[::]:9090`, or `0.0.0.0:9090` without IPv6)."""
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=f"metrics-http-{self.port}", daemon=True)
        self._closed = False

    def _bind(self, host: str, port: int) -> _ThreadingServer:
        server_class = _ThreadingServer6 if ":" in host else _ThreadingServer
        return make_server(host, port, self._app, server_class=server_class, handler_class=_QuietHandler)

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _app(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/healthz":
            return _probe_answer(self._healthy, "alive", start_response)
        if path == "/readyz":
            return _probe_answer(self._ready, "ready", start_response)
        if path in ("/metrics", "/"):
            return self._metrics_app(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"not found: try /metrics, /healthz or /readyz\n"]


def _probe_answer(probe: Probe, word: str, start_response: Callable) -> list[bytes]:
    try:
        ok = bool(probe())
        reason = word if ok else f"not {word}"
    except Exception as error:  # noqa: BLE001 - a probe's failure is an answer, not a dead endpoint
        ok, reason = False, f"not {word}: the check failed: {type(error).__name__}: {error}"
    status = "200 OK" if ok else "503 Service Unavailable"
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-store")])
    return [reason.encode("utf-8", "replace") + b"\n"]


def serve_metrics(registry: CollectorRegistry, port: int, *, host: str = ALL_ADDRESSES, healthy: Probe = _always,
                  ready: Probe = _always) -> MetricsServer:
    """Bind `host:port` (port 0: any free port, see `.port`; the default host: every address, see
    `ALL_ADDRESSES`) and serve in a daemon thread; OSError if it cannot bind (`listen_failure` says it)."""
    return MetricsServer(registry, host=host, port=port, healthy=healthy, ready=ready).start()


def metrics_address(text: str) -> str:
    """`--metrics-address` (an argparse type): an IP address, IPv6 with or without brackets; `::` is every
    address, IPv4 included."""
    try:
        return str(ipaddress.ip_address(text.strip().strip("[]")))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an IP address: {text!r} (e.g. :: for every address, the default, "
                                         "0.0.0.0 for every IPv4 one, or 127.0.0.1)") from None


def listen_failure(host: str, port: int, error: OSError) -> str:
    """One line for `error` from `serve_metrics(..., port, host=host)`: where, why, and what to do."""
    why = {errno.EADDRINUSE: "the port is in use: stop what listens there or choose another --metrics-port",
           errno.EADDRNOTAVAIL: "no such address here: choose an address of this machine for --metrics-address",
           errno.EACCES: "permission denied: ports below 1024 need privileges"}.get(error.errno, error.strerror
                                                                                    or str(error))
    return f"cannot listen on {_host_port(host.strip('[]'), port)} ({why})"


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
