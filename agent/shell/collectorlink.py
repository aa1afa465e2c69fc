"""An agent's two streams to the collector, in one object, for `replay --collector` and `run --collector`.

Feeds: synced once at start (`FeedStream.sync_once`). A live agent then follows them on a thread
(`FeedStream.follow`) that builds a new `Matcher` for each changed set and leaves it in `new_matchers` for the
capture loop to take over between two messages. A collector that refuses the agent's credentials is one line
and exit 2. One that cannot be reached yet is fatal to a replay, which has nothing to match with, but only a
warning to a live agent (a node that boots before the collector is scheduled): it captures with no feeds,
`/readyz` says not ready, and the follow thread takes the feeds as soon as the collector answers, rather than
the DaemonSet's pod restarting into a crash-loop back-off.

Events: `EventShipper` (agent/shell/shipper.py), with the spool when one is given; at the end the shipper has
`timeout` seconds to see every event acknowledged, and `finish` says how that went in one line.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agent.core.scanner import Matcher
from agent.shell.feedclient import CollectorUnavailable, FeedStream, FeedStreamSettings
from agent.shell.shipper import CHANNEL_OPTIONS, EventShipper, ShipperSettings
from dnswatch.errors import DnswatchError
from dnswatch.grpcchannel import ChannelSecurity, connector

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LinkSettings:
    """Where the collector is and how to reach it."""

    address: str
    node: str
    channel: ChannelSecurity
    timeout: float
    """Seconds to wait for the feeds at start, and for the acknowledgement of every event at the end."""
    spool: Path | None = None
    """Keep unacknowledged events here (agent/shell/spool.py)."""


class CollectorLink:
    """Feeds from the collector (synced at start; followed with `follow=True`) and events to it."""

    def __init__(self, settings: LinkSettings, *, follow: bool, say: Callable[[str], None]) -> None:
        """`say` reports the feeds taken, one line each (replay prints them, a live agent logs them)."""
        self.settings = settings
        connect = connector(settings.channel)
        self._stream = FeedStream(FeedStreamSettings(settings.address, node=settings.node,
                                                        security=settings.channel), connect=connect)
        self.synced = False
        """Whether the feeds have come from the collector (readiness)."""
        try:
            held = self._stream.sync_once(settings.timeout)  # BadInput, one line, if it refuses us
            self.synced = True
        except CollectorUnavailable as error:
            if not follow:
                raise
            log.warning("%s: capturing with no feeds until it answers (events are kept for it meanwhile)", error)
            held = self._stream.held
        self.feeds = held.feeds()
        """The feeds held now (`HeldFeed`s), for metrics."""
        self._versions = held.versions()
        for feed in self.feeds:
            say(f"feed {feed.name}: {feed.entries} {feed.content} entries (version {feed.version} from the "
                "collector)")
        if not self.feeds and self.synced:
            if not follow:
                raise DnswatchError(f"the collector at {settings.address} distributes no feeds (yet): nothing to "
                                    "match")
            log.warning("the collector at %s distributes no feeds yet: nothing matches until it does",
                        settings.address)
        self.matcher = Matcher(*held.matcher_feeds(), contexts=held.contexts())
        self.new_matchers: list[Matcher] = []
        """Matchers for changed feeds, oldest first: the follow thread appends, the capture loop takes."""
        self.shipper = EventShipper(lambda: connect(settings.address, CHANNEL_OPTIONS),
                                    ShipperSettings(node=settings.node, spool_dir=settings.spool))
        self._follower = None
        if follow:
            self._follower = threading.Thread(target=self._follow, name="feed-follow", daemon=True)
            self._follower.start()

    def _follow(self) -> None:
        # `follow` yields at every (re)sync too; only a change of version makes a new matcher, whose caches
        # start cold.
        for held in self._stream.follow():
            if not self.synced:
                log.info("collector %s reached: %d feeds", self.settings.address, len(held.feeds()))
                self.synced = True
            versions = held.versions()
            if versions == self._versions:
                continue
            self._versions = versions
            self.feeds = held.feeds()
            self.new_matchers.append(Matcher(*held.matcher_feeds(), contexts=held.contexts()))
            log.info("feeds changed: %s", ", ".join(f"{f.name} v{f.version}" for f in self.feeds) or "none")

    def finish(self) -> str:
        """Wait (at most `timeout`) for the collector to acknowledge every event: the line that says so, or
        DnswatchError with the line that says what is left (and where it is kept)."""
        return acknowledged(self.shipper, self.settings)

    def close(self) -> None:
        self._stream.stop()
        if self._follower is not None:
            self._follower.join(5)
        self.shipper.close()


def acknowledged(shipper: EventShipper, settings: LinkSettings) -> str:
    """`CollectorLink.finish` for any shipper: wait for the acknowledgements, then one line either way."""
    done = shipper.flush(settings.timeout)
    stats = shipper.stats()
    dropped = f", {stats.dropped} dropped (queue full)" if stats.dropped else ""
    recovered = f" (including {stats.recovered} resent from the spool)" if stats.recovered else ""
    if done and stats.refused:
        raise DnswatchError(f"the collector at {settings.address} refused {stats.refused} events as unusable "
                            f"({stats.last_error}): {stats.acked} acknowledged{dropped}")
    if done:
        return f"collector {settings.address}: {stats.acked} events acknowledged{recovered}{dropped}"
    left = stats.queued + stats.in_flight
    kept = f"; they stay in the spool {settings.spool}" if settings.spool is not None else ""
    reason = f" ({stats.last_error})" if stats.last_error else ""
    raise DnswatchError(f"the collector at {settings.address} did not acknowledge {left} events within "
                        f"{settings.timeout:g}s{reason}: {stats.acked} acknowledged{dropped}{kept}")
