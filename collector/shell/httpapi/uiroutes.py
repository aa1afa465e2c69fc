"""The web UI (docs/ui.md): static files of the package's `ui/` folder, served beside the API.

`/` is the page; its scripts, styles and icon are under `/ui/`; the pages are hash routes (`/#/events`,
`/#/events/ID`, `/#/feeds`, ...), so one file serves them all and a path prefix added by a proxy needs no
configuration. Webhook messages link to `{--ui-url}/events/ID`: that path redirects to the event's hash
route, relative so that it holds behind a prefix too.

The files need no token, as the OpenAPI document needs none: they hold no data, and the page asks for a
token when the API answers 401. Each answer carries a Content-Security-Policy that allows only this origin's
scripts, styles and connections (no inline script), the second line of defence should a name an attacker
chose (a queried domain, a pod label) ever reach the page as markup.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Path as PathParam, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from collector.shell.httpapi.errors import ApiError

__all__ = ["UI_FOLDER", "ui_router"]

UI_FOLDER = Path(__file__).resolve().parent / "ui"
"""The page's files, carried as package data (pyproject.toml)."""

_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png"}

_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidated on every load (by ETag): a new collector's page is never mixed with the old one's modules.
    "Cache-Control": "no-cache",
}


def _file(path: Path, request: Request) -> Response:
    stat = path.stat()
    etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
    headers = {**_HEADERS, "ETag": etag}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type=_TYPES.get(path.suffix, "application/octet-stream"), headers=headers,
                        stat_result=stat)


def ui_router(folder: Path = UI_FOLDER) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    root = folder.resolve()

    @router.get("/")
    async def page(request: Request) -> Response:
        return _file(root / "index.html", request)

    @router.get("/ui/{name:path}")
    async def asset(name: str, request: Request) -> Response:
        wanted = (root / name).resolve()
        # Only the folder's own files: `..` and absolute names are refused, not resolved outside it.
        if not wanted.is_relative_to(root) or not wanted.is_file() or wanted.suffix not in _TYPES:
            raise ApiError(404, f"no such file of the web UI: /ui/{name}")
        return _file(wanted, request)

    @router.get("/events/{event_id}")
    async def event_link(event_id: str = PathParam(max_length=512)) -> Response:
        # The link of webhook messages ({--ui-url}/events/ID): the event's page, found relative to this path.
        return RedirectResponse(f"../#/events/{quote(event_id, safe='')}", status_code=302)

    return router
