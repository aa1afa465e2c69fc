import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.core.outbox import Batch, Outbox, QueuedEvent, queued_event


def ev(event_id: str, count: int = 1, pad: int = 0) -> QueuedEvent:
    return queued_event(event_id, json.dumps({"id": event_id, "record": {"count": count}, "pad": "x" * pad}))


def ids(batch) -> list[str]:
    return [e.id for e in batch.events]


def counts(batch) -> list[int]:
    return [json.loads(e.json)["record"]["count"] for e in batch.events]


def big_outbox() -> Outbox:
    return Outbox(max_events=1000, max_bytes=1 << 20)


def test_events_leave_in_emission_order_and_ack_settles_them():
    box = big_outbox()
    for name in "abc":
        assert box.offer(ev(name)) == ()
    batch = box.next_batch(10, 1 << 20)
    assert batch.batch_id == 1 and ids(batch) == ["a", "b", "c"]
    assert box.next_batch(10, 1 << 20) is None
    assert box.ack(batch.batch_id) == ("a", "b", "c")
    stats = box.stats()
    assert (stats.queued, stats.in_flight, stats.acked, stats.dropped, stats.replaced) == (0, 0, 3, 0, 0)
    assert len(box) == 0


def test_size_is_utf8_bytes():
    assert queued_event("x", '"é"').size == 4


def test_a_reemission_of_a_queued_id_replaces_it_and_moves_to_the_back():
    box = big_outbox()
    box.offer(ev("a", 1))
    box.offer(ev("b", 1))
    box.offer(ev("a", 5))
    assert box.stats().queued == 2 and box.stats().replaced == 1
    batch = box.next_batch(10, 1 << 20)
    assert ids(batch) == ["b", "a"] and counts(batch) == [1, 5]
    assert box.stats().queued_bytes == 0 and box.stats().in_flight_bytes == batch.size


def test_batches_respect_event_and_byte_limits_but_always_carry_one_event():
    box = big_outbox()
    for name in "abcde":
        box.offer(ev(name, pad=100))
    size = box.stats().queued_bytes // 5
    first = box.next_batch(2, 1 << 20)
    second = box.next_batch(10, 2 * size + 1)
    third = box.next_batch(10, 1)
    assert [ids(b) for b in (first, second, third)] == [["a", "b"], ["c", "d"], ["e"]]
    assert [b.batch_id for b in (first, second, third)] == [1, 2, 3]


def test_an_emission_during_flight_stays_queued_after_the_ack():
    box = big_outbox()
    box.offer(ev("a", 1))
    box.offer(ev("b", 1))
    batch = box.next_batch(10, 1 << 20)
    box.offer(ev("a", 2))
    assert box.ack(batch.batch_id) == ("b",)
    assert box.stats().queued == 1 and box.stats().in_flight == 0 and box.stats().acked == 2
    later = box.next_batch(10, 1 << 20)
    assert ids(later) == ["a"] and counts(later) == [2]
    assert box.ack(later.batch_id) == ("a",)
    assert len(box) == 0


def test_a_newer_emission_in_a_later_batch_is_not_settled_by_the_earlier_ack():
    box = big_outbox()
    box.offer(ev("a", 1))
    first = box.next_batch(10, 1 << 20)
    box.offer(ev("a", 2))
    second = box.next_batch(10, 1 << 20)
    assert box.ack(first.batch_id) == ()
    assert box.ack(second.batch_id) == ("a",)


def test_unknown_and_repeated_acks_change_nothing():
    box = big_outbox()
    box.offer(ev("a"))
    batch = box.next_batch(10, 1 << 20)
    assert box.ack(99) == ()
    assert box.ack(batch.batch_id) == ("a",)
    assert box.ack(batch.batch_id) == ()
    assert box.stats().acked == 1


def test_requeue_puts_in_flight_batches_back_first_in_order():
    box = big_outbox()
    for name in "abcd":
        box.offer(ev(name))
    first = box.next_batch(2, 1 << 20)
    second = box.next_batch(1, 1 << 20)
    box.offer(ev("e"))
    assert box.requeue_in_flight() == 3
    assert box.stats().in_flight == 0 and box.stats().queued == 5
    again = box.next_batch(10, 1 << 20)
    assert ids(again) == ["a", "b", "c", "d", "e"]
    # batch ids are never reused: a late Ack from the dead stream matches nothing
    assert again.batch_id > second.batch_id > first.batch_id
    assert box.ack(first.batch_id) == () and box.stats().in_flight == 5


def test_requeue_does_not_resend_a_superseded_emission():
    box = big_outbox()
    box.offer(ev("a", 1))
    box.offer(ev("b", 1))
    box.next_batch(10, 1 << 20)
    box.offer(ev("a", 2))  # queued beside the in-flight one
    box.offer(ev("b", 1))
    box.next_batch(1, 1 << 20)  # a (2) in flight in a second batch; b (1, re-emitted) still queued
    box.offer(ev("c", 1))
    box.requeue_in_flight()
    batch = box.next_batch(10, 1 << 20)
    assert ids(batch) == ["a", "b", "c"] and counts(batch) == [2, 1, 1]
    assert box.stats().replaced == 2


def test_nack_is_requeue():
    box = big_outbox()
    box.offer(ev("a"))
    box.next_batch(10, 1 << 20)
    assert box.nack() == 1 and box.stats().queued == 1
    assert box.nack() == 0


def test_the_event_bound_drops_the_oldest_queued_and_counts_it():
    box = Outbox(max_events=3, max_bytes=1 << 20)
    for name in "abc":
        assert box.offer(ev(name)) == ()
    assert box.offer(ev("d")) == ("a",)
    assert box.offer(ev("e")) == ("b",)
    assert ids(box.next_batch(10, 1 << 20)) == ["c", "d", "e"]
    assert box.stats().dropped == 2


def test_the_byte_bound_drops_as_many_oldest_as_needed():
    one = ev("a", pad=100).size
    box = Outbox(max_events=100, max_bytes=3 * one)
    for name in "abc":
        box.offer(ev(name, pad=100))
    assert box.offer(ev("d", pad=100 + 2 * one)) == ("a", "b", "c")  # three times as big: room for it alone
    assert box.stats().dropped == 3 and box.stats().queued == 1


def test_an_event_larger_than_the_bound_is_dropped_alone():
    box = Outbox(max_events=100, max_bytes=500)
    box.offer(ev("a"))
    assert box.offer(ev("b", pad=1000)) == ("b",)
    assert box.stats().queued == 1 and box.stats().dropped == 1


def test_in_flight_events_count_against_the_bound_and_go_only_when_nothing_older_is_queued():
    box = Outbox(max_events=3, max_bytes=1 << 20)
    box.offer(ev("a"))
    box.offer(ev("b"))
    first = box.next_batch(10, 1 << 20)
    box.offer(ev("c"))
    assert box.offer(ev("d")) == ("c",)  # a queued event goes before anything in flight
    second = box.next_batch(10, 1 << 20)  # a, b, d all in flight
    assert box.offer(ev("e")) == ("a",)  # nothing older queued: the oldest in flight goes
    assert box.stats().in_flight == 2 and box.stats().dropped == 2
    assert box.ack(first.batch_id) == ("b",)
    assert box.stats().acked == 1
    box.requeue_in_flight()
    assert ids(box.next_batch(10, 1 << 20)) == ["d", "e"]
    assert box.ack(second.batch_id) == ()


def test_a_batch_emptied_by_drops_is_forgotten():
    box = Outbox(max_events=1, max_bytes=1 << 20)
    box.offer(ev("a"))
    batch = box.next_batch(10, 1 << 20)
    assert box.offer(ev("b")) == ("a",)
    assert box.ack(batch.batch_id) == () and box.stats().acked == 0
    assert box.requeue_in_flight() == 0


def test_dropping_an_id_still_held_elsewhere_does_not_report_it():
    box = Outbox(max_events=2, max_bytes=1 << 20)
    box.offer(ev("a", 1))
    box.next_batch(10, 1 << 20)
    box.offer(ev("a", 2))  # a in flight and queued: two entries held
    assert box.offer(ev("b")) == ()  # drops the queued a(2), but a(1) is still in flight
    assert box.stats().dropped == 1


def test_bounds_must_leave_room():
    with pytest.raises(ValueError):
        Outbox(max_events=0, max_bytes=10)


def test_an_oversized_reemission_leaves_the_held_one_and_reports_nothing():
    box = Outbox(max_events=100, max_bytes=500)
    box.offer(ev("a", 1))
    assert box.offer(ev("a", 2, pad=1000)) == ()
    assert counts(box.next_batch(10, 1 << 20)) == [1] and box.stats().dropped == 1


OPS = st.lists(st.one_of(
    st.tuples(st.just("offer"), st.sampled_from("abcdefg"), st.integers(0, 300)),
    st.tuples(st.just("cut"), st.integers(1, 4), st.integers(1, 800)),
    st.tuples(st.just("ack"), st.integers(0, 3)),
    st.tuples(st.just("requeue"),),
), max_size=80)


@settings(max_examples=300, deadline=None)
@given(OPS, st.integers(1, 6), st.integers(200, 1500))
def test_any_sequence_keeps_the_bounds_the_latest_emissions_and_every_emission_accounted(ops, max_events,
                                                                                         max_bytes):
    box = Outbox(max_events=max_events, max_bytes=max_bytes)
    latest: dict[str, int] = {}  # id -> serial of its latest emission offered
    cut: list[int] = []
    offered = serial = 0
    for op in ops:
        if op[0] == "offer":
            serial += 1
            offered += 1
            event = ev(op[1], serial, pad=op[2])
            dropped = box.offer(event)
            if event.size <= max_bytes:
                latest[op[1]] = serial
            for event_id in dropped:
                assert not box._holds(event_id)
        elif op[0] == "cut":
            batch = box.next_batch(op[1], op[2])
            if batch is not None:
                assert 1 <= len(batch.events) <= op[1]
                assert len(batch.events) == 1 or batch.size <= op[2]
                cut.append(batch.batch_id)
        elif op[0] == "ack" and cut:
            settled = box.ack(cut.pop(min(op[1], len(cut) - 1)))
            for event_id in settled:
                assert not box._holds(event_id)
        elif op[0] == "requeue":
            box.requeue_in_flight()
            cut.clear()
        stats = box.stats()
        assert stats.queued + stats.in_flight <= max_events
        assert stats.queued_bytes + stats.in_flight_bytes <= max_bytes
        assert offered == stats.acked + stats.dropped + stats.replaced + len(box)
        # whatever is queued for an id is its latest emission (older ones may still be in flight); only a drop
        # of the latest can leave an older one, from flight, to be resent (a true count, if a smaller one)
        for event_id, queued in box._queued.items():
            (held,) = counts(Batch(0, (queued,)))
            assert held == latest[event_id] or (stats.dropped and held < latest[event_id])


def test_an_ack_overtaking_an_earlier_batch_retires_its_older_emissions():
    box = big_outbox()
    box.offer(ev("a", 1))
    box.offer(ev("b", 1))
    first = box.next_batch(10, 1 << 20)
    box.offer(ev("a", 2))
    second = box.next_batch(10, 1 << 20)
    assert box.ack(second.batch_id) == ("a",)
    assert box.stats().in_flight == 1 and box.stats().replaced == 1
    box.requeue_in_flight()
    assert ids(box.next_batch(10, 1 << 20)) == ["b"]  # a (1) is not resent over the stored a (2)
    assert first.batch_id < second.batch_id


def test_a_batch_emptied_by_an_overtaking_ack_leaves_nothing_behind():
    box = Outbox(max_events=2, max_bytes=1 << 20)
    box.offer(ev("a", 1))
    first = box.next_batch(10, 1 << 20)
    box.offer(ev("a", 2))
    second = box.next_batch(10, 1 << 20)
    box.ack(second.batch_id)
    assert box.stats().in_flight == 0
    for name in "bc":
        box.offer(ev(name))
        box.next_batch(10, 1 << 20)
    assert box.offer(ev("d")) == ("b",)  # the oldest in flight, no empty batch in the way
    assert box.ack(first.batch_id) == ()


def test_the_queued_gauges_are_the_stats_without_building_them():
    box = big_outbox()
    box.offer(ev("a", pad=10))
    box.offer(ev("b"))
    box.offer(ev("a", 2, pad=3))  # replaces: the count stays, the bytes follow the newer emission
    box.next_batch(1, 1 << 20)
    box.offer(ev("c"))
    stats = box.stats()
    assert (box.queued_events, box.queued_bytes) == (stats.queued, stats.queued_bytes) == (2, ev("a", 2, pad=3).size
                                                                                          + ev("c").size)
