"""The Events service (List, Watch) on a real grpc.aio server on 127.0.0.1, over the store on SQLite and on a
real PostgreSQL server, with a grpc.aio client in the same event loop."""

from __future__ import annotations

import contextlib
import asyncio
import datetime as dt
import json
import random
from dataclasses import dataclass

import grpc
import pytest

from collector.shell.eventbell import EventBell
from collector.shell.grpc_events import DEFAULT_PAGE_SIZE, EventsSettings, add_events_service
from collector.store.eventqueries import MAX_PAGE_SIZE
from dnswatch.eventfilter import EventFilter
from dnswatch.pbconvert.events import (BadResumeToken, decode_resume_token, decompressed_events, encode_resume_token,
                                      event_from_pb, filter_from_pb, filter_to_pb)
from dnswatch_pb.v1 import events_pb2, events_pb2_grpc
from tests.collector.eventdata import T0, event, newest_first

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

# Short waits, so that the tests see polls and bookmarks without sleeping long.
QUICK = EventsSettings(poll_seconds=0.05, bookmark_seconds=0.3, watch_batch=7)


@dataclass
class Served:
    stub: events_pb2_grpc.EventsStub
    store: object
    bell: EventBell
    servicer: object


@pytest.fixture
def settings() -> EventsSettings:
    return QUICK


@pytest.fixture
async def served(store, settings):
    bell = EventBell()
    server = grpc.aio.server()
    servicer = add_events_service(server, store, bell, settings)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Served(events_pb2_grpc.EventsStub(channel), store, bell, servicer)
    finally:
        bell.close()
        await channel.close()
        await server.stop(None)


async def list_ids(stub, where: events_pb2.EventFilter | None = None, page_size: int = 0) -> list[str]:
    """Every matching id through List, following the pages."""
    found, token = [], ""
    while True:
        response = await stub.List(events_pb2.ListEventsRequest(filter=where, page_size=page_size,
                                                                page_token=token), timeout=10)
        found += [message.id for message in response.events]
        token = response.next_page_token
        if not token:
            return found


def ts(seconds: float):
    from google.protobuf import timestamp_pb2

    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(T0 + dt.timedelta(seconds=seconds))
    return stamp


# -- conversions ---------------------------------------------------------------------------------------------


async def test_filter_and_token_conversions_round_trip() -> None:
    where = EventFilter(namespace="shop", pod="web-*", feed="c2", domain="evil.example", type="t", host="node-1",
                        since=T0, until=T0 + dt.timedelta(minutes=5, microseconds=123000))
    assert filter_from_pb(filter_to_pb(where)) == where
    assert filter_from_pb(events_pb2.EventFilter()) == EventFilter()
    for seq in (0, 1, 2**62):
        assert decode_resume_token(encode_resume_token(seq)) == seq
    for bad in ("", "x", "dzE6LTE", encode_resume_token(5)[:-2] + "!!", "page-token"):
        with pytest.raises(BadResumeToken):
            decode_resume_token(bad)


# -- List ----------------------------------------------------------------------------------------------------


async def test_list_every_filter_alone_and_together(served) -> None:
    events = [
        event(0, namespace="shop", pod="web-a-1", feeds=("c2",), domains=("evil.example",), host="node-1"),
        event(1, namespace="shop", pod="web-a-2", feeds=("c2", "malware"), domains=("bad.example",),
              host="node-2"),
        event(2, namespace="bank", pod="api-b-1", feeds=("malware",), domains=("evil.example", "x.bad.example"),
              host="node-1"),
        event(3, namespace="bank", pod="api-b-1", feeds=("phish",), domains=("phish.example",), host="node-2",
              type_="other_type"),
        event(4, namespace="ops", pod="db-c-1", feeds=("c2",), domains=("evil.example",), host="node-1"),
    ]
    await served.store.ingest_events(events)
    idx = lambda *numbers: [f"{n:032x}" for n in numbers]  # noqa: E731
    F = events_pb2.EventFilter
    cases = {
        "all": (F(), idx(4, 3, 2, 1, 0)),
        "namespace": (F(namespace="shop"), idx(1, 0)),
        "namespace, none": (F(namespace="nowhere"), []),
        "pod": (F(pod="api-b-1"), idx(3, 2)),
        "aggregated pod": (F(pod="web-a-*"), idx(1, 0)),
        "feed": (F(feed="c2"), idx(4, 1, 0)),
        "domain": (F(domain="evil.example"), idx(4, 2, 0)),
        "domain, canonicalized": (F(domain="EVIL.Example."), idx(4, 2, 0)),
        "domain is not a suffix match": (F(domain="bad.example"), idx(1)),
        "type": (F(type="other_type"), idx(3)),
        "host": (F(host="node-2"), idx(3, 1)),
        "since": (F(since=ts(2)), idx(4, 3, 2)),
        "until": (F(until=ts(2)), idx(1, 0)),
        "since and until": (F(since=ts(1), until=ts(4)), idx(3, 2, 1)),
        "namespace and feed": (F(namespace="shop", feed="malware"), idx(1)),
        "namespace and feed, none": (F(namespace="ops", feed="malware"), []),
        "feed and domain": (F(feed="c2", domain="evil.example"), idx(4, 0)),
        "everything": (F(namespace="bank", pod="api-b-1", feed="malware", domain="x.bad.example",
                         type="gtf_suspicious_dns_query", host="node-1", since=ts(0), until=ts(5)), idx(2)),
    }
    for what, (where, expected) in cases.items():
        for page_size in (0, 1, 2):
            assert await list_ids(served.stub, where, page_size) == expected, (what, page_size)


async def test_list_sends_each_event_exactly_as_stored(served) -> None:
    events = [event(i) for i in range(3)]
    await served.store.ingest_events(events)
    response = await served.stub.List(events_pb2.ListEventsRequest(), timeout=10)
    by_id = {e["id"]: e for e in events}
    assert [m.id for m in response.events] == newest_first(events)
    for message in response.events:
        assert event_from_pb(message) == by_id[message.id]
        assert json.loads(message.json) == by_id[message.id]
        assert "cödé" in message.json  # UTF-8 as stored, not \\u escapes


async def test_pages_are_newest_first_with_no_gap_or_duplicate_and_ties_broken_by_id(served) -> None:
    # Three events share each second: the id orders them.
    events = [event(i, seconds=i // 3) for i in range(50)]
    random.Random(4).shuffle(events)
    await served.store.ingest_events(events)
    expected = newest_first(events)
    for page_size in (1, 7, 49, 50, 51):
        pages, token = [], ""
        while True:
            response = await served.stub.List(events_pb2.ListEventsRequest(page_size=page_size, page_token=token),
                                              timeout=10)
            pages.append([m.id for m in response.events])
            token = response.next_page_token
            if not token:
                break
        assert [i for page in pages for i in page] == expected
        assert all(len(page) == page_size for page in pages[:-1]) and 0 < len(pages[-1]) <= page_size


async def test_page_size_defaults_to_100_and_is_capped(served) -> None:
    await served.store.ingest_events([event(i) for i in range(MAX_PAGE_SIZE + 1)])
    first = await served.stub.List(events_pb2.ListEventsRequest(), timeout=10)
    assert len(first.events) == DEFAULT_PAGE_SIZE and first.next_page_token
    big = await served.stub.List(events_pb2.ListEventsRequest(page_size=10**6), timeout=10)
    assert len(big.events) == MAX_PAGE_SIZE and big.next_page_token
    rest = await served.stub.List(events_pb2.ListEventsRequest(page_size=10**6, page_token=big.next_page_token),
                                  timeout=10)
    assert [m.id for m in rest.events] == [f"{0:032x}"] and rest.next_page_token == ""


@pytest.mark.parametrize("settings", [EventsSettings(default_page_size=3, max_page_size=5)])
async def test_page_size_settings(served) -> None:
    await served.store.ingest_events([event(i) for i in range(10)])
    assert len((await served.stub.List(events_pb2.ListEventsRequest(), timeout=10)).events) == 3
    assert len((await served.stub.List(events_pb2.ListEventsRequest(page_size=9), timeout=10)).events) == 5


async def test_a_bad_page_token_is_invalid_argument(served) -> None:
    await served.store.ingest_events([event(i) for i in range(3)])
    for token in ("nonsense", encode_resume_token(3), "eyJ4IjoxfQ"):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await served.stub.List(events_pb2.ListEventsRequest(page_token=token), timeout=10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "page_token" in caught.value.details() and "not a page token" in caught.value.details()


# -- Watch ---------------------------------------------------------------------------------------------------


class Watcher:
    """One Watch call: its messages as (event dict or None, token)."""

    def __init__(self, stub, where: events_pb2.EventFilter | None = None, token: str = "") -> None:
        self.call = stub.Watch(events_pb2.WatchEventsRequest(filter=where, resume_token=token))
        self.token = token

    async def next(self, timeout: float = 10.0) -> tuple[dict | None, str]:
        message = await asyncio.wait_for(self.call.read(), timeout)
        assert message is not grpc.aio.EOF, "the watch ended"
        self.token = message.resume_token
        return (event_from_pb(message.event) if message.HasField("event") else None), message.resume_token

    async def events(self, count: int, timeout: float = 10.0) -> list[dict]:
        """The next `count` events, skipping bookmarks."""
        found = []
        while len(found) < count:
            got, _ = await self.next(timeout)
            if got is not None:
                found.append(got)
        return found

    def cancel(self) -> None:
        self.call.cancel()


async def test_watch_from_now_sends_a_bookmark_then_only_new_events(served) -> None:
    await served.store.ingest_events([event(i) for i in range(5)])
    watcher = Watcher(served.stub)
    first, token = await watcher.next()
    assert first is None and decode_resume_token(token) == 5
    later = [event(10), event(11, count=3)]
    await served.store.ingest_events(later)
    got = await watcher.events(2)
    assert got == later
    assert decode_resume_token(watcher.token) == 7
    watcher.cancel()


async def test_watch_resumes_after_its_token_with_re_emissions_and_without_repeats(served) -> None:
    await served.store.ingest_events([event(i) for i in range(4)])  # seqs 1..4
    watcher = Watcher(served.stub, token=encode_resume_token(0))
    await watcher.next()  # the bookmark where it starts
    got = await watcher.events(2)
    assert [e["id"] for e in got] == [f"{0:032x}", f"{1:032x}"]
    token = watcher.token
    watcher.cancel()
    # Meanwhile: event 1 grows (already seen: comes again), event 2 grows (not seen yet: comes once, grown),
    # an equal count changes nothing, and a new one arrives.
    await served.store.ingest_events([event(1, count=5), event(2, count=2), event(3, count=1), event(9)])
    resumed = Watcher(served.stub, token=token)
    await resumed.next()
    got = await resumed.events(4)
    # Event 3 (stored before the cut, not yet sent) first; then the batch, in the store's order.
    assert (got[0]["id"][-1], got[0]["record"]["count"]) == ("3", 1)
    assert sorted((e["id"][-1], e["record"]["count"]) for e in got[1:]) == [("1", 5), ("2", 2), ("9", 1)]
    resumed.cancel()


async def test_a_filtered_watch_gets_only_its_events_and_bookmarks_move_past_the_rest(served) -> None:
    watcher = Watcher(served.stub, events_pb2.EventFilter(namespace="bank", feed="malware"))
    await watcher.next()
    await served.store.ingest_events([event(i, namespace="shop") for i in range(20)])
    await served.store.ingest_events([event(30, namespace="bank", feeds=("malware",)),
                                      event(31, namespace="bank", feeds=("c2",))])
    got = await watcher.events(1)
    assert got[0]["id"] == f"{30:032x}"
    # Quiet now: a bookmark comes, past every event stored, matching or not.
    while True:
        got, token = await watcher.next()
        assert got is None
        if decode_resume_token(token) == 22:
            break
    watcher.cancel()


@pytest.mark.parametrize("settings", [EventsSettings(poll_seconds=3600, bookmark_seconds=3600)])
async def test_the_bell_wakes_a_watch_at_once(served, store_url) -> None:
    from collector.store import open_store

    watcher = Watcher(served.stub)
    await watcher.next()
    tail = served.servicer._tail
    for _ in range(1000):  # until the tail's first read: from then on it polls only every hour
        if tail.holds(0):
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("the tail never read the store")
    # Another replica's write: the store hands nothing over, so only the bell can wake the tail in time.
    other = await open_store(store_url)
    try:
        await other.ingest_events([event(1)])
    finally:
        await other.close()
    served.bell.ring()
    assert (await watcher.events(1, timeout=20))[0]["id"] == f"{1:032x}"
    watcher.cancel()


async def test_a_write_that_rings_no_bell_is_found_by_polling(served, store_url) -> None:
    from collector.store import open_store

    watcher = Watcher(served.stub)
    await watcher.next()
    other = await open_store(store_url)  # another replica writing to the same database
    try:
        await other.ingest_events([event(1)])
    finally:
        await other.close()
    assert (await watcher.events(1))[0]["id"] == f"{1:032x}"
    watcher.cancel()


async def test_a_bad_resume_token_is_invalid_argument(served) -> None:
    for token in ("nonsense", "eyJ4IjoxfQ"):
        call = served.stub.Watch(events_pb2.WatchEventsRequest(resume_token=token))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call.read()
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "resume_token" in caught.value.details()


@pytest.mark.parametrize(("max_events", "compression", "said"), [
    (0, events_pb2.WATCH_COMPRESSION_ZSTD, "set max_events too"),
    (100, 7, "is not a WatchCompression"),
])
async def test_compression_the_collector_cannot_give_is_invalid_argument(served, max_events, compression,
                                                                         said) -> None:
    call = served.stub.Watch(events_pb2.WatchEventsRequest(max_events=max_events, compression=compression))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call.read()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert said in caught.value.details()


async def test_closing_the_bell_ends_watches_with_unavailable(served) -> None:
    watcher = Watcher(served.stub)
    await watcher.next()
    served.bell.close()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        while True:
            await watcher.next()
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "resume" in caught.value.details()


async def test_a_watch_cut_again_and_again_misses_nothing_and_repeats_nothing(served) -> None:
    """A producer ingests new events and re-emissions with higher counts in small batches while the watcher
    is cut every few messages and resumes with its last token."""
    rng = random.Random(7)
    counts: dict[int, int] = {}
    done = asyncio.Event()

    async def produce() -> None:
        for round_ in range(40):
            batch = []
            for _ in range(rng.randint(1, 6)):
                if counts and rng.random() < 0.4:
                    number = rng.choice(sorted(counts))
                    counts[number] += rng.randint(1, 3)
                else:
                    number = len(counts)
                    counts[number] = 1
                batch.append(event(number, count=counts[number]))
            await served.store.ingest_events(batch)
            if round_ % 3 == 0:
                served.bell.ring()
            await asyncio.sleep(rng.random() * 0.01)
        done.set()

    producer = asyncio.create_task(produce())
    received: list[tuple[int, str, int]] = []  # (seq, id, count)
    token = encode_resume_token(0)
    try:
        while True:
            watcher = Watcher(served.stub, token=token)
            for _ in range(rng.randint(1, 9)):
                got, token = await watcher.next()
                if got is not None:
                    received.append((decode_resume_token(token), got["id"], got["record"]["count"]))
            watcher.cancel()
            if done.is_set() and decode_resume_token(token) >= await served.store.latest_event_seq():
                break
    finally:
        await producer
    seqs = [seq for seq, _, _ in received]
    assert seqs == sorted(set(seqs)), "a repeat or an out-of-order event"
    latest: dict[str, int] = {}
    for _, event_id, count in received:
        assert count > latest.get(event_id, 0), f"{event_id} did not grow"
        latest[event_id] = count
    assert latest == {f"{n:032x}": c for n, c in counts.items()}, "an event or its last emission was missed"
    # The rows as stored now were all received, under their own sequence numbers.
    stored = await served.store.events_since(0, EventFilter(), MAX_PAGE_SIZE)
    assert {s.seq for s in stored} <= set(seqs)


async def test_pod_filter_merges_name_and_aggregated_name_pages_without_repeats(served) -> None:
    # A pod without an owner has its own name as aggregated name: both indexes find it, it comes once.
    events = [event(i, pod="static-pod", seconds=i) for i in range(0, 30, 3)]
    events += [event(i, pod=f"web-x-{i % 2}", seconds=i) for i in range(1, 30, 3)]
    for e in events:
        if e["source_name"] == "static-pod":
            e["source_name_aggr"] = "static-pod"
    events += [event(i, pod="other-y-1", seconds=i) for i in range(2, 30, 3)]
    await served.store.ingest_events(events)
    F = events_pb2.EventFilter
    static = newest_first([e for e in events if e["source_name"] == "static-pod"])
    web = newest_first([e for e in events if e["source_name"].startswith("web-x-")])
    for page_size in (1, 3, 100):
        assert await list_ids(served.stub, F(pod="static-pod"), page_size) == static
        assert await list_ids(served.stub, F(pod="web-x-*"), page_size) == web
        assert await list_ids(served.stub, F(pod="web-x-1", feed="c2"), page_size) == newest_first(
            [e for e in events if e["source_name"] == "web-x-1"])
        assert await list_ids(served.stub, F(pod="web-x-*", namespace="elsewhere"), page_size) == []


async def test_namespace_with_feed_or_domain_survives_re_emission(served) -> None:
    await served.store.ingest_events([event(1, namespace="a", feeds=("c2",), domains=("x.example",)),
                                      event(2, namespace="b", feeds=("c2",), domains=("x.example",))])
    await served.store.ingest_events([event(1, namespace="a", feeds=("c2", "dga"), domains=("x.example",),
                                            count=9)])
    F = events_pb2.EventFilter
    assert await list_ids(served.stub, F(namespace="a", feed="dga")) == [f"{1:032x}"]
    assert await list_ids(served.stub, F(namespace="a", feed="c2", domain="x.example")) == [f"{1:032x}"]
    assert await list_ids(served.stub, F(namespace="b", domain="x.example")) == [f"{2:032x}"]
    assert await list_ids(served.stub, F(namespace="b", feed="dga")) == []


async def test_a_database_from_before_the_side_table_namespaces_is_filled_in(tmp_path) -> None:
    """Migration 3 copies each event's namespace into the side tables of a database made by schema 2."""
    import sqlite3
    import time as time_

    from collector.store import open_store
    from collector.store.eventrows import event_row
    from collector.store.schema import MIGRATIONS, SCHEMA_VERSION_TABLE

    path = tmp_path / "v2.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(SCHEMA_VERSION_TABLE)
    for migration in MIGRATIONS[:2]:
        for statement in migration.statements:
            conn.execute(statement.format(bytes="BLOB"))
        conn.execute("INSERT INTO schema_version VALUES (?, ?, ?)", (migration.version, "", time_.time()))
    events = [event(i, namespace=("a", "b")[i % 2], feeds=("c2", "dga")[i % 3 == 0:][:1]) for i in range(12)]
    for seq, e in enumerate(events, 1):
        r = event_row(e)
        conn.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (r.id, seq, r.time, r.first_seen, r.last_seen, r.count, r.type, r.host, r.namespace, r.pod,
                      r.pod_aggr, r.body, 0.0))
        conn.executemany("INSERT INTO event_feeds VALUES (?, ?, ?)", [(r.id, f, r.time) for f in r.feeds])
        conn.executemany("INSERT INTO event_domains VALUES (?, ?, ?)", [(r.id, d, r.time) for d in r.domains])
    conn.execute("UPDATE event_sequence SET last_seq = ?", (len(events),))
    conn.commit()
    conn.close()
    store = await open_store(f"sqlite:///{path}")
    try:
        for namespace in ("a", "b"):
            for feed in ("c2", "dga"):
                page, _ = await store.list_events(EventFilter(namespace=namespace, feed=feed), 100)
                assert [s.event["id"] for s in page] == newest_first(
                    [e for e in events if e["source_namespace"] == namespace and feed in e["record"]["feeds"]])
    finally:
        await store.close()


# -- many watches, pages, the shared tail ---------------------------------------------------------------------


class PageWatcher:
    """One Watch call asking up to `max_events` per response (0: one each), compressed or not: (event dict,
    token seq) for each event received, in order; the token is the response's (after its last event)."""

    def __init__(self, stub, where: events_pb2.EventFilter | None = None, token: str = "",
                 max_events: int = 1000, compressed: bool = False) -> None:
        compression = events_pb2.WATCH_COMPRESSION_ZSTD if compressed else events_pb2.WATCH_COMPRESSION_NONE
        self.call = stub.Watch(events_pb2.WatchEventsRequest(filter=where, resume_token=token,
                                                             max_events=max_events, compression=compression))
        self.max_events = max_events
        self.compressed = compressed
        self.received: list[tuple[dict, int]] = []
        self.reached = decode_resume_token(token) if token else -1
        self.sizes: list[int] = []
        self.compressed_bytes: list[int] = []
        """The size of each response's compressed_events, when compressed."""

    async def until(self, seq: int, timeout: float = 30.0) -> None:
        """Read until the resume point is at `seq` or past it."""
        async def read() -> None:
            while self.reached < seq:
                message = await self.call.read()
                assert message is not grpc.aio.EOF, "the watch ended"
                if self.compressed:
                    assert not message.HasField("event") and not message.events
                    self.compressed_bytes.append(len(message.compressed_events))
                    events = decompressed_events(message)
                    assert len(events) <= self.max_events
                elif self.max_events:
                    assert not message.HasField("event") and not message.compressed_events
                    assert len(message.events) <= self.max_events
                    events = list(message.events)
                else:
                    assert not message.events
                    events = [message.event] if message.HasField("event") else []
                self.sizes.append(len(events))
                reached = decode_resume_token(message.resume_token)
                assert reached >= self.reached, "the resume point went back"
                self.reached = reached
                self.received += [(event_from_pb(e), reached) for e in events]

        await asyncio.wait_for(read(), timeout)

    def cancel(self) -> None:
        self.call.cancel()


def check_once_in_order(received: list[dict], expected: dict[str, int]) -> None:
    """Every event of `expected` (id -> last count) came, its emissions each once with a growing count,
    and nothing else came."""
    counts: dict[str, int] = {}
    for got in received:
        assert got["id"] in expected, f"{got['id']} does not match the filter"
        assert got["record"]["count"] > counts.get(got["id"], 0), f"{got['id']}: an emission came twice"
        counts[got["id"]] = got["record"]["count"]
    assert counts == expected, "an event or its last emission was missed"


FILTERS = [
    None,
    events_pb2.EventFilter(namespace="bank"),
    events_pb2.EventFilter(pod="web-7d4b9c-3"),
    events_pb2.EventFilter(pod="web-7d4b9c-*", host="node-1"),
    events_pb2.EventFilter(feed="malware"),
    events_pb2.EventFilter(domain="EVIL2.example."),
    events_pb2.EventFilter(namespace="shop", feed="c2", since=ts(100)),
]


PAGINGS = [(1000, False), (3, False), (0, False), (1000, True)]  # (max_events, compressed)


@pytest.mark.parametrize("settings", [EventsSettings(poll_seconds=0.05, bookmark_seconds=0.3, watch_batch=7,
                                                     tail_events=40)])
async def test_many_watches_with_concurrent_ingest_get_every_event_once_in_order(served, store_url) -> None:
    """Three writers at once, two through this store (their rows reach the watches without a read back) and
    one through another store on the same database (read by polling), new events and re-emissions; watches
    of every kind: filtered or not, pages large and small, compressed or not, or one event each, from the start
    or from later, and one that waits until everything is written and catches up from the store (the tail
    holds 40), in small compressed pages."""
    from collector.store import open_store

    rng = random.Random(11)
    made: dict[int, dict] = {}
    other = await open_store(store_url)

    def next_batch() -> list[dict]:
        batch = []
        for _ in range(rng.randint(1, 15)):
            if made and rng.random() < 0.3:
                number = rng.choice(sorted(made))
                before = made[number]
                grown = event(number, count=before["record"]["count"] + rng.randint(1, 3),
                              namespace=before["source_namespace"], feeds=tuple(before["record"]["feeds"]),
                              seconds=number % 300)
            else:
                number = len(made) + 1000 * rng.randint(0, 2)
                while number in made:
                    number += 1
                grown = event(number, namespace=rng.choice(["shop", "bank"]),
                              feeds=rng.choice([("c2",), ("malware",), ("c2", "malware")]), seconds=number % 300)
            made[number] = grown
            batch.append(grown)
        return batch

    async def produce(store, rounds: int, ring: bool) -> None:
        for _ in range(rounds):
            await store.ingest_events(next_batch())
            if ring:
                served.bell.ring()
            await asyncio.sleep(rng.random() * 0.01)

    try:
        watchers = [PageWatcher(served.stub, where, token=encode_resume_token(0), max_events=size,
                                compressed=compressed)
                    for where in FILTERS for size, compressed in PAGINGS]
        await asyncio.gather(*(watcher.until(0) for watcher in watchers))
        writers = [asyncio.create_task(produce(served.store, 25, True)),
                   asyncio.create_task(produce(served.store, 25, False)),
                   asyncio.create_task(produce(other, 15, False))]
        await asyncio.sleep(0.05)
        late = [PageWatcher(served.stub, where, token=encode_resume_token(0)) for where in FILTERS]  # joining
        await asyncio.gather(*writers)
        latest = await served.store.latest_event_seq()
        slow = [PageWatcher(served.stub, where, token=encode_resume_token(0), max_events=5, compressed=True)
                for where in FILTERS]
        everyone = watchers + late + slow
        await asyncio.gather(*(watcher.until(latest) for watcher in everyone))
    finally:
        await other.close()
    wheres = [where for where in FILTERS for _ in PAGINGS] + FILTERS + FILTERS
    for watcher, where in zip(everyone, wheres, strict=True):
        matching = await served.store.events_since(0, filter_from_pb(where or events_pb2.EventFilter()),
                                                   MAX_PAGE_SIZE)
        expected = {stored.event["id"]: stored.event["record"]["count"] for stored in matching}
        assert expected or where is not None
        check_once_in_order([got for got, _ in watcher.received], expected)
        watcher.cancel()
    assert max(max(w.sizes) for w in watchers[::len(PAGINGS)]) > 3  # pages of several events were sent


@pytest.mark.parametrize("settings", [EventsSettings(poll_seconds=0.05, bookmark_seconds=0.3, watch_batch=7,
                                                     max_response_bytes=3000)])
async def test_a_response_stays_within_the_byte_budget_but_holds_at_least_one_event(served) -> None:
    watcher = PageWatcher(served.stub, token=encode_resume_token(0), max_events=1000)
    big = event(1)
    big["source_labels"] = {"padding": "x" * 5000}  # larger than the budget alone
    await served.store.ingest_events([big] + [event(n) for n in range(2, 40)])
    await watcher.until(await served.store.latest_event_seq())
    check_once_in_order([got for got, _ in watcher.received], {f"{n:032x}": 1 for n in range(1, 40)})
    sizes = [size for size in watcher.sizes if size]
    assert sizes[0] == 1 and max(sizes) > 1  # the large one alone; the others a few to a response
    assert max(sizes) * 1200 < 3000 * 2
    watcher.cancel()


@pytest.mark.parametrize("settings", [EventsSettings(poll_seconds=0.05, bookmark_seconds=0.3,
                                                     max_compressed_bytes=10_000, max_shared_page_bytes=1 << 20)])
async def test_a_compressed_page_that_hardly_compresses_is_made_again_within_the_limit(served) -> None:
    watcher = PageWatcher(served.stub, token=encode_resume_token(0), max_events=1000, compressed=True)
    await served.store.ingest_events([event(1)])
    await watcher.until(1)  # the tail holds from here on: the next pages are its shared pages
    noise = random.Random(5)
    events = [event(n) for n in range(2, 30)]
    for one in events:  # 2 kB of hex that no compressor shrinks much below 1 kB
        one["source_labels"] = {"noise": noise.randbytes(1000).hex()}
    await served.store.ingest_events(events)
    await watcher.until(await served.store.latest_event_seq())
    check_once_in_order([got for got, _ in watcher.received], {f"{n:032x}": 1 for n in range(1, 30)})
    assert max(watcher.compressed_bytes) <= 10_000 and max(watcher.sizes) > 1  # several events to a page, each within the limit
    watcher.cancel()


async def test_a_watch_resumed_inside_the_tail_gets_no_superseded_emission(served) -> None:
    # A watch attached keeps the tail reading; the other resumes from before an event that grew since.
    keeper = PageWatcher(served.stub)
    await keeper.until(0)
    await served.store.ingest_events([event(1), event(2)])  # seqs 1, 2
    served.bell.ring()
    await keeper.until(2)
    await served.store.ingest_events([event(1, count=4)])  # seq 3: event 1's seq 1 is no longer a row
    served.bell.ring()
    await keeper.until(3)
    resumed = PageWatcher(served.stub, token=encode_resume_token(0))
    await resumed.until(3)
    assert [(got["id"][-1], got["record"]["count"]) for got, _ in resumed.received] == [("2", 1), ("1", 4)]
    keeper.cancel()
    resumed.cancel()


async def test_watch_filters_and_the_store_filters_agree(served) -> None:
    """The tail's test of a filter (on the columns, the side values from the JSON) and its column indexes
    select what the store's SQL selects, for random events and filters."""
    from collector.shell.eventtail import EventTail, TailSettings
    from collector.shell.grpc_events import _page, encode_watched_event

    rng = random.Random(5)
    # Watches woken at every commit: what they are given ends at the newest row at once.
    tail = EventTail(served.store, served.bell, encode_watched_event, _page, TailSettings(read_interval_seconds=0))
    async with tail.attached():
        while not tail.holds(0):
            await tail.wait(0)
        events = [event(n, namespace=rng.choice(["a", "b", "c"]), pod=rng.choice(["p-1", "p-2", "q-1"]),
                        feeds=tuple(rng.sample(["f1", "f2", "f3"], rng.randint(0, 2))),
                        domains=tuple(rng.sample(["x.example", "Y.example", "z.example"], rng.randint(0, 2))),
                        host=rng.choice(["n1", "n2"]), type_=rng.choice(["t1", "t2"]), seconds=rng.randint(0, 50))
                  for n in range(300)]
        for start in range(0, 300, 50):
            await served.store.ingest_events(events[start:start + 50])
        latest = await served.store.latest_event_seq()
        assert tail.head == latest  # handed over by the store, not read back
        for _ in range(200):
            where = EventFilter(
                namespace=rng.choice([None, "a", "b"]), pod=rng.choice([None, "p-1", "q-*", "q-1"]),
                feed=rng.choice([None, "f1", "f3"]), domain=rng.choice([None, "y.example", "x.example."]),
                type=rng.choice([None, "t1"]), host=rng.choice([None, "n2"]),
                since=rng.choice([None, T0 + dt.timedelta(seconds=rng.randint(0, 50))]),
                until=rng.choice([None, T0 + dt.timedelta(seconds=rng.randint(0, 50))]))
            stored = await served.store.events_since(0, where, MAX_PAGE_SIZE)
            encoded, seqs, reached = tail.after(0, where, limit=1000, max_bytes=1 << 30, with_seqs=True)
            sent = events_pb2.EventWatchResponse.FromString(b"".join(encoded)).events
            assert [(s.seq, json.loads(s.body)["id"]) for s in stored] == list(zip(seqs, (e.id for e in sent)))
            assert reached == latest


@pytest.mark.parametrize("max_held_bytes", [1 << 30, 100_000])
async def test_the_tail_keeps_what_a_watch_behind_still_needs_within_its_budget(served, max_held_bytes) -> None:
    from collector.shell.eventtail import EventTail, TailSettings
    from collector.shell.grpc_events import _page, encode_watched_event

    tail = EventTail(served.store, served.bell, encode_watched_event, _page,
                     TailSettings(window_events=40, max_held_bytes=max_held_bytes, read_interval_seconds=0))
    async with tail.attached() as behind, tail.attached() as ahead:
        while not tail.holds(0):
            await tail.wait(0)
        behind.cursor = ahead.cursor = tail.head
        for start in range(0, 400, 20):
            await served.store.ingest_events([event(n) for n in range(start, start + 20)])
            ahead.cursor = tail.head  # one watch keeps up, the other sends nothing
        assert tail.head == 400
        if max_held_bytes > 1 << 20:
            assert tail.holds(behind.cursor)  # all 400 kept for the watch behind
            encoded, _, reached = tail.after(behind.cursor, EventFilter(), limit=1000, max_bytes=1 << 30)
            assert len(encoded) == 400 and reached == 400
        else:
            assert not tail.holds(behind.cursor)  # it reads the store; what is held stays within the budget
            assert tail.holds(400 - 40) and tail._bytes <= max_held_bytes
        behind.cursor = tail.head
        await served.store.ingest_events([event(n) for n in range(400, 420)])
        assert not tail.holds(0) and tail.holds(420 - 40)  # nobody behind: back to the window


async def test_unfiltered_watches_at_different_places_meet_and_share_their_pages(served) -> None:
    from collector.shell.eventtail import EventTail, TailSettings
    from collector.shell.grpc_events import _page, encode_watched_event

    tail = EventTail(served.store, served.bell, encode_watched_event, _page, TailSettings(read_interval_seconds=0))
    async with tail.attached():
        while not tail.holds(0):
            await tail.wait(0)
        await served.store.ingest_events([event(n) for n in range(250)])
        everything = EventFilter()
        pages = {}
        for start in (0, 37, 99):  # three laggards
            cursor, made = start, []
            while cursor < 250:
                response, count, cursor = tail.page(cursor, everything, limit=100, max_bytes=1 << 30)
                made.append((response, count, cursor))
            pages[start] = made
        assert [(count, cursor) for _, count, cursor in pages[0]] == [(100, 100), (100, 200), (50, 250)]
        assert [(count, cursor) for _, count, cursor in pages[37]] == [(63, 100), (100, 200), (50, 250)]
        assert [(count, cursor) for _, count, cursor in pages[99]] == [(1, 100), (100, 200), (50, 250)]
        for later in (37, 99):  # from the first boundary on, the very same responses
            assert all(a is b for (a, _, _), (b, _, _) in zip(pages[0][1:], pages[later][1:]))


async def test_watches_woken_together_share_one_page_while_rows_arrive(served) -> None:
    """What the watches are given ends where they were woken: rows handed over meanwhile wait for the next
    wake-up, so every watch of one wake-up takes the very same page (a hundred watches each making their own,
    a little longer each time, was most of what they cost)."""
    from collector.shell.eventtail import EventTail, TailSettings
    from collector.shell.grpc_events import _page, encode_watched_event

    # Woken at most every 2 s, and no reads but the first: the rows come only from the store's hand-over.
    tail = EventTail(served.store, served.bell, encode_watched_event, _page,
                     TailSettings(read_interval_seconds=2, poll_seconds=600))
    async with tail.attached():
        while not tail.holds(0):
            await tail.wait(0)
        await served.store.ingest_events([event(n) for n in range(1, 11)])
        assert (tail.head, tail.shown) == (10, 0)
        await tail.wait(0)  # woken once the interval has passed
        first = tail.page(0, EventFilter(), limit=1000, max_bytes=1 << 30, compress=True)
        await served.store.ingest_events([event(n) for n in range(11, 21)])
        assert (tail.head, tail.shown) == (20, 10)
        again = tail.page(0, EventFilter(), limit=1000, max_bytes=1 << 30, compress=True)
        assert again is first and first[1:] == (10, 10)
        await tail.wait(10)
        assert tail.page(10, EventFilter(), limit=1000, max_bytes=1 << 30, compress=True)[1:] == (10, 20)


async def test_more_watches_are_woken_less_often(served) -> None:
    """Each wake-up costs every attached watch a response: past `watches_per_interval` watches, the interval
    grows by one read_interval_seconds per such number begun, up to max_read_interval_seconds."""
    from collector.shell.eventtail import EventTail, TailSettings
    from collector.shell.grpc_events import _page, encode_watched_event

    tail = EventTail(served.store, served.bell, encode_watched_event, _page,
                     TailSettings(read_interval_seconds=0.1, watches_per_interval=2, max_read_interval_seconds=0.35))
    intervals = []
    async with contextlib.AsyncExitStack() as watches:
        for _ in range(9):
            await watches.enter_async_context(tail.attached())
            intervals.append(round(tail.read_interval, 6))
    assert intervals == [0.1, 0.1, 0.2, 0.2, 0.3, 0.3, 0.35, 0.35, 0.35]
    assert tail.read_interval == 0.1  # none attached
