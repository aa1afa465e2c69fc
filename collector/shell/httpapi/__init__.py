"""The collector's HTTP JSON API (docs/http-api.md), `--http-listen HOST:PORT`: events (list, get, dismiss,
a Server-Sent Events stream), feeds (read, sync, write) and alert exceptions, under /api/v1, for a web UI and
scripts. It is served on the collector's own event loop beside the gRPC server, with the same TLS
certificate and the same bearer tokens and roles, plus a read-only `viewer` role.

The modules: `server` (uvicorn on a bound socket, TLS), `app` (the FastAPI app and its routers), `auth`
(tokens to roles, per route), `errors` (one JSON error body), `events` and `eventstream`, `feeds`,
`exceptions`, `webhooks`, `resourcewrites` (manifests written to the folder or the Kubernetes API).

    api = HttpApi.bind(settings, store=store, bell=bell, hub=hub, keeper=keeper, resources=resources,
                       authenticator=authenticator)
    await api.start()
    ...
    await api.stop()
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collector.shell.eventbell import EventBell
from collector.shell.exceptionkeeper import ExceptionKeeper
from collector.shell.feedhub import FeedHub
from collector.shell.httpapi.app import PREFIX, build_app
from collector.shell.httpapi.auth import Gate
from collector.shell.httpapi.eventstream import EventStream, StreamSettings
from collector.shell.httpapi.server import HttpListenError, HttpServer, bind_http
from collector.shell.httpapi.webhooks import webhooks_router
from collector.shell.security.interceptor import Authenticator
from collector.shell.webhookkeeper import WebhookKeeper

__all__ = ["HttpApi", "HttpApiSettings", "HttpListenError", "PREFIX"]


@dataclass(frozen=True)
class HttpApiSettings:
    """Where and how the HTTP API is served."""

    listen: str
    """`HOST:PORT` (port 0: any free port, see `HttpApi.port`)."""
    tls_cert: Path | None = None
    """The collector's certificate chain (PEM); None: plaintext (--insecure)."""
    tls_key: Path | None = None
    """Its private key."""
    settle_seconds: float = 10.0
    """How long a feed or exception write waits for the collector to hold the change before answering 202."""
    stream: StreamSettings = StreamSettings()
    """How the event streams read and follow."""


class HttpApi:
    """The HTTP API of one collector: its app on its server."""

    def __init__(self, server: HttpServer) -> None:
        self._server = server

    @classmethod
    def bind(cls, settings: HttpApiSettings, *, store: Any, bell: EventBell, hub: FeedHub, keeper: ExceptionKeeper,
             resources: Any, authenticator: Authenticator | None, webhooks: WebhookKeeper | None = None) -> HttpApi:
        """The API on its bound port; HttpListenError when the address cannot be listened on.
        `authenticator` None: --insecure, every call anonymous and allowed. `webhooks`: the collector's
        SecurityEventWebhooks, served under /api/v1/webhooks; None: no webhook routes."""
        gate = Gate(authenticator)
        extra = [webhooks_router(webhooks, resources, gate, settings.settle_seconds)] if webhooks is not None else []
        app = build_app(store=store, stream=EventStream(store, bell, settings.stream), hub=hub, keeper=keeper,
                        resources=resources, gate=gate, settle_seconds=settings.settle_seconds, extra_routers=extra)
        return cls(HttpServer(app, bind_http(settings.listen), tls_cert=settings.tls_cert, tls_key=settings.tls_key))

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def tls(self) -> bool:
        return self._server.tls

    async def start(self) -> None:
        await self._server.start()

    async def stop(self) -> None:
        await self._server.stop()
