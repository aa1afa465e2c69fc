"""The collector's feed services over grpc.aio: `Feeds` for consumers, `FeedDistribution` for agents.

The servicers only translate: requests to FeedHub calls, domain values to messages (`pbconvert`), hub errors
to gRPC status codes. `feed_services_server` assembles them with the standard health service and server
reflection, so `grpcurl -plaintext HOST:PORT list` works.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from collector.core.feedsets import held_after
from collector.shell.feedhub import FeedDisabled, FeedHub, PushRefused, UnknownFeed, WrongFeedKind
from dnswatch.feeds.formats import FeedFormat
from dnswatch.feeds.spec import FeedSpecError, feed_format_from_manifest
from dnswatch.pbconvert.feeds import SYNCED, feed_to_pb, refused_to_pb, sync_to_pb, update_to_pb
from dnswatch_pb.v1 import alerting_pb2, distribution_pb2, distribution_pb2_grpc, events_pb2, feeds_pb2, feeds_pb2_grpc

__all__ = ["FeedDistributionServicer", "FeedsServicer", "add_feed_services"]

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    feeds_pb2.DESCRIPTOR.services_by_name["Feeds"].full_name,
    distribution_pb2.DESCRIPTOR.services_by_name["FeedDistribution"].full_name,
    # Registered by collector/shell/grpc_events.py, grpc_ingest.py, grpc_alerting.py and grpc_webhooks.py;
    # health and reflection cover them here.
    events_pb2.DESCRIPTOR.services_by_name["Events"].full_name,
    events_pb2.DESCRIPTOR.services_by_name["EventIngest"].full_name,
    alerting_pb2.DESCRIPTOR.services_by_name["AlertExceptions"].full_name,
    alerting_pb2.DESCRIPTOR.services_by_name["Webhooks"].full_name,
)


class FeedsServicer(feeds_pb2_grpc.FeedsServicer):
    """`dnswatch feeds list|get|sync|push`."""

    def __init__(self, hub: FeedHub) -> None:
        self._hub = hub

    async def List(self, request: feeds_pb2.ListFeedsRequest, context: grpc.aio.ServicerContext
                   ) -> feeds_pb2.ListFeedsResponse:  # noqa: N802 - the generated servicer's names
        return feeds_pb2.ListFeedsResponse(feeds=[feed_to_pb(feed) for feed in self._hub.feeds()],
                                           refused=[refused_to_pb(refused) for refused in self._hub.refused()])

    async def Get(self, request: feeds_pb2.GetFeedRequest, context: grpc.aio.ServicerContext
                  ) -> feeds_pb2.GetFeedResponse:  # noqa: N802
        try:
            return feeds_pb2.GetFeedResponse(feed=feed_to_pb(self._hub.feed(request.name)))
        except UnknownFeed as error:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(error))

    async def Sync(self, request: feeds_pb2.SyncFeedRequest, context: grpc.aio.ServicerContext
                   ) -> feeds_pb2.SyncFeedResponse:  # noqa: N802
        try:
            feed, result = await self._hub.sync(request.name)
            return sync_to_pb(feed, result.outcome, result.message)
        except UnknownFeed as error:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(error))
        except (FeedDisabled, WrongFeedKind) as error:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(error))

    async def Push(self, request: feeds_pb2.PushFeedRequest, context: grpc.aio.ServicerContext
                   ) -> feeds_pb2.PushFeedResponse:  # noqa: N802
        try:
            fmt = _push_format(request.format)
        except (ValueError, FeedSpecError) as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"format: {error}")
        try:
            feed, outcome = await self._hub.push(request.name, request.body, fmt)
            return feeds_pb2.PushFeedResponse(feed=feed_to_pb(feed), outcome=outcome)
        except UnknownFeed as error:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(error))
        except (FeedDisabled, WrongFeedKind, PushRefused) as error:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(error))


def _push_format(text: str) -> FeedFormat | None:
    """The format a push names (a `pull.http.format` object in JSON); None for the feed's own."""
    if not text.strip():
        return None
    try:
        obj = json.loads(text)
    except ValueError as error:
        raise ValueError(f"not JSON: {error}") from None
    return feed_format_from_manifest(obj)


class FeedDistributionServicer(distribution_pb2_grpc.FeedDistributionServicer):
    """Each agent's feed stream: what it lacks relative to `have`, `synced`, then every change."""

    def __init__(self, hub: FeedHub) -> None:
        self._hub = hub

    async def Subscribe(self, request: distribution_pb2.SubscribeRequest, context: grpc.aio.ServicerContext
                        ) -> AsyncIterator[distribution_pb2.FeedUpdate]:  # noqa: N802
        hub = self._hub
        held: dict[str, int | None] = dict(request.have)
        log.info("agent %s subscribed holding %d feeds", request.node or "(unnamed)", len(held))
        # Subscribed before the initial state is read: a change meanwhile is sent after `synced`, not lost.
        with hub.subscribe() as subscription:
            for name in sorted(set(hub.distributed()) | set(held)):
                async for message in self._bring_up_to_date(name, held):
                    yield message
            yield SYNCED
            while (changed := await subscription.changed()) is not None:
                for name in sorted(changed):
                    async for message in self._bring_up_to_date(name, held):
                        yield message

    async def _bring_up_to_date(self, name: str, held: dict[str, int | None]
                                ) -> AsyncIterator[distribution_pb2.FeedUpdate]:
        updates = await self._hub.updates_for(name, held.get(name))
        for update in updates:
            yield update_to_pb(update)
        held[name] = held_after(held.get(name), updates)
        if held[name] is None:
            del held[name]


async def add_feed_services(server: grpc.aio.Server, hub: FeedHub) -> health.aio.HealthServicer:
    """Register Feeds, FeedDistribution, health and reflection on `server`; returns the health servicer with
    the whole server and each feed service SERVING (call `enter_graceful_shutdown` on it when stopping)."""
    feeds_pb2_grpc.add_FeedsServicer_to_server(FeedsServicer(hub), server)
    distribution_pb2_grpc.add_FeedDistributionServicer_to_server(FeedDistributionServicer(hub), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for service in ("", *SERVICE_NAMES):
        await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    return health_servicer
