"""`dnswatch-agent run --collector`: the live agent's two streams to the collector, in one object.

Feeds: synced once at start (`FeedStream.sync_once`), then followed on a thread (`FeedStream.follow`) that
builds a new `Matcher` for each changed set and leaves it in `new_matchers` for the capture loop to take over
between two messages. A collector that refuses the agent's credentials is one line and exit 2; one that cannot
be reached yet (a node that boots before the collector is scheduled) is a warning: the agent captures with no
feeds, `/readyz` says not ready, and the follow thread takes the feeds as soon as the collector answers,
rather than the DaemonSet's pod restarting into a crash-loop back-off. Events: `EventShipper` (agent/shell/shipper.py), with the spool when `--spool-dir` is given; at the
stop the shipper is given `collector_timeout` to see every event acknowledged.
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)


class CollectorLink:
    """The agent's two streams to the collector: feeds (synced at start, then followed by a thread that
    hands each changed set to the capture loop as a new Matcher) and events (agent.shell.shipper)."""

    def __init__(self, config) -> None:
        """`config`: a RunConfig (collector, collector_timeout, channel, node, spool_dir)."""
        from agent.core.scanner import Matcher
        from agent.shell.feedclient import CollectorUnavailable, FeedStream, FeedStreamSettings
        from dnswatch.grpcchannel import connector
        from agent.shell.shipper import CHANNEL_OPTIONS, EventShipper, ShipperSettings

        self._matcher_class = Matcher
        self.address = config.collector
        connect = connector(config.channel)
        self._stream = FeedStream(FeedStreamSettings(config.collector, node=config.node), connect=connect)
        self.synced = False
        """Whether the feeds have come from the collector (readiness)."""
        try:
            held = self._stream.sync_once(config.collector_timeout)  # BadInput, one line, if it refuses us
            self.synced = True
        except CollectorUnavailable as error:
            log.warning("%s: capturing with no feeds until it answers (events are kept for it meanwhile)", error)
            held = self._stream.held
        self.feeds = held.feeds()
        """The feeds held now (`HeldFeed`s), for metrics."""
        self._versions = held.versions()
        for feed in self.feeds:
            log.info("feed %s: %d %s entries (version %d from the collector)", feed.name, feed.entries,
                     feed.content, feed.version)
        if not self.feeds and self.synced:
            log.warning("the collector at %s distributes no feeds yet: nothing matches until it does", self.address)
        self.matcher = Matcher(*held.matcher_feeds())
        self.new_matchers: list = []
        """Matchers for changed feeds, oldest first: the follow thread appends, the capture loop takes."""
        self.shipper = EventShipper(lambda: connect(config.collector, CHANNEL_OPTIONS),
                                    ShipperSettings(node=config.node, spool_dir=config.spool_dir))
        self._follower = threading.Thread(target=self._follow, name="feed-follow", daemon=True)
        self._follower.start()

    def _follow(self) -> None:
        # `follow` yields at every (re)sync too; only a change of version makes a new matcher, whose caches
        # start cold.
        for held in self._stream.follow():
            if not self.synced:
                log.info("collector %s reached: %d feeds", self.address, len(held.feeds()))
                self.synced = True
            versions = held.versions()
            if versions == self._versions:
                continue
            self._versions = versions
            self.feeds = held.feeds()
            self.new_matchers.append(self._matcher_class(*held.matcher_feeds()))
            log.info("feeds changed: %s", ", ".join(f"{f.name} v{f.version}" for f in self.feeds) or "none")

    def finish(self, timeout: float) -> None:
        """Wait (at most `timeout`) for the collector to acknowledge every event; say how it went."""
        done = self.shipper.flush(timeout)
        stats = self.shipper.stats()
        if done:
            log.info("collector %s: %d events acknowledged", self.address, stats.acked)
        else:
            left = stats.queued + stats.in_flight
            log.warning("collector %s did not acknowledge %d events within %gs (%s)%s", self.address, left, timeout,
                        stats.last_error or "no answer",
                        "; they stay in the spool" if self.shipper.settings.spool_dir else "; they are lost")

    def close(self) -> None:
        self._stream.stop()
        self._follower.join(5)
        self.shipper.close()
