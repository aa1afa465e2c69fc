"""Events in the collector's store, every test on SQLite and on a real PostgreSQL server (tests/pgserver.py)."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.store import BadEvent, BadPageToken, IngestResult, StoredEvent, StoreError, open_store
from collector.store.eventqueries import MAX_PAGE_SIZE, decode_page_token, encode_page_token
from collector.store.eventrows import event_row, json_event_row, merge_batch
from dnswatch.eventfilter import EventFilter
from tests.collector.eventdata import T0
from tests.collector.eventdata import event as make_event

pytestmark = pytest.mark.anyio

ALL = EventFilter()


async def ids(store, where: EventFilter = ALL, page_size: int = MAX_PAGE_SIZE) -> list[str]:
    """Every matching id, newest first, following the pages to the end."""
    found, token = [], ""
    while True:
        page, token = await store.list_events(where, page_size, token)
        found += [stored.event["id"] for stored in page]
        if not token:
            return found


def newest_first(events: list[dict]) -> list[str]:
    return [e["id"] for e in sorted(events, key=lambda e: (e["time"], e["id"]), reverse=True)]


# -- exactly once -----------------------------------------------------------------------------------------------


async def test_a_batch_ingested_again_and_again_is_stored_once(store) -> None:
    batch = [make_event(i) for i in range(50)]
    assert await store.ingest_events(batch) == IngestResult(inserted=50, updated=0, unchanged=0)
    for _ in range(3):
        assert await store.ingest_events(batch) == IngestResult(inserted=0, updated=0, unchanged=50)
    assert await store.ingest_events(batch + batch) == IngestResult(inserted=0, updated=0, unchanged=100)
    page, token = await store.list_events(ALL, 100)
    assert token == ""
    assert [stored.event for stored in page] == [batch[int(i, 16)] for i in newest_first(batch)]
    assert sorted(stored.seq for stored in page) == list(range(1, 51))
    assert await store.latest_event_seq() == 50


async def test_a_batch_repeating_an_id_keeps_its_highest_count(store) -> None:
    batch = [make_event(1, count=2), make_event(1, count=5), make_event(1, count=3), make_event(2)]
    assert await store.ingest_events(batch) == IngestResult(inserted=2, updated=0, unchanged=2)
    page, _ = await store.list_events(EventFilter(), 10)
    assert {s.event["id"]: s.event["record"]["count"] for s in page} == {f"{1:032x}": 5, f"{2:032x}": 1}
    assert await store.ingest_events([]) == IngestResult(0, 0, 0)


async def test_an_event_that_grows_replaces_its_row_with_a_new_seq_and_a_smaller_count_is_ignored(store) -> None:
    await store.ingest_events([make_event(1, count=1), make_event(2, count=1)])
    before = await store.events_since(0, ALL, 10)
    assert [(s.seq, s.event["id"]) for s in before] == [(1, f"{1:032x}"), (2, f"{2:032x}")]

    grown = make_event(1, count=6, domains=("evil1.example", "evil9.example"), feeds=("c2", "malware"))
    assert await store.ingest_events([grown]) == IngestResult(inserted=0, updated=1, unchanged=0)
    after = await store.events_since(0, ALL, 10)
    assert [(s.seq, s.event["id"]) for s in after] == [(2, f"{2:032x}"), (3, f"{1:032x}")]
    assert after[1].event == grown
    # The side tables follow the grown event.
    assert await ids(store, EventFilter(feed="malware")) == [f"{1:032x}"]
    assert await ids(store, EventFilter(domain="evil9.example")) == [f"{1:032x}"]

    for stale in (make_event(1, count=5), make_event(1, count=6, namespace="other")):
        assert await store.ingest_events([stale]) == IngestResult(inserted=0, updated=0, unchanged=1)
    assert await store.events_since(0, ALL, 10) == after
    assert await store.latest_event_seq() == 3


async def test_a_bad_event_refuses_the_whole_batch(store) -> None:
    good = make_event(1)
    for bad, message in (({"time": good["time"]}, "no id"), ({"id": "x"}, "time"),
                         ({"id": "x", "time": "yesterday"}, "RFC 3339"),
                         ({"id": "x", "time": "2026-11-27T20:00:00"}, "timezone"),
                         ({**good, "id": "y", "record": {"count": -1}}, "count"),
                         ({**good, "id": "z", "severity": float("nan")}, "not JSON"),
                         ("a string", "JSON object")):
        with pytest.raises(BadEvent, match=message):
            await store.ingest_events([good, bad])
    assert await store.events_since(0, ALL, 10) == []
    assert await store.latest_event_seq() == 0


# -- filters ------------------------------------------------------------------------------------------------------


async def test_every_filter_alone_and_together(store) -> None:
    events = [make_event(0, namespace="shop", pod="web-a-1", feeds=("c2",), domains=("evil.example",)),
              make_event(1, namespace="shop", pod="web-a-2", feeds=("c2", "malware"), domains=("bad.example",)),
              make_event(2, namespace="bank", pod="api-b-1", feeds=("malware",), domains=("evil.example",)),
              make_event(3, namespace="bank", pod="api-b-1", feeds=("phish",), domains=(),
                         type_="gtf_suspicious_dns_answer"),
              make_event(4, namespace="-", pod="-", feeds=("c2",), domains=("xn--bcher-kva.example",))]
    await store.ingest_events(events)
    eid = [e["id"] for e in events]

    cases = {
        EventFilter(): [4, 3, 2, 1, 0],
        EventFilter(namespace="shop"): [1, 0],
        EventFilter(namespace="nowhere"): [],
        EventFilter(pod="api-b-1"): [3, 2],
        EventFilter(pod="web-a-*"): [1, 0],  # the aggregated name
        EventFilter(feed="c2"): [4, 1, 0],
        EventFilter(feed="malware"): [2, 1],
        EventFilter(domain="evil.example"): [2, 0],
        EventFilter(domain="EVIL.Example."): [2, 0],  # canonicalized
        EventFilter(domain="Bücher.example"): [4],  # IDN to A-label
        EventFilter(type="gtf_suspicious_dns_answer"): [3],
        EventFilter(since=T0 + dt.timedelta(seconds=2)): [4, 3, 2],
        EventFilter(until=T0 + dt.timedelta(seconds=2)): [1, 0],
        EventFilter(since=T0 + dt.timedelta(seconds=1), until=T0 + dt.timedelta(seconds=3)): [2, 1],
        EventFilter(namespace="bank", feed="malware", domain="evil.example"): [2],
        EventFilter(namespace="shop", feed="c2", pod="web-a-2", since=T0 + dt.timedelta(milliseconds=999)): [1],
        EventFilter(namespace="shop", type="gtf_suspicious_dns_answer"): [],
    }
    for where, expected in cases.items():
        assert await ids(store, where) == [eid[i] for i in expected], where
        assert [s.event["id"] for s in await store.events_since(0, where, 100)] == sorted(
            (eid[i] for i in expected), key=eid.index), where


async def test_limits_and_times_are_checked(store) -> None:
    for size in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="positive"):
            await store.list_events(ALL, size)
        with pytest.raises(ValueError, match="positive"):
            await store.events_since(0, ALL, size)
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.list_events(EventFilter(since=dt.datetime(2026, 1, 1)), 10)
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.delete_events_before(dt.datetime(2026, 1, 1))
    await store.ingest_events([make_event(i) for i in range(MAX_PAGE_SIZE + 5)])
    page, token = await store.list_events(ALL, MAX_PAGE_SIZE * 10)
    assert len(page) == MAX_PAGE_SIZE and token
    assert len(await store.events_since(0, ALL, MAX_PAGE_SIZE * 10)) == MAX_PAGE_SIZE


# -- pagination -----------------------------------------------------------------------------------------------------


async def test_pages_cover_everything_once_with_ties_in_time(store) -> None:
    # Ten events per second: pages must break ties on id.
    events = [make_event(i, seconds=i // 10) for i in range(95)]
    await store.ingest_events(events)
    expected = newest_first(events)
    for size in (1, 7, 10, 94, 95, 96):
        assert await ids(store, page_size=size) == expected, size
    last_page, token = await store.list_events(ALL, 95)
    assert token == "" and len(last_page) == 95


async def test_pages_have_no_gap_and_no_duplicate_while_new_events_arrive(store) -> None:
    await store.ingest_events([make_event(i) for i in range(100, 200)])
    seen: list[str] = []
    token, arriving = "", 200
    while True:
        page, token = await store.list_events(EventFilter(namespace="shop"), 9, token)
        seen += [s.event["id"] for s in page]
        # Newer events (and a growth of one already listed) land between pages; they sort before the
        # listing's position, so the pages go on exactly where they were.
        await store.ingest_events([make_event(arriving), make_event(arriving + 1),
                                   make_event(150, count=2)])
        arriving += 2
        if not token:
            break
    assert seen == [f"{i:032x}" for i in range(199, 99, -1)]
    assert len(set(seen)) == 100


async def test_a_damaged_page_token_is_refused() -> None:
    assert decode_page_token(encode_page_token(1764273600.123, "abc")) == (1764273600.123, "abc")
    for token in ("garbage!", "e30", encode_page_token(1.0, "x")[:-3], "WzIsMSwieCJd"):
        with pytest.raises(BadPageToken):
            decode_page_token(token)


async def test_a_damaged_page_token_is_refused_by_the_store(store) -> None:
    with pytest.raises(BadPageToken):
        await store.list_events(ALL, 10, "not-a-token")
    assert issubclass(BadPageToken, StoreError)


# -- watch with resume -------------------------------------------------------------------------------------------------


async def test_events_since_resumes_with_no_gap_and_no_duplicate(store) -> None:
    received: list[StoredEvent] = []
    position = 0

    async def poll(limit: int = 4) -> None:
        nonlocal position
        while batch := await store.events_since(position, EventFilter(feed="c2"), limit):
            received.extend(batch)
            position = batch[-1].seq  # the resume token a watcher keeps

    await store.ingest_events([make_event(i) for i in range(10)])
    await poll()
    await store.ingest_events([make_event(i) for i in range(10, 15)] + [make_event(3, count=4)]
                              + [make_event(i, feeds=("other",)) for i in range(15, 18)])
    await poll(limit=1)
    await poll()  # nothing new: nothing repeated

    seqs = [s.seq for s in received]
    assert seqs == sorted(set(seqs))
    assert [s.event["id"] for s in received] == [f"{i:032x}" for i in list(range(15)) + [3]]
    assert received[-1].event["record"]["count"] == 4
    # New ids take their numbers first, then the grown ones: the growth of event 3 is the last change.
    assert position == await store.latest_event_seq() == 19


async def test_concurrent_ingests_hand_out_every_seq_once(store) -> None:
    batches = [[make_event(b * 20 + i) for i in range(20)] for b in range(10)]
    results = await asyncio.gather(*(store.ingest_events(batch) for batch in batches))
    assert sum(r.inserted for r in results) == 200
    assert [s.seq for s in await store.events_since(0, ALL, 1000)] == list(range(1, 201))


# -- retention --------------------------------------------------------------------------------------------------------


async def test_a_number_is_never_handed_out_twice_after_retention_took_the_newest_row(store) -> None:
    await store.ingest_events([make_event(i) for i in range(5)])
    await store.ingest_events([make_event(99, seconds=-10_000)])  # seq 6, and long gone
    seen = await store.latest_event_seq()
    assert seen == 6
    assert await store.delete_events_before(T0 - dt.timedelta(seconds=1000)) == 1
    # A watcher that read up to 6 must see the next events, so they cannot be numbered 6 again.
    await store.ingest_events([make_event(i) for i in range(10, 13)])
    assert [item.seq for item in await store.events_since(seen, ALL, 10)] == [7, 8, 9]
    await store.ingest_events([make_event(i) for i in range(20, 22)])
    assert [item.seq for item in await store.events_since(9, ALL, 10)] == [10, 11]


async def test_retention_deletes_what_was_last_seen_before_the_cutoff(store) -> None:
    old = [make_event(i, last_seconds=1) for i in range(5)]  # last seen at T0 + i + 1 s
    growing = make_event(5, seconds=0, last_seconds=100)  # began early, still seen later
    await store.ingest_events(old + [growing])
    assert await store.delete_events_before(T0 + dt.timedelta(seconds=3)) == 2  # events 0 and 1
    assert await ids(store) == newest_first(old[2:] + [growing])
    assert await store.delete_events_before(T0 + dt.timedelta(seconds=3)) == 0
    assert await store.delete_events_before(T0 + dt.timedelta(hours=1)) == 4
    assert await ids(store) == []
    assert await ids(store, EventFilter(feed="c2")) == []
    # A deleted event sent again is a new event with a new seq (retention forgets the id).
    assert await store.ingest_events([old[0]]) == IngestResult(inserted=1, updated=0, unchanged=0)
    assert [s.seq for s in await store.events_since(0, ALL, 10)] == [7]


# -- persistence --------------------------------------------------------------------------------------------------------


async def test_events_and_the_sequence_survive_a_restart(store_url, store) -> None:
    batch = [make_event(i) for i in range(30)]
    await store.ingest_events(batch)
    await store.ingest_events([make_event(7, count=3)])
    before = await store.events_since(0, ALL, 100)
    await store.close()

    again = await open_store(store_url)
    try:
        assert await again.events_since(0, ALL, 100) == before
        assert await again.latest_event_seq() == 31
        assert await again.ingest_events(batch) == IngestResult(inserted=0, updated=0, unchanged=30)
        assert await again.ingest_events([make_event(99)]) == IngestResult(inserted=1, updated=0, unchanged=0)
        assert (await again.events_since(31, ALL, 10))[0].seq == 32
    finally:
        await again.close()


async def test_two_stores_on_one_database_share_the_events(store_url, store) -> None:
    other = await open_store(store_url)
    try:
        batch = [make_event(i) for i in range(40)]
        first, second = await asyncio.gather(store.ingest_events(batch), other.ingest_events(batch))
        assert first.inserted + second.inserted == 40
        assert first.unchanged + second.unchanged == 40
        assert [s.seq for s in await other.events_since(0, ALL, 100)] == list(range(1, 41))
    finally:
        await other.close()


# -- the pure part --------------------------------------------------------------------------------------------------------


def test_event_row_reads_the_filter_columns() -> None:
    event = make_event(3, count=4, feeds=("c2", "c2", "malware"), domains=("a.example",))
    row = event_row(event)
    assert (row.id, row.count, row.namespace, row.pod, row.pod_aggr, row.host) == (
        f"{3:032x}", 4, "shop", "web-7d4b9c-3", "web-7d4b9c-*", "node-1")
    assert row.time == row.first_seen == (T0 + dt.timedelta(seconds=3)).timestamp()
    assert row.last_seen == row.time + 4
    assert row.feeds == {"c2", "malware"} and row.domains == {"a.example"}
    bare = event_row({"id": "x", "time": "2026-11-27T20:00:00+01:00"})
    assert (bare.count, bare.first_seen, bare.last_seen, bare.namespace) == (1, bare.time, bare.time, "")
    assert list(merge_batch([event_row(make_event(1)), event_row(make_event(2)),
                             event_row(make_event(1, count=2))]).values()) == [
        event_row(make_event(1, count=2)), event_row(make_event(2))]


# Values of every JSON kind for the fields the store reads, so that both readers meet the same odd events.
_ANY_JSON = st.one_of(st.none(), st.booleans(), st.integers(-3, 10**20), st.floats(allow_nan=False, allow_infinity=False),
                      st.text(max_size=8), st.lists(st.one_of(st.text(max_size=6), st.integers()), max_size=3))
_TIMES = st.one_of(st.sampled_from(["2026-11-27T20:00:00.000Z", "2026-11-27T20:00:01+01:00", "2026-11-27T20:00:00",
                                    "yesterday"]), _ANY_JSON)
_RECORDS = st.fixed_dictionaries({}, optional={
    "first_seen": _TIMES, "last_seen": _TIMES, "count": _ANY_JSON, "feeds": _ANY_JSON,
    "suspicious_domains": _ANY_JSON, "matches": _ANY_JSON})
_ODD_EVENTS = st.fixed_dictionaries({}, optional={
    "id": st.one_of(st.text(min_size=0, max_size=6), _ANY_JSON), "time": _TIMES, "type": _ANY_JSON,
    "host": _ANY_JSON, "source_namespace": _ANY_JSON, "source_name": _ANY_JSON, "source_name_aggr": _ANY_JSON,
    "record": _RECORDS, "severity": _ANY_JSON})
_VALID_TIMES = st.sampled_from(["2026-11-27T20:00:00.000Z", "2026-11-27T20:00:01.250Z", "2026-11-27T21:00:00+01:00"])
_TEXTS = st.one_of(st.text(max_size=8), _ANY_JSON)
_GOOD_EVENTS = st.fixed_dictionaries({"id": st.text(min_size=1, max_size=6), "time": _VALID_TIMES}, optional={
    "type": _TEXTS, "host": _TEXTS, "source_namespace": _TEXTS, "source_name": _TEXTS, "source_name_aggr": _TEXTS,
    "record": st.fixed_dictionaries({}, optional={
        "first_seen": _VALID_TIMES, "last_seen": _VALID_TIMES, "count": st.integers(0, 10**20),
        "feeds": st.lists(_TEXTS, max_size=3), "suspicious_domains": st.lists(_TEXTS, max_size=3),
        "matches": _ANY_JSON})})
_EVENTS = st.one_of(_GOOD_EVENTS, _ODD_EVENTS)


def _row_or_refusal(read, *args):
    try:
        return read(*args)
    except BadEvent:
        return "refused"


@settings(max_examples=400, deadline=None)
@given(_EVENTS)
def test_json_event_row_reads_what_event_row_reads(event: dict) -> None:
    # The ingest reads agents' JSON with msgspec, field by field; event_row reads a parsed dict. Same rows, same
    # refusals, whatever the fields hold.
    text = json.dumps(event)
    assert _row_or_refusal(json_event_row, text) == _row_or_refusal(event_row, json.loads(text), text)


@pytest.mark.parametrize("text, says", [
    ("[1, 2]", "a JSON list, not an object"),
    ('"an event"', "a JSON str, not an object"),
    ("42", "a JSON number, not an object"),
    ('{"id": "x", "time": "2026-11-27T20:00:00Z"', "not JSON"),
    ('{"id": "x", "time": "2026-11-27T20:00:00Z", "severity": NaN}', "not JSON"),
    ('{"id": "x", "time": "2026-11-27T20:00:00Z", "q": "\\ud800"}', "not JSON"),
    ('{"id": "x", "time": "2026-11-27T20:00:00Z", "record": [1]}', "not an event"),
])
def test_json_event_row_refuses_what_is_not_an_event(text: str, says: str) -> None:
    with pytest.raises(BadEvent, match=says):
        json_event_row(text)


async def test_ingest_json_stores_each_text_as_it_came_and_checks_its_id(store) -> None:
    texts = [json.dumps(make_event(i), indent=1) for i in range(3)]
    ids = [f"{i:032x}" for i in range(3)]
    assert await store.ingest_json(texts, ids=ids) == IngestResult(inserted=3, updated=0, unchanged=0)
    assert [item.body for item in await store.events_since(0, ALL, 10)] == texts
    with pytest.raises(BadEvent, match=r"event 1: Event.id 'other' differs from the id in its JSON"):
        await store.ingest_json([json.dumps(make_event(5)), json.dumps(make_event(6))], ids=[f"{5:032x}", "other"])
    with pytest.raises(BadEvent, match=r"event 0 \(id 'x'\): not JSON"):
        await store.ingest_json(["{"], ids=["x"])
    assert await store.latest_event_seq() == 3


async def test_the_caller_can_keep_changing_its_dicts(store) -> None:
    event = make_event(1)
    await store.ingest_events([event])
    kept = copy.deepcopy(event)
    event["record"]["count"] = 99
    [stored] = await store.events_since(0, ALL, 1)
    assert stored.event == kept


async def test_twenty_thousand_events_in_large_batches(store) -> None:
    # Batches far larger than one id lookup (500): every chunk is consulted. Speed is for the bench.
    events = [make_event(i, seconds=i / 10, namespace=f"ns{i % 7}", feeds=(f"feed{i % 3}",)) for i in range(20_000)]
    for start in range(0, 20_000, 5000):
        assert (await store.ingest_events(events[start:start + 5000])).inserted == 5000
    # Only new rows, several statements each: SQLite numbers them itself; every number once, none skipped.
    seqs = []
    while len(seqs) < 20_000:
        seqs += [item.seq for item in await store.events_since(seqs[-1] if seqs else 0, ALL, MAX_PAGE_SIZE)]
    assert sorted(seqs) == list(range(1, 20_001))
    again = events[5000:10_000] + [make_event(i, seconds=i / 10, namespace=f"ns{i % 7}", feeds=(f"feed{i % 3}",),
                                              count=2) for i in range(9990, 10_010)]
    assert await store.ingest_events(again) == IngestResult(inserted=0, updated=20, unchanged=5000)
    assert await store.latest_event_seq() == 20_020
    where = EventFilter(namespace="ns3", feed="feed1")
    expected = [f"{i:032x}" for i in range(19_999, -1, -1) if i % 7 == 3 and i % 3 == 1]
    assert await ids(store, where, page_size=MAX_PAGE_SIZE) == expected
    # Events 0..9999 were last seen before T0 + 1001 s, except the ten grown ones (seen a second longer).
    assert await store.delete_events_before(T0 + dt.timedelta(seconds=1001)) == 9990


async def _with_columns_of_migration_6(store, *, add: bool) -> None:
    columns = (("excepted_by", "TEXT NOT NULL DEFAULT ''"), ("dismissed_by", "TEXT"),
               ("dismissed_at", "DOUBLE PRECISION"))

    def alter(conn) -> None:
        for column, kind in columns:
            conn.execute(f"ALTER TABLE events ADD COLUMN {column} {kind}" if add
                         else f"ALTER TABLE events DROP COLUMN {column}")
        conn.commit()

    await store._call(alter)


async def test_a_database_of_schema_4_with_events_is_migrated_and_keeps_working(store_url, monkeypatch) -> None:
    """Migration 5 (on SQLite: seq as the rowid, side tables WITHOUT ROWID) keeps every event, its seq, its
    filters, growth and retention; on PostgreSQL it only records its number."""
    from collector.store import sql as store_sql
    from collector.store.schema import MIGRATIONS

    old = [make_event(number, namespace=("a", "b")[number % 2], feeds=(("c2",), ("c2", "dga"))[number % 3 == 0],
                      domains=(f"evil{number % 4}.example",)) for number in range(40)]
    with monkeypatch.context() as schema_4:
        schema_4.setattr(store_sql, "MIGRATIONS", MIGRATIONS[:4])
        schema_4.setattr(store_sql, "LATEST_VERSION", 4)
        async with await open_store(store_url) as store:
            # This code writes migration 6's columns: they are there while it writes, and gone after.
            await _with_columns_of_migration_6(store, add=True)
            await store.ingest_events(old[:30])
            await store.ingest_events([make_event(5, namespace="b", count=3, feeds=("c2",),
                                                  domains=("evil1.example",))])  # grown: seq 31
            await store.ingest_events(old[30:])
            before = await store.events_since(0, ALL, MAX_PAGE_SIZE)
            assert len(before) == 40
            await _with_columns_of_migration_6(store, add=False)
    async with await open_store(store_url) as store:
        assert await store.events_since(0, ALL, MAX_PAGE_SIZE) == before
        assert await store.latest_event_seq() == 41
        events = {stored.event["id"]: stored.event for stored in before}
        for where in (ALL, EventFilter(feed="dga"), EventFilter(feed="c2", namespace="a"),
                      EventFilter(domain="evil1.example"), EventFilter(domain="evil2.example", namespace="b"),
                      EventFilter(namespace="b", pod="web-7d4b9c-1")):
            expected = [e for e in events.values()
                        if (where.feed is None or where.feed in e["record"]["feeds"])
                        and (where.domain is None or where.domain in e["record"]["suspicious_domains"])
                        and (where.namespace is None or where.namespace == e["source_namespace"])
                        and (where.pod is None or where.pod == e["source_name"])]
            assert await ids(store, where, page_size=7) == newest_first(expected), where
        # New events and growth go on after the migration, in seq order, the side tables following.
        moved = make_event(7, count=9, namespace="c", seconds=2000, feeds=("c2",), domains=("evil3.example",))
        result = await store.ingest_events([make_event(100), moved, make_event(8, count=2,
                                            namespace="a", feeds=("c2",), domains=("evil0.example",))])
        assert result == IngestResult(inserted=1, updated=2, unchanged=0)
        assert [s.seq for s in await store.events_since(41, ALL, 10)] == [42, 43, 44]
        assert await ids(store, EventFilter(namespace="c", domain="evil3.example")) == [f"{7:032x}"]
        assert f"{7:032x}" not in await ids(store, EventFilter(domain="evil3.example", namespace="b"))
        assert await ids(store, EventFilter(domain="evil0.example", namespace="a")) == newest_first(
            [e for e in [*events.values(), make_event(100)]
             if e["source_namespace"] == "a" and "evil0.example" in e["record"]["suspicious_domains"]])
        # Retention still removes events with their side rows.
        assert await store.delete_events_before(T0 + dt.timedelta(hours=10)) == 41
        assert await ids(store) == [] and await ids(store, EventFilter(feed="c2")) == []
