"""The SecurityEventWebhook routes: list and get (spec with secrets redacted, and status, as `dnswatch
webhooks get` shows them), a test delivery, and create, update and delete, written where the webhooks live
(resourcewrites.py) and answered once the keeper holds the change (or 202, as feeds.py says).

Assembled when the collector keeps webhooks (`HttpApi.bind(..., webhooks=keeper)`); without a keeper the API
has no webhook routes.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Path as PathParam
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from collector.shell.httpapi.auth import READ, WRITE, Gate
from collector.shell.httpapi.errors import ApiError, ErrorBody, invalid_spec
from collector.shell.httpapi.feeds import settled, write_error
from collector.shell.httpapi.resourcewrites import WEBHOOK_KIND, ResourceWriteFailed, check_name
from collector.shell.webhookkeeper import WebhookKeeper
from dnswatch.alerting.webhooks import SecurityEventWebhook, read_security_event_webhook

__all__ = ["webhooks_router"]

_NAME_PATH = PathParam(max_length=253, description="the SecurityEventWebhook's name")


class WebhookModel(BaseModel):
    model_config = {"extra": "allow"}
    name: str
    spec: dict[str, Any] = Field(description="the spec, secret values redacted")
    status: dict[str, Any]


class WebhookList(BaseModel):
    webhooks: list[WebhookModel]


class TestModel(BaseModel):
    delivered: bool
    error: str = Field(description="why not, secrets redacted")
    http_status: int = Field(description="the receiver's answer; 0 when none came")


def validated_webhook(manifest: dict[str, Any], name: str | None = None) -> SecurityEventWebhook:
    """The webhook a written manifest says; 422 naming the first field at fault."""
    if manifest.get("kind") != WEBHOOK_KIND:
        raise ApiError(422, f"kind: {manifest.get('kind')!r} is not {WEBHOOK_KIND}", field="body.kind")
    webhook = read_security_event_webhook(manifest)
    if webhook.conditions:
        raise invalid_spec(webhook.conditions[0].message)
    if name is not None and webhook.name != name:
        raise ApiError(422, f"metadata.name: {webhook.name!r} is not the webhook of this path ({name!r})",
                       field="body.metadata.name")
    return webhook


def webhooks_router(keeper: WebhookKeeper, resources: Any, gate: Gate, settle_seconds: float) -> APIRouter:
    router = APIRouter(prefix="/webhooks", tags=["webhooks"],
                       responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})
    reader = Depends(gate.requiring(READ, "reading webhooks"))
    writer = Depends(gate.requiring(WRITE, "changing webhooks"))

    def shown(name: str) -> dict[str, Any]:
        webhook = keeper.get(name)
        if webhook is None:
            raise ApiError(404, f"no SecurityEventWebhook named {name!r}")
        return {**webhook.to_dict(), "status": keeper.status(name) or {}}

    async def answer(name: str, condition, status: int) -> Response:
        if await settled(condition, settle_seconds):
            return Response(status_code=204) if status == 204 else JSONResponse(shown(name), status_code=status)
        location = f"/api/v1/webhooks/{name}"
        return JSONResponse({"status": "written; the collector has not read it yet", "webhook": location},
                            status_code=202, headers={"Location": location})

    async def write(method: str, name: str, *manifest: dict[str, Any]) -> None:
        try:
            await getattr(resources, method)(WEBHOOK_KIND, name, *manifest)
        except ResourceWriteFailed as error:
            raise write_error(error) from None

    def held_as(webhook: SecurityEventWebhook):
        return lambda: keeper.get(webhook.name) == webhook  # the query compares as written (compare=False)

    @router.get("", response_model=WebhookList, summary="Every webhook and its status", dependencies=[reader])
    async def list_webhooks() -> dict[str, Any]:
        return {"webhooks": [shown(webhook.name) for webhook in keeper.webhooks]}

    @router.get("/{name}", response_model=WebhookModel, summary="One webhook", dependencies=[reader],
                responses={404: {"model": ErrorBody}})
    async def get_webhook(name: str = _NAME_PATH) -> dict[str, Any]:
        return shown(name)

    @router.post("/{name}/test", response_model=TestModel, summary="Send one sample event to the webhook now",
                 dependencies=[writer], responses={404: {"model": ErrorBody}})
    async def test_webhook(name: str = _NAME_PATH) -> TestModel:
        try:
            result = await keeper.test(name)
        except KeyError:
            raise ApiError(404, f"no SecurityEventWebhook named {name!r}") from None
        return TestModel(delivered=result.delivered, error=result.error, http_status=result.http_status)

    @router.post("", status_code=201, response_model=WebhookModel, summary="Create a webhook",
                 dependencies=[writer], responses={202: {"description": "written, not yet read"},
                                                   409: {"model": ErrorBody}, 422: {"model": ErrorBody}})
    async def create_webhook(manifest: dict[str, Any] = Body(description="a SecurityEventWebhook manifest")
                             ) -> Response:
        webhook = validated_webhook(manifest)
        await write("create", webhook.name, manifest)
        return await answer(webhook.name, held_as(webhook), 201)

    @router.put("/{name}", response_model=WebhookModel, summary="Replace a webhook", dependencies=[writer],
                responses={202: {"description": "written, not yet read"}, 404: {"model": ErrorBody},
                           409: {"model": ErrorBody}, 422: {"model": ErrorBody}})
    async def update_webhook(name: str = _NAME_PATH,
                             manifest: dict[str, Any] = Body(description="a SecurityEventWebhook manifest")
                             ) -> Response:
        webhook = validated_webhook(manifest, name)
        await write("replace", name, manifest)
        return await answer(name, held_as(webhook), 200)

    @router.delete("/{name}", status_code=204, summary="Delete a webhook", dependencies=[writer],
                   responses={202: {"description": "deleted, not yet read"}, 404: {"model": ErrorBody},
                              409: {"model": ErrorBody}})
    async def delete_webhook(name: str = _NAME_PATH) -> Response:
        problem = check_name(name)
        if problem is not None:
            raise ApiError(404, f"no SecurityEventWebhook named {name!r}: {problem}")
        await write("delete", name)
        return await answer(name, lambda: keeper.get(name) is None, 204)

    return router
