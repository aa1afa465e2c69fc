"""The feed routes: list, get (status and rejected samples, as `dnswatch feeds get` shows), sync now, the
manifest as YAML, and create, update, enable/disable and delete, written where the feeds live
(resourcewrites.py). Reads and syncs call the feed hub, as the gRPC Feeds servicer does.

A write returns once the collector holds the change (the hub has the new manifest in force, or no longer has
the feed), within `settle_seconds`; past that, 202 with the feed's URL in Location: the change is written
and the source has not reported it yet (a slow folder poll, a Kubernetes watch reconnecting).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import yaml
from fastapi import APIRouter, Body, Depends, Header, Path as PathParam
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from collector.shell.feedhub import FeedDisabled, FeedHub, UnknownFeed, WrongFeedKind
from collector.shell.httpapi.auth import READ, WRITE, Gate
from collector.shell.httpapi.errors import ApiError, ErrorBody
from collector.shell.httpapi.resourcewrites import (FEED_KIND, ResourceConflict, ResourceMissing,
                                                    ResourceWriteFailed, check_name)
from dnswatch.feeds.spec import FeedSpec, FeedSpecError, feed_spec_from_manifest

__all__ = ["feeds_router"]

_NAME_PATH = PathParam(max_length=253, description="the GlobalThreatFeed's name")


class FeedModel(BaseModel):
    """A feed as `dnswatch feeds get -o json` shows it."""

    model_config = {"extra": "allow"}
    name: str
    content: str
    mode: str
    entries: int
    rejectedLines: int  # noqa: N815 - the resource's status field
    version: int
    errorConditions: list[dict[str, Any]]  # noqa: N815
    rejectedSamples: list[dict[str, Any]] = Field(default_factory=list)  # noqa: N815


class FeedList(BaseModel):
    feeds: list[FeedModel]
    refused: list[dict[str, Any]] = Field(description="manifests the collector refuses, each with why")


class SyncModel(BaseModel):
    outcome: str = Field(description="what the pull did: UPDATED, UNCHANGED, REFUSED, FAILED, ...")
    message: str
    feed: FeedModel


def validated_feed(manifest: dict[str, Any], name: str | None = None) -> FeedSpec:
    """The spec a written manifest says, validated as the collector's sources (and the CRD) validate it;
    422 naming the field."""
    try:
        spec = feed_spec_from_manifest(manifest, allow_push=True)
    except FeedSpecError as error:
        raise ApiError(422, f"{error.field}: {error.problem}", field=f"body.{error.field}") from None
    if name is not None and spec.name != name:
        raise ApiError(422, f"metadata.name: {spec.name!r} is not the feed of this path ({name!r}); a feed is "
                       "renamed by creating the new one and deleting the old", field="body.metadata.name")
    return spec


def write_error(error: ResourceWriteFailed) -> ApiError:
    status = 404 if isinstance(error, ResourceMissing) else 409 if isinstance(error, ResourceConflict) else 503
    return ApiError(status, str(error), headers={"Retry-After": "1"} if status == 503 else None)


async def settled(condition: Callable[[], bool], seconds: float) -> bool:
    """Whether `condition` held within `seconds`, looked at every 50 ms (the hub changes on the event loop)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def feeds_router(hub: FeedHub, resources: Any, gate: Gate, settle_seconds: float) -> APIRouter:
    router = APIRouter(prefix="/feeds", tags=["feeds"],
                       responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})
    reader = Depends(gate.requiring(READ, "reading feeds"))
    writer = Depends(gate.requiring(WRITE, "changing feeds"))

    def detail(name: str) -> dict[str, Any]:
        try:
            return hub.feed(name).detail()
        except UnknownFeed as error:
            raise ApiError(404, str(error)) from None

    async def answer(name: str, condition: Callable[[], bool], status: int) -> Response:
        if await settled(condition, settle_seconds):
            return (Response(status_code=204) if status == 204 else
                    JSONResponse(detail(name), status_code=status))
        return JSONResponse({"status": "written; the collector has not read it yet", "feed": f"/api/v1/feeds/{name}"},
                            status_code=202, headers={"Location": f"/api/v1/feeds/{name}"})

    async def write(method: str, name: str, *manifest: dict[str, Any]) -> None:
        try:
            await getattr(resources, method)(FEED_KIND, name, *manifest)
        except ResourceWriteFailed as error:
            raise write_error(error) from None

    async def manifest_of(name: str) -> dict[str, Any]:
        problem = check_name(name)
        if problem is not None:
            raise ApiError(404, f"no feed named {name!r}: {problem}")
        try:
            return await resources.get(FEED_KIND, name)
        except ResourceWriteFailed as error:
            raise write_error(error) from None

    @router.get("", response_model=FeedList, summary="Every feed and its status", dependencies=[reader])
    async def list_feeds() -> dict[str, Any]:
        return {"feeds": [feed.detail() for feed in hub.feeds()], "refused": [r.record() for r in hub.refused()]}

    @router.get("/{name}", response_model=FeedModel, summary="One feed: status and rejected samples",
                dependencies=[reader], responses={404: {"model": ErrorBody}})
    async def get_feed(name: str = _NAME_PATH) -> dict[str, Any]:
        return detail(name)

    @router.get("/{name}/manifest", summary="The feed's GlobalThreatFeed manifest, as YAML (JSON when asked)",
                dependencies=[reader],
                responses={200: {"content": {"application/yaml": {"schema": {"type": "string"}},
                                             "application/json": {"schema": {"type": "object"}}}},
                           404: {"model": ErrorBody}})
    async def get_manifest(name: str = _NAME_PATH, accept: str | None = Header(None, include_in_schema=False)
                           ) -> Response:
        manifest = await manifest_of(name)
        if accept is not None and "application/json" in accept and "yaml" not in accept:
            # The web UI's edit form starts from the manifest as it is, so fields it does not show are kept.
            return JSONResponse(manifest)
        return Response(yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True), media_type="application/yaml",
                        headers={"Content-Disposition": f'attachment; filename="{name}.yaml"'})

    @router.post("/{name}/sync", response_model=SyncModel, summary="Pull the feed now", dependencies=[writer],
                 responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}})
    async def sync_feed(name: str = _NAME_PATH) -> dict[str, Any]:
        try:
            feed, result = await hub.sync(name)
        except UnknownFeed as error:
            raise ApiError(404, str(error)) from None
        except (FeedDisabled, WrongFeedKind) as error:
            raise ApiError(409, str(error)) from None
        return {"outcome": result.outcome, "message": result.message, "feed": feed.detail()}

    @router.post("", status_code=201, response_model=FeedModel, summary="Create a feed from a manifest",
                 dependencies=[writer], responses={202: {"description": "written, not yet read"},
                                                   409: {"model": ErrorBody}, 422: {"model": ErrorBody}})
    async def create_feed(manifest: dict[str, Any] = Body(description="a GlobalThreatFeed manifest")) -> Response:
        spec = validated_feed(manifest)
        await write("create", spec.name, manifest)
        return await answer(spec.name, lambda: hub.spec(spec.name) == spec, 201)

    @router.put("/{name}", response_model=FeedModel, summary="Replace a feed's manifest", dependencies=[writer],
                responses={202: {"description": "written, not yet read"}, 404: {"model": ErrorBody},
                           409: {"model": ErrorBody}, 422: {"model": ErrorBody}})
    async def update_feed(name: str = _NAME_PATH,
                          manifest: dict[str, Any] = Body(description="a GlobalThreatFeed manifest")) -> Response:
        spec = validated_feed(manifest, name)
        await write("replace", name, manifest)
        return await answer(name, lambda: hub.spec(name) == spec, 200)

    async def set_mode(name: str, mode: str) -> Response:
        manifest = await manifest_of(name)
        manifest = {**manifest, "spec": {**(manifest.get("spec") or {}), "mode": mode}}
        spec = validated_feed(manifest, name)
        await write("replace", name, manifest)
        return await answer(name, lambda: hub.spec(name) == spec, 200)

    @router.post("/{name}/enable", response_model=FeedModel, summary="Set spec.mode to Enabled",
                 dependencies=[writer], responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}})
    async def enable_feed(name: str = _NAME_PATH) -> Response:
        return await set_mode(name, "Enabled")

    @router.post("/{name}/disable", response_model=FeedModel, summary="Set spec.mode to Disabled",
                 dependencies=[writer], responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}})
    async def disable_feed(name: str = _NAME_PATH) -> Response:
        return await set_mode(name, "Disabled")

    @router.delete("/{name}", status_code=204, summary="Delete a feed", dependencies=[writer],
                   responses={202: {"description": "deleted, not yet read"}, 404: {"model": ErrorBody},
                              409: {"model": ErrorBody}})
    async def delete_feed(name: str = _NAME_PATH) -> Response:
        await manifest_of(name)
        await write("delete", name)
        return await answer(name, lambda: name not in {feed.name for feed in hub.feeds()}, 204)

    return router
