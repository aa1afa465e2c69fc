"""The HTTP API's ASGI app: FastAPI under /api/v1, its OpenAPI document at /api/v1/openapi.json.

FastAPI because the document is made from the routes' own declarations (parameters, bodies, responses),
so the contract a web UI and property-based tests read cannot drift from the code; it stands on Starlette,
whose streaming response carries the event stream, and both are well kept and typed.

The routes are grouped by resource, one module each, and added in `build_app`'s one list; the routes of a
resource only some collectors keep (the SecurityEventWebhooks, webhooks.py) come in `extra_routers`,
checked by the same Gate. The web UI's files (uiroutes.py) are served beside them, at `/`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, FastAPI

from collector.shell.exceptionkeeper import ExceptionKeeper
from collector.shell.feedhub import FeedHub
from collector.shell.httpapi.auth import Gate
from collector.shell.httpapi.errors import CatchAll, install_error_handlers
from collector.shell.httpapi.events import events_router
from collector.shell.httpapi.eventstream import EventStream
from collector.shell.httpapi.exceptions import exceptions_router
from collector.shell.httpapi.feeds import feeds_router
from collector.shell.httpapi.uiroutes import ui_router
from dnswatch.version import package_version

__all__ = ["PREFIX", "build_app"]

PREFIX = "/api/v1"


def build_app(*, store: Any, stream: EventStream, hub: FeedHub, keeper: ExceptionKeeper, resources: Any,
              gate: Gate, settle_seconds: float = 10.0, extra_routers: Sequence[APIRouter] = ()) -> CatchAll:
    app = FastAPI(title="dnswatch collector", version=package_version(),
                  description="Events, feeds and alert exceptions of a dnswatch collector (docs/http-api.md).",
                  openapi_url=f"{PREFIX}/openapi.json", docs_url=None, redoc_url=None)
    install_error_handlers(app)
    for router in (events_router(store, stream, gate),
                   feeds_router(hub, resources, gate, settle_seconds),
                   exceptions_router(keeper, resources, gate, settle_seconds),
                   *extra_routers):
        app.include_router(router, prefix=PREFIX)
    app.include_router(ui_router())  # the web UI at / (docs/ui.md), outside the API and its document
    return CatchAll(app)
