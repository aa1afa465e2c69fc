"""Every HTTP API error is one JSON body, `{"error": {"code": ..., "message": ..., "field": ...}}`, and never
a stack trace: validation failures are 422 naming the field, a failure of ours is 500 and one log line.

`ApiError` is what handlers raise; `install_error_handlers` turns it, FastAPI's validation errors and
Starlette's own HTTP errors (404 for an unknown path, 405) into that body; `CatchAll` wraps the whole app so
that an unexpected exception is logged in one line, not uvicorn's traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = ["ApiError", "CatchAll", "ErrorBody", "error_response", "install_error_handlers", "invalid_spec"]

log = logging.getLogger("collector.shell.httpapi")

_CODES = {400: "bad_request", 401: "unauthenticated", 403: "permission_denied", 404: "not_found",
          405: "method_not_allowed", 409: "conflict", 413: "too_large", 422: "invalid", 500: "internal",
          503: "unavailable"}


class ErrorDetail(BaseModel):
    code: str
    """A word a program can test: `unauthenticated`, `permission_denied`, `not_found`, `invalid`, ..."""
    message: str
    """What went wrong and what to do, for a person."""
    field: str | None = None
    """The field at fault, for `invalid`: `query.limit`, `body.spec.pull.period`, ..."""


class ErrorBody(BaseModel):
    error: ErrorDetail


class ApiError(Exception):
    """An answer other than success: the status, its message and, for invalid input, the field."""

    def __init__(self, status: int, message: str, *, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers


def invalid_spec(message: str) -> ApiError:
    """The 422 of a resource's first condition (`spec.period: ...`, `metadata.name: ...`), the field taken from
    the message; a selector's own messages name it alone (`selector: position 3: ...`), inside `spec`."""
    field = message.split(":", 1)[0] if ":" in message else ""
    if field in ("selector", "query"):
        field = f"spec.{field}"
    return ApiError(422, message, field=f"body.{field}" if field and " " not in field else None)


def error_response(status: int, message: str, field: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    detail: dict[str, Any] = {"code": _CODES.get(status, "error"), "message": message}
    if field is not None:
        detail["field"] = field
    return JSONResponse({"error": detail}, status_code=status, headers=headers)


def _field_of(location: tuple) -> str:
    return ".".join(str(part) for part in location)


async def _api_error(request: Request, error: ApiError) -> JSONResponse:
    return error_response(error.status, error.message, error.field, error.headers)


async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
    problems = error.errors()
    first = problems[0] if problems else {"loc": (), "msg": "invalid request"}
    field = _field_of(tuple(first.get("loc", ())))
    message = f"{field}: {first.get('msg', 'invalid')}" if field else str(first.get("msg", "invalid"))
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more)"
    return error_response(422, message, field or None)


async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
    message = error.detail if isinstance(error.detail, str) else "request refused"
    if error.status_code == 400 and message == "There was an error parsing the body":
        # FastAPI's word for a body that is no UTF-8: invalid input, answered as every other is.
        return error_response(422, "body: not a JSON document (UTF-8)", "body")
    if error.status_code == 404 and message == "Not Found":
        message = f"no such path: {request.url.path} (the API is under /api/v1; see /api/v1/openapi.json)"
    return error_response(error.status_code, message, headers=getattr(error, "headers", None))


async def _internal(request: Request, error: Exception) -> JSONResponse:
    # Logged by CatchAll, which sees it raised again, also from a stream whose answer had begun.
    return error_response(500, "the collector failed to answer; the failure is in its log")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _internal)


class CatchAll:
    """Outermost ASGI wrapper: Starlette answers an unexpected exception with the 500 above (unless the
    answer had begun) and raises it again for the server, which would log its traceback; here it becomes one
    log line instead."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        state = {"started": False, "ended": False}

        async def watched(message) -> None:
            if message["type"] == "http.response.start":
                state["started"] = True
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                state["ended"] = True
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as error:  # noqa: BLE001 - answered by _internal; the log says what failed
            log.error("HTTP %s %s failed: %s: %s", scope.get("method", ""), scope.get("path", ""),
                      type(error).__name__, error)
            if state["started"] and not state["ended"]:
                # A stream that failed midway ends here, cleanly: an event stream's client resumes from its
                # last id, as after any disconnect.
                await send({"type": "http.response.body", "body": b"", "more_body": False})
