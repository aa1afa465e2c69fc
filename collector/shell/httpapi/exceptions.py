"""The alert exception routes: list and get (read from the keeper, as the gRPC AlertExceptions servicer does,
with how many stored events each marks), and create, update and delete, written where the exceptions live
(resourcewrites.py), each returning once the keeper holds the change (or 202, as feeds.py says)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Body, Depends, Path as PathParam
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from collector.shell.exceptionkeeper import ExceptionKeeper
from collector.shell.httpapi.auth import READ, WRITE, Gate
from collector.shell.httpapi.errors import ApiError, ErrorBody, invalid_spec
from collector.shell.httpapi.feeds import settled, write_error
from collector.shell.httpapi.resourcewrites import EXCEPTION_KIND, ResourceWriteFailed, check_name
from collector.store import StoreError
from dnswatch.alerting.exceptions import AlertException, read_alert_exception

__all__ = ["exceptions_router"]

_NAME_PATH = PathParam(max_length=253, description="the AlertException's name")


class ExceptionModel(BaseModel):
    model_config = {"extra": "allow"}
    name: str
    spec: dict[str, Any]
    status: dict[str, Any]
    exceptedEvents: int = Field(description="stored events the exception marks")  # noqa: N815


class ExceptionList(BaseModel):
    exceptions: list[ExceptionModel]


def _shown(exception: AlertException, counts: dict[str, int]) -> dict[str, Any]:
    shown = exception.to_dict(dt.datetime.now(dt.timezone.utc))
    return {"name": exception.name, **shown, "exceptedEvents": counts.get(exception.name, 0)}


def validated_exception(manifest: dict[str, Any], name: str | None = None) -> AlertException:
    """The exception a written manifest says; 422 naming the first field at fault."""
    if manifest.get("kind") != EXCEPTION_KIND:
        raise ApiError(422, f"kind: {manifest.get('kind')!r} is not {EXCEPTION_KIND}", field="body.kind")
    exception = read_alert_exception(manifest)
    if exception.conditions:
        raise invalid_spec(exception.conditions[0].message)
    if name is not None and exception.name != name:
        raise ApiError(422, f"metadata.name: {exception.name!r} is not the exception of this path ({name!r})",
                       field="body.metadata.name")
    return exception


def exceptions_router(keeper: ExceptionKeeper, resources: Any, gate: Gate, settle_seconds: float) -> APIRouter:
    router = APIRouter(prefix="/exceptions", tags=["exceptions"],
                       responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 503: {"model": ErrorBody}})
    reader = Depends(gate.requiring(READ, "reading alert exceptions"))
    writer = Depends(gate.requiring(WRITE, "changing alert exceptions"))

    async def counts() -> dict[str, int]:
        try:
            return await keeper.excepted_counts()
        except StoreError as error:
            raise ApiError(503, f"the event store failed: {error}") from None

    async def shown(name: str, status: int) -> Response:
        exception = keeper.get(name)
        if exception is None:
            raise ApiError(404, f"no AlertException named {name!r}")
        return JSONResponse(_shown(exception, await counts()), status_code=status)

    async def answer(name: str, condition, status: int) -> Response:
        if await settled(condition, settle_seconds):
            return Response(status_code=204) if status == 204 else await shown(name, status)
        location = f"/api/v1/exceptions/{name}"
        return JSONResponse({"status": "written; the collector has not read it yet", "exception": location},
                            status_code=202, headers={"Location": location})

    async def write(method: str, name: str, *manifest: dict[str, Any]) -> None:
        try:
            await getattr(resources, method)(EXCEPTION_KIND, name, *manifest)
        except ResourceWriteFailed as error:
            raise write_error(error) from None

    def held_as(exception: AlertException):
        # Held once the keeper has read the same spec (to_dict at a fixed instant compares the specs).
        moment = dt.datetime.now(dt.timezone.utc)

        def condition() -> bool:
            current = keeper.get(exception.name)
            return current is not None and current.to_dict(moment)["spec"] == exception.to_dict(moment)["spec"]

        return condition

    @router.get("", response_model=ExceptionList, summary="Every alert exception and its status",
                dependencies=[reader])
    async def list_exceptions() -> dict[str, Any]:
        held = await counts()
        return {"exceptions": [_shown(exception, held) for exception in keeper.exceptions]}

    @router.get("/{name}", response_model=ExceptionModel, summary="One alert exception", dependencies=[reader],
                responses={404: {"model": ErrorBody}})
    async def get_exception(name: str = _NAME_PATH) -> Response:
        return await shown(name, 200)

    @router.post("", status_code=201, response_model=ExceptionModel, summary="Create an alert exception",
                 dependencies=[writer], responses={202: {"description": "written, not yet read"},
                                                   409: {"model": ErrorBody}, 422: {"model": ErrorBody}})
    async def create_exception(manifest: dict[str, Any] = Body(description="an AlertException manifest")
                               ) -> Response:
        exception = validated_exception(manifest)
        await write("create", exception.name, manifest)
        return await answer(exception.name, held_as(exception), 201)

    @router.put("/{name}", response_model=ExceptionModel, summary="Replace an alert exception",
                dependencies=[writer], responses={202: {"description": "written, not yet read"},
                                                  404: {"model": ErrorBody}, 409: {"model": ErrorBody},
                                                  422: {"model": ErrorBody}})
    async def update_exception(name: str = _NAME_PATH,
                               manifest: dict[str, Any] = Body(description="an AlertException manifest")
                               ) -> Response:
        exception = validated_exception(manifest, name)
        await write("replace", name, manifest)
        return await answer(name, held_as(exception), 200)

    @router.delete("/{name}", status_code=204, summary="Delete an alert exception", dependencies=[writer],
                   responses={202: {"description": "deleted, not yet read"}, 404: {"model": ErrorBody},
                              409: {"model": ErrorBody}})
    async def delete_exception(name: str = _NAME_PATH) -> Response:
        problem = check_name(name)
        if problem is not None:
            raise ApiError(404, f"no AlertException named {name!r}: {problem}")
        await write("delete", name)
        return await answer(name, lambda: keeper.get(name) is None, 204)

    return router
