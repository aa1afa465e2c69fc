"""The HTTP API's server: uvicorn on the collector's own event loop, a task beside the gRPC server.

The listening socket is bound here, before uvicorn starts, so that a port in use is one line at start-up
(`HttpListenError`) and port 0 tells the port it got. uvicorn's own signal handling is switched off: the
collector's SIGTERM handler stops every part in order, this one among them (`stop`).

TLS is the collector's certificate (--tls-cert/--tls-key, as gRPC); the files are looked at again on each
handshake and re-read when they changed, as the gRPC ports do, so a certificate rotated by cert-manager needs
no restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from dnswatch.errors import DnswatchError
from collector.shell.security.settings import file_signature, reason

__all__ = ["HttpListenError", "HttpServer", "bind_http"]

log = logging.getLogger(__name__)

_GRACE_SECONDS = 5.0


class HttpListenError(DnswatchError):
    """--http-listen names an address this collector cannot listen on; the message says why."""


def bind_http(address: str) -> socket.socket:
    """A listening socket on `HOST:PORT` (`[::1]:PORT` for IPv6); HttpListenError when it cannot be had."""
    host, _, port = address.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        family, kind, protocol, _, where = socket.getaddrinfo(host or None, int(port), type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except (socket.gaierror, UnicodeError):
        raise HttpListenError(f"--http-listen {address}: cannot listen there (no such host: give an address of "
                              "this machine, e.g. 0.0.0.0 or [::])") from None
    sock = socket.socket(family, kind, protocol)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(where)
        sock.listen(128)
    except OSError as error:
        sock.close()
        why = {errno.EADDRINUSE: "the port is in use: stop what listens there or choose another port",
               errno.EADDRNOTAVAIL: "no such address here",
               errno.EACCES: "permission denied: ports below 1024 need privileges"}.get(error.errno, error.strerror)
        raise HttpListenError(f"--http-listen {address}: cannot listen there ({why})") from None
    sock.setblocking(False)
    return sock


class _RotatingCertificate:
    """A server TLS context whose certificate files are re-read, for new handshakes, when they change."""

    def __init__(self, cert: Path, key: Path) -> None:
        self._cert, self._key = cert, key
        self._seen = self._signature()
        self._current = self._load()
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.context.sni_callback = self._choose

    def _signature(self) -> tuple:
        return file_signature(self._cert), file_signature(self._key)

    def _load(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self._cert, self._key)
        return context

    def _choose(self, connection: ssl.SSLObject, server_name: str | None, context: ssl.SSLContext) -> None:
        try:
            signature = self._signature()
            if signature != self._seen:
                self._current = self._load()
                self._seen = signature
                log.info("TLS files changed: new HTTP connections get the new certificate")
        except (OSError, ssl.SSLError) as error:  # a Secret being swapped: keep the certificate loaded
            log.warning("cannot re-read the TLS files (%s); keeping the current ones", reason(error))
        connection.context = self._current
        return None


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The collector's own handlers stop it, this server among its parts.
        yield


class HttpServer:
    """An ASGI app served on a bound socket until `stop`."""

    def __init__(self, app, sock: socket.socket, *, tls_cert: Path | None = None,
                 tls_key: Path | None = None) -> None:
        self._sock = sock
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off",
                                timeout_graceful_shutdown=_GRACE_SECONDS, server_header=False)
        config.load()
        if tls_cert is not None and tls_key is not None:
            config.ssl = _RotatingCertificate(tls_cert, tls_key).context
        self.tls = config.ssl is not None
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return self._sock.getsockname()[1]

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]), name="HTTP API")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # its failure, raised here
                raise HttpListenError("the HTTP API stopped before it started")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._sock.close()
