"""FragmentReassembler: order, overlaps, bounds and timeouts."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.core.fragments import FragmentReassembler

KEY = (b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02", 17, 4242)
PAYLOAD = bytes(range(256)) * 3  # 768 bytes


def pieces(payload: bytes = PAYLOAD, size: int = 200) -> list[tuple[int, bool, bytes]]:
    """(offset, more fragments, data) as a sender would cut `payload` (offsets multiples of 8)."""
    return [(off, off + size < len(payload), payload[off:off + size]) for off in range(0, len(payload), size)]


def feed(reassembler: FragmentReassembler, fragments, key=KEY, ts: float = 0.0) -> list[bytes]:
    done = []
    for offset, more, data in fragments:
        whole = reassembler.add(ts, key, offset, more, data)
        if whole is not None:
            done.append(whole)
    return done


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_any_arrival_order_reassembles_once(order):
    frags = pieces()
    r = FragmentReassembler()
    assert feed(r, [frags[i] for i in order]) == [PAYLOAD]
    assert r.counters.received == 4 and r.counters.reassembled == 1 and r.pending() == 0


def test_duplicate_fragments_are_harmless():
    frags = pieces()
    r = FragmentReassembler()
    assert feed(r, [frags[0], frags[0], frags[2], frags[1], frags[2], frags[3]]) == [PAYLOAD]
    assert r.counters.overlaps == 2


def test_overlapping_fragments_keep_the_first_bytes():
    r = FragmentReassembler()
    assert r.add(0, KEY, 0, True, b"A" * 16) is None
    assert r.add(0, KEY, 8, True, b"B" * 16) is None  # overlaps 8 bytes of A, adds 8 new ones
    assert r.add(0, KEY, 0, True, b"C" * 40) is None  # everything it covers is held, except 24..40
    whole = r.add(0, KEY, 40, False, b"D" * 8)
    assert whole == b"A" * 16 + b"B" * 8 + b"C" * 16 + b"D" * 8
    assert r.counters.overlaps == 2


def test_a_fragment_straddling_two_held_ones_fills_only_the_space_between():
    r = FragmentReassembler()
    r.add(0, KEY, 0, True, b"A" * 8)
    r.add(0, KEY, 16, False, b"C" * 8)
    assert r.add(0, KEY, 0, True, b"B" * 24) == b"A" * 8 + b"B" * 8 + b"C" * 8


def test_datagrams_are_kept_apart_by_key():
    other = (*KEY[:3], 4243)
    r = FragmentReassembler()
    frags = pieces()
    payload2 = PAYLOAD[::-1]
    frags2 = pieces(payload2)
    done = []
    for a, b in zip(frags, frags2):
        done += feed(r, [a]) + feed(r, [b], key=other)
    assert done == [PAYLOAD, payload2]


def test_incomplete_datagram_times_out_in_capture_time():
    r = FragmentReassembler(timeout=30.0)
    frags = pieces()
    feed(r, frags[:2], ts=100.0)
    assert r.pending() == 1
    feed(r, frags[2:], ts=131.0)  # too late: the first part was dropped, these start a new datagram
    assert r.counters.evicted == 1 and r.counters.reassembled == 0 and r.pending() == 1


def test_datagram_limit_drops_the_oldest():
    r = FragmentReassembler(max_datagrams=3)
    for ident in range(5):
        r.add(float(ident), (*KEY[:3], ident), 0, True, b"x" * 8)
    assert r.pending() == 3 and r.counters.evicted == 2
    # The newest three are still there: completing one works.
    assert r.add(5.0, (*KEY[:3], 4), 8, False, b"y") == b"x" * 8 + b"y"


def test_byte_limit_drops_the_oldest():
    r = FragmentReassembler(max_bytes=1000)
    for ident in range(4):
        r.add(0.0, (*KEY[:3], ident), 0, True, b"x" * 400)
    assert r.counters.evicted == 2 and r.pending() == 2


def test_fragment_past_the_largest_datagram_is_malformed():
    r = FragmentReassembler()
    assert r.add(0, KEY, 65_528, False, b"x" * 16) is None
    assert r.counters.malformed == 1 and r.pending() == 0


def test_bytes_past_the_end_learnt_later_are_dropped():
    r = FragmentReassembler()
    r.add(0, KEY, 0, True, b"A" * 8)
    r.add(0, KEY, 16, True, b"C" * 16)  # claims bytes 16..32
    whole = r.add(0, KEY, 8, False, b"B" * 8)  # ...but the last fragment says the datagram ends at 16
    assert whole == b"A" * 8 + b"B" * 8 and r.counters.malformed == 1
    assert r._held == 0


def test_drop_all_counts_what_never_completed():
    r = FragmentReassembler()
    r.add(0, KEY, 0, True, b"x" * 8)
    r.add(0, (*KEY[:3], 1), 8, False, b"x" * 8)
    r.drop_all()
    assert r.counters.evicted == 2 and r.pending() == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 70_000), st.booleans(), st.binary(max_size=64), st.integers(0, 3),
                          st.floats(0, 100)), max_size=60))
def test_arbitrary_fragments_never_raise_and_stay_bounded(fragments):
    r = FragmentReassembler(max_datagrams=3, max_bytes=200, timeout=10.0)
    for offset, more, data, ident, ts in fragments:
        whole = r.add(ts, (*KEY[:3], ident), offset, more, data)
        assert whole is None or len(whole) <= 65_535
        assert r.pending() <= 3 and 0 <= r._held <= 200
        assert r._held == sum(d.held for d in r._pending.values())


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=3000), st.integers(1, 200), st.randoms())
def test_any_cutting_and_order_rebuilds_the_payload(payload, size, rnd):
    size *= 8
    frags = pieces(payload, size)
    rnd.shuffle(frags)
    r = FragmentReassembler()
    assert feed(r, frags) == [payload]
