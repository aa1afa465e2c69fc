"""Feed conversions (dnswatch/pbconvert/feeds.py): every domain value survives the round trip."""

from __future__ import annotations

import pytest

from dnswatch.feeds.lines import DOMAIN_NAME_SET, IP_SET
from dnswatch.feeds.feedinfo import FeedInfo
from dnswatch.feeds.wire import FeedRemoved
from collector.core.feedsets import compile_feed, delta_between
from dnswatch.feeds.status import ErrorCondition, FeedStatus, entries_sha256
from dnswatch.pbconvert.feeds import SYNCED, feed_from_pb, feed_to_pb, update_from_pb, update_to_pb
from dnswatch_pb.v1 import distribution_pb2

NAMES = [f"n{i}.example" for i in range(300)]


@pytest.mark.parametrize("feed", [
    FeedInfo("c2", DOMAIN_NAME_SET, "Enabled",
             FeedStatus("2026-11-27T21:53:31Z", (ErrorCondition("RejectedLines", "2 lines"),
                                                 ErrorCondition("PullFailed", "HTTP 500", 4, "2026-11-27T22:00:00Z")),
                        10, 2, "ab", 3),
             description="C2 domains", url="https://feeds.example/c2.txt", period_seconds=3600.0,
             format="csv", match_subdomains=True),
    FeedInfo("restored", "", "Enabled", FeedStatus()),
    FeedInfo("ips", IP_SET, "Disabled", FeedStatus(), period_seconds=86400.0, format="newlineDelimited"),
])
def test_feeds_round_trip(feed):
    assert feed_from_pb(feed_to_pb(feed)) == feed


def test_updates_round_trip():
    old = compile_feed("c2", DOMAIN_NAME_SET, 1, entries_sha256(NAMES), NAMES)
    new = compile_feed("c2", DOMAIN_NAME_SET, 2, entries_sha256(NAMES[1:]), NAMES[1:])
    ips = compile_feed("ips", IP_SET, 1, "x", ["192.0.2.1", "2001:db8::/32"])
    for update in (old.snapshot, ips.snapshot, delta_between(old, new), FeedRemoved("c2")):
        assert update is not None and update_from_pb(update_to_pb(update)) == update
    assert update_from_pb(SYNCED) is None


def test_an_unknown_encoding_is_refused():
    message = update_to_pb(compile_feed("c2", DOMAIN_NAME_SET, 1, "x", NAMES).snapshot)
    message.snapshot.encoding = 99
    with pytest.raises(ValueError, match="encoding"):
        update_from_pb(message)
    with pytest.raises(ValueError):
        update_from_pb(distribution_pb2.FeedUpdate())


def test_the_consumer_api_never_carries_a_urls_credentials():
    # Whatever a FeedInfo was built from, the message a consumer token reads holds no password or query value.
    feed = FeedInfo("c2", DOMAIN_NAME_SET, "Enabled",
                    FeedStatus(error_conditions=(ErrorCondition("PullFailed", "GET https://u:pw-9f8e@h/c2?key=k-7d6c"
                                                                              ": HTTP 500"),)),
                    url="https://u:pw-9f8e@h/c2?key=k-7d6c&fmt=txt")
    message = feed_to_pb(feed)
    assert message.url == "https://u:***@h/c2?key=***&fmt=***"
    assert message.status.error_conditions[0].message == "GET https://u:***@h/c2?key=***: HTTP 500"
    assert b"pw-9f8e" not in message.SerializeToString() and b"k-7d6c" not in message.SerializeToString()
