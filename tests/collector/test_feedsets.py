"""The pure distribution rules (collector/core/feedsets.py) and the consumer record (dnswatch/feeds/feedinfo.py,
consumer/feedtable.py)."""

from __future__ import annotations

from dnswatch.feeds.lines import DOMAIN_NAME_SET, IP_SET
from dnswatch.feeds.wire import FeedDelta, FeedSnapshot, apply_ip_delta, ip_entries_from_snapshot
from consumer.feedtable import table_row
from dnswatch.feeds.feedinfo import FeedInfo
from dnswatch.feeds.wire import FeedRemoved
from collector.core.feedsets import compile_feed, delta_between, held_after, update_from
from dnswatch.feeds.status import ErrorCondition, FeedStatus, entries_sha256

NAMES = [f"n{i}.example" for i in range(500)]


def domains(version: int, names: list[str], subdomains: bool = False):
    return compile_feed("c2", DOMAIN_NAME_SET, version, entries_sha256(names), names, subdomains)


def test_an_agent_up_to_date_gets_nothing_one_without_the_feed_a_snapshot():
    current = domains(3, NAMES)
    assert update_from(current, 3, None) == []
    assert update_from(current, None, None) == [current.snapshot]
    parts = update_from(current, None, None, part_bytes=100)
    assert len(parts) > 1 and [p.more for p in parts][-1] is False and all(p.more for p in parts[:-1])


def test_a_small_change_is_a_delta_and_only_from_the_version_it_starts_at():
    old, new = domains(1, NAMES), domains(2, NAMES[1:] + ["added.example"])
    change = delta_between(old, new)
    assert isinstance(change, FeedDelta) and (change.from_version, change.to_version) == (1, 2)
    assert update_from(new, 1, change) == [change]
    assert update_from(new, 0, change) == [new.snapshot]  # the delta does not start where the agent is


def test_no_delta_when_it_would_not_be_much_smaller_or_the_sets_are_not_comparable():
    old = domains(1, NAMES)
    assert delta_between(old, domains(2, [f"other{i}.example" for i in range(500)])) is None
    assert delta_between(old, domains(2, NAMES, subdomains=True)) is None
    ips = compile_feed("c2", IP_SET, 2, "x", ["192.0.2.1"])
    assert delta_between(old, ips) is None


def test_ip_sets_travel_as_lines_and_their_deltas_apply():
    entries = [f"192.0.2.{i}" for i in range(1, 200)]
    old = compile_feed("ips", IP_SET, 1, entries_sha256(entries), entries)
    new_entries = entries[1:] + ["2001:db8::1"]
    new = compile_feed("ips", IP_SET, 2, entries_sha256(new_entries), new_entries)
    assert ip_entries_from_snapshot(old.snapshot) == set(entries)
    change = delta_between(old, new)
    assert change is not None and apply_ip_delta(frozenset(entries), change) == set(new_entries)


def test_held_after_follows_snapshots_deltas_and_removals():
    snapshot = domains(4, NAMES).snapshot
    delta = FeedDelta(name="c2", content=DOMAIN_NAME_SET, from_version=4, to_version=5, sha256="", added=b"",
                      removed=b"", entries=0, digest=0, encoding="GAPS_ZLIB")
    assert held_after(None, [snapshot]) == 4
    assert held_after(None, [snapshot, delta]) == 5
    assert held_after(5, [FeedRemoved("c2")]) is None
    assert held_after(2, []) == 2
    assert isinstance(snapshot, FeedSnapshot)


def test_the_consumer_record_has_the_spec_fields_in_order_and_the_table_shows_the_newest_problem():
    status = FeedStatus(last_successful_sync="2026-11-27T21:00:00Z", entries=3, rejected_lines=1, sha256="ab",
                        version=2, error_conditions=(ErrorCondition("RejectedLines", "1 line"),
                                                     ErrorCondition("PullFailed", "HTTP 500", 3, "2026-11-27T21:50:00Z")))
    feed = FeedInfo("c2", DOMAIN_NAME_SET, "Enabled", status, url="https://feeds.example/c2.txt",
                    period_seconds=3600.0, format="newlineDelimited")
    assert list(feed.record()) == ["name", "content", "mode", "entries", "rejectedLines", "lastSuccessfulSync",
                                   "errorConditions", "version", "sha256"]
    assert feed.record()["errorConditions"][-1] == {"type": "PullFailed", "message": "HTTP 500", "count": 3,
                                                    "lastTime": "2026-11-27T21:50:00Z"}
    assert feed.detail()["url"] == "https://feeds.example/c2.txt"
    assert table_row(feed) == ("c2", DOMAIN_NAME_SET, "Enabled", "3", "1", "2", "2026-11-27T21:00:00Z",
                               "PullFailed x3 +1")
