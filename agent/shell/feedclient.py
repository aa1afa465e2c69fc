"""The agent's end of the collector's feed stream (FeedDistribution.Subscribe, docs/grpc-api.md).

It has the shape of every dnswatch stream: connect, sync, follow, and on failure back off and
resume from what is held. `FeedStream.sync_once` stops at the first `synced` (what `replay --collector`
needs); `FeedStream.follow` keeps going and hands back the held feeds after every change (the live agent).

    connect = connector(ChannelSecurity(ca_file="ca.crt", token_file="/var/run/secrets/tokens/dnswatch"))
    held = FeedStream(FeedStreamSettings("collector:9443", node="node-1"), connect=connect).sync_once(timeout=30)
    matcher = Matcher(*held.matcher_feeds())

The sets themselves are kept by the pure `agent.core.heldfeeds.HeldFeeds`; this module only talks gRPC and
turns the messages into feedwire's dataclasses with the converter the collector's end uses too
(dnswatch/pbconvert/feeds.py), so both ends read a message alike.

Channels come from a `connect(address, options)` factory (dnswatch/grpcchannel.py): TLS with the system's
CAs unless the caller says otherwise, e.g. `connector(channel_security_from_args(args))` or `connector(PLAINTEXT)`.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import grpc

from dnswatch.feeds.wire import FeedSnapshot, UnusableFeed
from agent.core.heldfeeds import HeldFeeds
from dnswatch.channelhints import unreachable_hint
from dnswatch.errors import BadInput
from dnswatch.grpcchannel import ChannelSecurity, Connect, connector
from dnswatch.pbconvert.feeds import update_from_pb
from dnswatch_pb.v1 import distribution_pb2, distribution_pb2_grpc

__all__ = ["CollectorUnavailable", "FeedStream", "FeedStreamSettings"]

log = logging.getLogger(__name__)

_REFUSED = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)

# Resubscribing for a fresh snapshot mends a feed whose delta went wrong; if the same trouble comes back this
# often within one `sync_once`, the collector keeps sending something this agent cannot use: say so and stop.
_MAX_RESUBSCRIBES = 3

# The feed stream is idle for hours between changes: ping the collector so that one which vanished (no FIN,
# no RST) is noticed within about 40 s and `follow` reconnects. The collector accepts pings every 10 s
# (collector/shell/main.py); without data in between gRPC would stop pinging after two, hence the 0.
_CHANNEL_OPTIONS = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
)


class CollectorUnavailable(BadInput):
    """The collector could not be reached, or did not send the feeds in time: for a one-shot replay a bad
    --collector, for the live agent a collector that is not up yet."""


@dataclass(frozen=True)
class FeedStreamSettings:
    """Where the feed stream comes from and how hard to try."""

    address: str
    """The collector's gRPC address, `HOST:PORT`."""
    node: str = "-"
    """This agent's node name (`SubscribeRequest.node`), for the collector's logs."""
    security: ChannelSecurity | None = None
    """How the channel is secured, for the hint when the collector cannot be reached (dnswatch/channelhints.py)."""
    backoff_min: float = 0.5
    """`follow`: seconds before the first reconnection after a failure."""
    backoff_max: float = 30.0
    """`follow`: the longest wait between reconnections (the wait doubles up to this, with jitter)."""


class FeedStream:
    """One agent's subscription to the collector's feeds, resumable from `held`."""

    def __init__(self, settings: FeedStreamSettings, held: HeldFeeds | None = None,
                 rng: random.Random | None = None, *, connect: Connect | None = None) -> None:
        self.settings = settings
        self._connect = connect if connect is not None else connector(ChannelSecurity())
        self.held = held if held is not None else HeldFeeds()
        """The feeds held; they survive a broken stream and are announced when resubscribing."""
        self._rng = rng or random.Random()
        self._stopping = threading.Event()
        self._call: grpc.Future | None = None
        self._lock = threading.Lock()

    # -- replay: sync once

    def sync_once(self, timeout: float) -> HeldFeeds:
        """Subscribe, take the initial state up to `synced`, and return the held feeds.

        Raises BadInput with one line when the collector cannot be reached or does not finish within
        `timeout` seconds, or keeps sending a feed this agent cannot use.
        """
        address = self.settings.address
        deadline = time.monotonic() + timeout
        resubscribes = 0
        with self._connect(address, _CHANNEL_OPTIONS) as channel:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CollectorUnavailable(f"cannot reach the collector at {address}: not synced within "
                                               f"{timeout:g}s")
                try:
                    with contextlib.closing(self._subscription(channel, left)) as subscription:
                        for synced in subscription:
                            if synced:
                                return self.held
                    raise BadInput(f"the collector at {address} ended the feed stream before the feeds were synced")
                except UnusableFeed as error:
                    resubscribes += 1
                    if resubscribes > _MAX_RESUBSCRIBES:
                        raise BadInput(f"the collector at {address} keeps sending feeds that cannot be used: "
                                       f"{error}") from error
                    self.held.forget(error.feed)
                except grpc.RpcError as error:
                    if error.code() in _REFUSED:
                        raise BadInput(f"the collector at {address} refused this agent's credentials: "
                                       f"{_describe(error, timeout)}") from None
                    log.debug("the collector at %s: %s: %s", address, error.code(), _describe(error, timeout))
                    hint = (unreachable_hint(address, self.settings.security, error.details() or "")
                            if error.code() == grpc.StatusCode.UNAVAILABLE else None)
                    raise CollectorUnavailable(f"cannot reach the collector at {address}: "
                                               f"{hint or _describe(error, timeout)}") from None

    # -- the live agent: follow

    def follow(self) -> Iterator[HeldFeeds]:
        """Connect, sync, follow; on failure back off and resume from the versions held. Ends after `stop()`.

        Yields the held feeds once the initial state is in (`synced`) and again after every later change, so
        the caller builds a new `Matcher` each time; between yields it keeps matching with the last one, also
        while the collector is away. A feed that cannot be applied is dropped and the stream resubscribed
        without its version (the collector then sends its snapshot); the other feeds stay held meanwhile.
        """
        delay = self.settings.backoff_min
        while not self._stopping.is_set():
            try:
                with self._connect(self.settings.address, _CHANNEL_OPTIONS) as channel:
                    with contextlib.closing(self._subscription(channel, None)) as subscription:
                        for _synced in subscription:
                            delay = self.settings.backoff_min  # a stream that got this far was healthy
                            yield self.held
            except UnusableFeed as error:
                # Only this feed needs its snapshot, but a collector that keeps sending what this agent cannot
                # read must not make it spin: resubscribe after the same back-off as for a broken stream.
                self.held.forget(error.feed)
            except (grpc.RpcError, BadInput):
                # Unreachable, restarted, cancelled by `stop`, or a credential file being rotated: back off (the
                # loop checks `stop`).
                pass
            # Jitter spreads the reconnections of a whole cluster's agents after a collector restart.
            self._stopping.wait(delay * self._rng.uniform(0.5, 1.0))
            delay = min(delay * 2, self.settings.backoff_max)

    def stop(self) -> None:
        """End `follow` (from another thread): cancels the stream in progress."""
        self._stopping.set()
        with self._lock:
            if self._call is not None:
                self._call.cancel()

    # -- one subscription

    def _subscription(self, channel: grpc.Channel, timeout: float | None) -> Iterator[bool]:
        """Apply the stream's updates to `held`: yields True at `synced`, then False after each later update."""
        self.held.start_stream()
        stub = distribution_pb2_grpc.FeedDistributionStub(channel)
        request = distribution_pb2.SubscribeRequest(node=self.settings.node, have=self.held.versions())
        call = stub.Subscribe(request, timeout=timeout)
        with self._lock:
            self._call = call
        if self._stopping.is_set():
            call.cancel()
        try:
            synced = False
            for message in call:
                update = update_from_pb(message)
                if update is None:  # `synced`
                    synced = True
                    yield True
                    continue
                self.held.apply(update)
                if synced and not (isinstance(update, FeedSnapshot) and update.more):
                    yield False
        finally:
            with self._lock:
                self._call = None
            call.cancel()


def _describe(error: grpc.RpcError, timeout: float) -> str:
    """One line for a failed call: gRPC's details can span lines and repeat the address."""
    code = error.code() if hasattr(error, "code") else None
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"not synced within {timeout:g}s"
    details = (error.details() if hasattr(error, "details") else "") or str(code)
    return " ".join(details.split())
