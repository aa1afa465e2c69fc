"""EventIngest.Send on a real grpc.aio server over the store, on SQLite and on a real PostgreSQL server; and
the store's group commit (concurrent ingest_events calls written together, each answered as if alone)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import grpc
import pytest

from collector.shell.grpc_ingest import EventBudget, IngestSettings, add_ingest_service
from dnswatch.eventfilter import EventFilter
from collector.store import IngestResult
from dnswatch_pb.v1 import events_pb2, events_pb2_grpc
from tests.collector.eventdata import event as make_event

pytestmark = pytest.mark.anyio

ALL = EventFilter()


def batch(batch_id: int, events: list[dict]) -> events_pb2.EventBatch:
    return events_pb2.EventBatch(batch_id=batch_id, node="node-1", events=[
        events_pb2.Event(id=event["id"], json=json.dumps(event)) for event in events])


class Ingest:
    """A grpc.aio server with the ingest service over `store`, on 127.0.0.1, and a channel to it."""

    def __init__(self, store, window: int = 16, max_events_held: int = IngestSettings.max_events_held) -> None:
        self.store = store
        self.settings = IngestSettings(window=window, max_events_held=max_events_held)
        self.rings = 0

    async def __aenter__(self) -> "Ingest":
        self.server = grpc.aio.server()
        self.servicer = add_ingest_service(self.server, self.store, on_stored=self._ring, settings=self.settings)
        port = self.server.add_insecure_port("127.0.0.1:0")
        await self.server.start()
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        self.stub = events_pb2_grpc.EventIngestStub(self.channel)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.channel.close()
        await self.server.stop(None)

    def _ring(self) -> None:
        self.rings += 1

    async def send(self, batches: list[events_pb2.EventBatch], on_ack=None) -> list[events_pb2.Ack]:
        """Send every batch at once (pipelined) and collect the acks until the server ends the stream."""
        async def requests() -> AsyncIterator[events_pb2.EventBatch]:
            for item in batches:
                yield item

        acks = []
        async for ack in self.stub.Send(requests(), timeout=30):
            if on_ack is not None:
                await on_ack(ack)
            acks.append(ack)
        return acks


async def stored(store) -> dict[str, dict]:
    """Every stored event by id."""
    found, token = {}, ""
    while True:
        page, token = await store.list_events(ALL, 1000, token)
        found.update((item.event["id"], item.event) for item in page)
        if not token:
            return found


async def test_batches_are_acknowledged_in_order_and_only_once_stored(store) -> None:
    events = [make_event(i) for i in range(600)]
    batches = [batch(100 + n, events[n * 30:(n + 1) * 30]) for n in range(20)]

    async def held_when_acked(ack: events_pb2.Ack) -> None:
        # An ack means a durable write: every event of that batch is in the store when the agent hears of it.
        n = ack.batch_id - 100
        have = await stored(store)
        assert all(event["id"] in have for event in events[n * 30:(n + 1) * 30])

    async with Ingest(store, window=4) as ingest:
        acks = await ingest.send(batches, on_ack=held_when_acked)
    assert [ack.batch_id for ack in acks] == [100 + n for n in range(20)]
    assert all((ack.inserted, ack.replaced) == (30, 0) for ack in acks)
    assert await stored(store) == {event["id"]: event for event in events}
    assert await store.latest_event_seq() == 600
    assert ingest.rings >= 1


async def test_a_resent_stream_is_stored_once(store) -> None:
    events = [make_event(i) for i in range(200)]
    batches = [batch(n + 1, events[n * 50:(n + 1) * 50]) for n in range(4)]
    async with Ingest(store) as ingest:
        first = await ingest.send(batches)
        rings = ingest.rings
        # A reconnecting agent resends what it saw no ack for, possibly all of it, in other batches.
        again = await ingest.send([batch(9, events[:120]), batch(10, events[100:]), batch(11, events)])
    assert [(a.inserted, a.replaced) for a in first] == [(50, 0)] * 4
    assert [(a.batch_id, a.inserted, a.replaced) for a in again] == [(9, 0, 0), (10, 0, 0), (11, 0, 0)]
    assert ingest.rings == rings, "nothing changed, no watch need look"
    assert len(await stored(store)) == 200
    assert await store.latest_event_seq() == 200


async def test_a_grown_event_replaces_its_row_and_a_smaller_one_does_not(store) -> None:
    small, grown, stale = make_event(7, count=1), make_event(7, count=5), make_event(7, count=3)
    other = make_event(8)
    async with Ingest(store) as ingest:
        acks = await ingest.send([batch(1, [small, other]), batch(2, [grown]), batch(3, [stale]),
                                  batch(4, [small, grown])])
    assert [(a.inserted, a.replaced) for a in acks] == [(2, 0), (0, 1), (0, 0), (0, 0)]
    have = await stored(store)
    assert have[small["id"]] == grown and have[other["id"]] == other
    assert await store.latest_event_seq() == 3


@pytest.mark.parametrize("damage, says", [
    (lambda m: setattr(m, "json", m.json[:-3]), "not JSON"),
    (lambda m: setattr(m, "json", "[1, 2]"), "a JSON list, not an object"),
    (lambda m: setattr(m, "json", m.json.replace('"severity": 100', '"severity": NaN')), "not JSON"),
    (lambda m: setattr(m, "id", "f" * 32), "differs from the id in its JSON"),
    (lambda m: setattr(m, "json", json.dumps({**json.loads(m.json), "time": "yesterday"})), "not an RFC 3339 time"),
], ids=["truncated", "not-an-object", "nan", "id-mismatch", "bad-time"])
async def test_an_unusable_batch_ends_the_stream_and_nothing_of_it_is_stored(store, damage, says) -> None:
    good = [make_event(i) for i in range(10)]
    bad = [make_event(i) for i in range(10, 20)]
    broken = batch(2, bad)
    damage(broken.events[3])
    acks: list[events_pb2.Ack] = []
    async with Ingest(store) as ingest:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await ingest.send([batch(1, good), broken, batch(3, [make_event(30)])],
                              on_ack=lambda ack: _append(acks, ack))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details().startswith("batch 2: ") and says in refused.value.details()
    assert [ack.batch_id for ack in acks] == [1]
    # Batch 3 may have been written already (the stream is read ahead), but it was not acknowledged.
    assert set(await stored(store)) - {make_event(30)["id"]} == {event["id"] for event in good}


async def _append(acks: list, ack) -> None:
    acks.append(ack)


async def test_several_agents_at_once_each_get_their_acks_in_order(store) -> None:
    agents = [[make_event(agent * 1000 + i) for i in range(300)] for agent in range(4)]
    async with Ingest(store) as ingest:
        results = await asyncio.gather(*[
            ingest.send([batch(n, events[n * 25:(n + 1) * 25]) for n in range(12)]) for events in agents])
        # All four again, concurrently: every event already stored.
        again = await asyncio.gather(*[ingest.send([batch(1, events)]) for events in agents])
    for acks in results:
        assert [(a.batch_id, a.inserted, a.replaced) for a in acks] == [(n, 25, 0) for n in range(12)]
    assert [[(a.inserted, a.replaced) for a in acks] for acks in again] == [[(0, 0)]] * 4
    assert len(await stored(store)) == 1200
    assert await store.latest_event_seq() == 1200


class HeldInStore:
    """The real store, noting how many events its ingest_json calls hold at once (inside the call: parsed,
    waiting for the group commit or being written)."""

    def __init__(self, store) -> None:
        self.store = store
        self.held = self.most_held = 0

    async def ingest_json(self, bodies, **kwargs):
        self.held += len(bodies)
        self.most_held = max(self.most_held, self.held)
        try:
            return await self.store.ingest_json(bodies, **kwargs)
        finally:
            self.held -= len(bodies)


async def test_streams_together_hold_at_most_the_event_budget(store) -> None:
    agents = [[make_event(agent * 1000 + i) for i in range(200)] for agent in range(3)]
    held = HeldInStore(store)
    async with Ingest(held, window=8, max_events_held=50) as ingest:
        results = await asyncio.gather(*[
            ingest.send([batch(n, events[n * 20:(n + 1) * 20]) for n in range(10)]) for events in agents])
        assert held.most_held == 40, "two batches of 20 fit in 50 and a third does not"
        # A batch larger than the whole budget still goes: it waits for the room of all of it, then travels alone.
        large = await ingest.send([batch(99, [make_event(5000 + i) for i in range(80)])])
        assert held.most_held == 80
    for acks in results:
        assert [(a.batch_id, a.inserted) for a in acks] == [(n, 20) for n in range(10)]
    assert [(a.inserted, a.replaced) for a in large] == [(80, 0)]
    assert len(await stored(store)) == 680
    assert ingest.servicer.budget.held == 0


# -- the store's group commit -------------------------------------------------------------------------------------


async def test_concurrent_ingests_are_answered_as_if_written_one_after_the_other(store) -> None:
    base = [make_event(i) for i in range(100)]
    calls = [
        base[:60],                                    # new
        base[40:],                                    # 40..59 already there (earlier in the group), 60..99 new
        [make_event(5, count=3), make_event(6, count=2)],  # grow two
        [make_event(5, count=2)],                     # smaller than the call before: nothing
        [make_event(5, count=9), make_event(200)],    # grow again, one new
        [],
    ]
    results = await asyncio.gather(*[store.ingest_events(events) for events in calls])
    assert results == [IngestResult(60, 0, 0), IngestResult(40, 0, 20), IngestResult(0, 2, 0),
                       IngestResult(0, 0, 1), IngestResult(1, 1, 0), IngestResult(0, 0, 0)]
    have = await stored(store)
    assert len(have) == 101
    assert have[base[5]["id"]]["record"]["count"] == 9 and have[base[6]["id"]]["record"]["count"] == 2
    # Watchers read rows in sequence order: one number per row, the latest handed out among them.
    seqs = [s.seq for s in await store.events_since(0, ALL, 1000)]
    assert len(seqs) == 101 and seqs == sorted(set(seqs)) and seqs[-1] == await store.latest_event_seq()


async def test_a_bad_event_fails_only_its_own_call_of_a_group(store) -> None:
    broken = make_event(3)
    del broken["time"]
    results = await asyncio.gather(store.ingest_events([make_event(1)]), store.ingest_events([broken]),
                                   store.ingest_events([make_event(2)]), return_exceptions=True)
    assert results[0] == results[2] == IngestResult(1, 0, 0)
    assert "time" in str(results[1])
    assert set(await stored(store)) == {make_event(1)["id"], make_event(2)["id"]}


async def test_bodies_are_stored_as_given(store) -> None:
    event = make_event(1)
    text = json.dumps(event, indent=1)
    assert await store.ingest_events([event], bodies=[text]) == IngestResult(1, 0, 0)
    assert (await stored(store))[event["id"]] == event


async def test_the_budget_lets_callers_in_the_order_they_asked_and_forgets_a_cancelled_one() -> None:
    budget = EventBudget(100)
    assert await budget.take(60) == 60
    order: list[str] = []

    async def take(name: str, count: int) -> None:
        await budget.take(count)
        order.append(name)

    large = asyncio.create_task(take("large", 80))
    await asyncio.sleep(0)
    small = asyncio.create_task(take("small", 10))  # fits now, but waits behind the large one
    gone = asyncio.create_task(take("gone", 5))
    await asyncio.sleep(0)
    assert order == [] and budget.held == 60
    gone.cancel()
    await asyncio.gather(gone, return_exceptions=True)
    budget.give_back(60)
    await asyncio.gather(large, small)
    assert order == ["large", "small"] and budget.held == 90
    budget.give_back(90)
    # A batch larger than the whole budget takes all of it.
    assert await budget.take(500) == 100 and budget.held == 100
