"""The AlertExceptions service over grpc.aio (docs/grpc-api.md): the collector's exceptions and their status,
for `dnswatch exceptions list|get`. It only translates the keeper's AlertExceptions into messages."""

from __future__ import annotations

import datetime as dt

import grpc

from collector.shell.exceptionkeeper import ExceptionKeeper
from collector.store import StoreError
from dnswatch.alerting.exceptions import AlertException
from dnswatch_pb.v1 import alerting_pb2, alerting_pb2_grpc

__all__ = ["AlertExceptionsServicer", "add_alerting_service"]


class AlertExceptionsServicer(alerting_pb2_grpc.AlertExceptionsServicer):
    def __init__(self, keeper: ExceptionKeeper) -> None:
        self._keeper = keeper

    async def List(self, request: alerting_pb2.ListAlertExceptionsRequest, context: grpc.aio.ServicerContext
                   ) -> alerting_pb2.ListAlertExceptionsResponse:  # noqa: N802 - the generated servicer's names
        counts = await self._counts(context)
        return alerting_pb2.ListAlertExceptionsResponse(
            exceptions=[_to_pb(exception, counts) for exception in self._keeper.exceptions])

    async def Get(self, request: alerting_pb2.GetAlertExceptionRequest, context: grpc.aio.ServicerContext
                  ) -> alerting_pb2.AlertException:  # noqa: N802
        exception = self._keeper.get(request.name)
        if exception is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no AlertException named {request.name!r}")
        return _to_pb(exception, await self._counts(context))

    async def _counts(self, context: grpc.aio.ServicerContext) -> dict[str, int]:
        try:
            return await self._keeper.excepted_counts()
        except StoreError as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"the event store failed: {error}")


def _to_pb(exception: AlertException, counts: dict[str, int]) -> alerting_pb2.AlertException:
    shown = exception.to_dict(dt.datetime.now(dt.timezone.utc))
    spec, status = shown["spec"], shown["status"]
    return alerting_pb2.AlertException(
        name=exception.name, description=exception.description, selector=exception.selector_text,
        start_time=spec.get("startTime", ""), end_time=spec.get("endTime", ""), period=exception.period,
        active=status["active"], ends_at=status.get("endsAt", ""),
        error_conditions=[alerting_pb2.ExceptionCondition(type=c.type, message=c.message)
                          for c in exception.conditions],
        excepted_events=counts.get(exception.name, 0))


def add_alerting_service(server: grpc.aio.Server, keeper: ExceptionKeeper) -> AlertExceptionsServicer:
    servicer = AlertExceptionsServicer(keeper)
    alerting_pb2_grpc.add_AlertExceptionsServicer_to_server(servicer, server)
    return servicer
