"""The Webhooks service over grpc.aio (docs/grpc-api.md): the collector's SecurityEventWebhooks, their status
and a test delivery, for `dnswatch webhooks list|get|test`. It only translates between the WebhookKeeper and
messages: the spec is the model's own view of it (`SecurityEventWebhook.to_dict`, secrets redacted), the status
the keeper's, and Test is the keeper's."""

from __future__ import annotations

from typing import Any

import grpc

from collector.shell.webhookkeeper import WebhookKeeper
from dnswatch.alerting.webhooks import SecurityEventWebhook
from dnswatch_pb.v1 import alerting_pb2, alerting_pb2_grpc

__all__ = ["WebhooksServicer", "add_webhooks_service"]


class WebhooksServicer(alerting_pb2_grpc.WebhooksServicer):
    def __init__(self, keeper: WebhookKeeper) -> None:
        self._keeper = keeper

    async def List(self, request: alerting_pb2.ListWebhooksRequest, context: grpc.aio.ServicerContext
                   ) -> alerting_pb2.ListWebhooksResponse:  # noqa: N802 - the generated servicer's names
        return alerting_pb2.ListWebhooksResponse(
            webhooks=[await self._shown(webhook) for webhook in self._keeper.webhooks])

    async def Get(self, request: alerting_pb2.GetWebhookRequest, context: grpc.aio.ServicerContext
                  ) -> alerting_pb2.SecurityEventWebhook:  # noqa: N802
        webhook = self._keeper.get(request.name)
        if webhook is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no SecurityEventWebhook named {request.name!r}")
        return await self._shown(webhook)

    async def Test(self, request: alerting_pb2.TestWebhookRequest, context: grpc.aio.ServicerContext
                   ) -> alerting_pb2.TestWebhookResponse:  # noqa: N802
        try:
            result = await self._keeper.test(request.name)
        except KeyError:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no SecurityEventWebhook named {request.name!r}")
        return alerting_pb2.TestWebhookResponse(delivered=result.delivered, error=result.error,
                                                http_status=result.http_status)

    async def _shown(self, webhook: SecurityEventWebhook) -> alerting_pb2.SecurityEventWebhook:
        # Resolved first, so that a Secret or key that cannot be read is among the conditions shown.
        config = await self._keeper.resolved(webhook.name)
        status = self._keeper.status(webhook.name) or {}
        delivery = self._keeper.delivery(webhook.name)
        return alerting_pb2.SecurityEventWebhook(
            name=webhook.name, api_version=webhook.api_version, consumer=webhook.consumer, state=webhook.state,
            description=webhook.description, query=webhook.query_text,
            config=[_config_item(item) for item in webhook.to_dict()["spec"]["config"]],
            delivers=webhook.delivers and config is not None and config.complete,
            conditions=[alerting_pb2.WebhookCondition(type=c["type"], message=c["message"])
                        for c in status.get("conditions", ())],
            last_delivery=status.get("lastDelivery", ""), last_error=status.get("lastError", ""),
            last_error_time=status.get("lastErrorTime", ""), pending=status.get("pending", 0),
            dead_letters=status.get("deadLetters", 0), delivered=delivery.delivered, failed=delivery.failed)


def _config_item(item: dict[str, Any]) -> alerting_pb2.WebhookConfigItem:
    value_from = item.get("valueFrom")
    if not value_from:
        return alerting_pb2.WebhookConfigItem(name=item["name"], value=item.get("value") or "")
    (which, ref), = value_from.items()
    kind = "Secret" if which == "secretKeyRef" else "ConfigMap"
    return alerting_pb2.WebhookConfigItem(name=item["name"], value_from_kind=kind, value_from_name=ref["name"],
                                          value_from_key=ref["key"])


def add_webhooks_service(server: grpc.aio.Server, keeper: WebhookKeeper) -> WebhooksServicer:
    servicer = WebhooksServicer(keeper)
    alerting_pb2_grpc.add_WebhooksServicer_to_server(servicer, server)
    return servicer
