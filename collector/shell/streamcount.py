"""The open long-lived streams, counted as they open and close: a server interceptor around the three
streaming calls, so the servicers know nothing of metrics.

    server = grpc.aio.server(interceptors=[*auth, StreamCounter(metrics)])

Placed after the authentication interceptor, it sees only the calls that were let in: a refused call is
counted among the refusals, never as a stream.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

import grpc

from collector.shell.metrics import CollectorMetrics
from dnswatch_pb.v1 import distribution_pb2, events_pb2

__all__ = ["STREAM_METHODS", "StreamCounter"]


def _method(module, service: str, method: str) -> str:
    return f"/{module.DESCRIPTOR.services_by_name[service].full_name}/{method}"


STREAM_METHODS: dict[str, str] = {
    _method(events_pb2, "EventIngest", "Send"): "ingest",
    _method(distribution_pb2, "FeedDistribution", "Subscribe"): "feeds",
    _method(events_pb2, "Events", "Watch"): "watch",
}
"""The full name of each long-lived call -> its `stream` label (collector.shell.metrics.STREAM_KINDS)."""


class StreamCounter(grpc.aio.ServerInterceptor):
    """Counts each call of `STREAM_METHODS` as an open stream of its kind while its handler runs, however
    it ends: the last response, an error, the client cancelling, the server stopping."""

    def __init__(self, metrics: CollectorMetrics) -> None:
        self._metrics = metrics

    async def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable],
                                handler_call_details: grpc.HandlerCallDetails):
        handler = await continuation(handler_call_details)
        kind = STREAM_METHODS.get(handler_call_details.method)
        if handler is None or kind is None:
            return handler
        field = ("stream" if handler.request_streaming else "unary") + "_stream"
        behavior = getattr(handler, field)
        if not inspect.isasyncgenfunction(behavior):  # every dnswatch stream yields its responses
            raise TypeError(f"{handler_call_details.method}: expected an async generator handler")
        metrics = self._metrics

        async def counted(request, context):
            with metrics.stream(kind):
                async for response in behavior(request, context):
                    yield response

        return handler._replace(**{field: counted})
