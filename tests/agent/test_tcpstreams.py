"""TcpReassembler: length framing over segments, ordering, gaps and resynchronisation, bounds."""

from __future__ import annotations

import random
import struct

from dnslib import RR, DNSRecord
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.core.tcpstreams import (
    TCP_ACK,
    TCP_FIN,
    TCP_RST,
    TCP_SYN,
    TcpReassembler,
    looks_like_message_start,
)

CLIENT = (b"\x0a\x00\x00\x01", 40000, b"\x0a\x00\x00\x35", 53)
SERVER = (CLIENT[2], CLIENT[3], CLIENT[0], CLIENT[1])
ISN = 1000


def query(name: str, ident: int = 1) -> bytes:
    record = DNSRecord.question(name)
    record.header.id = ident
    return bytes(record.pack())


def response(name: str, ident: int = 1) -> bytes:
    record = DNSRecord.question(name)
    record.header.id = ident
    reply = record.reply()
    reply.add_answer(*RR.fromZone(f"{name} 60 A 192.0.2.1"))
    return bytes(reply.pack())


def framed(*messages: bytes) -> bytes:
    return b"".join(struct.pack("!H", len(m)) + m for m in messages)


class Conn:
    """Feeds one direction's stream (optionally after a SYN) and collects what comes out."""

    def __init__(self, reassembler: TcpReassembler | None = None, flow=CLIENT, syn: bool = True) -> None:
        self.r = reassembler or TcpReassembler()
        self.flow = flow
        self.out: list = []
        self.ts = 0.0
        if syn:
            self.send(ISN, b"", TCP_SYN)

    def send(self, seq: int, data: bytes, flags: int = TCP_ACK, ack: int = 0, flow=None) -> list:
        self.ts += 0.001
        got = self.r.segment(self.ts, flow or self.flow, seq & 0xFFFFFFFF, ack, flags, data)
        self.out.extend(got)
        return got

    def messages(self) -> list[bytes]:
        return [m for _, _, m in self.out]


def test_message_split_across_segments_including_the_length():
    q = query("split.example")
    data = framed(q)
    c = Conn()
    c.send(ISN + 1, data[:1])
    c.send(ISN + 2, data[1:5])
    assert c.out == []
    got = c.send(ISN + 6, data[5:])
    assert [m for _, _, m in got] == [q]
    assert got[0][1] == CLIENT and got[0][0] == c.ts  # stamped with the segment that completed it
    assert c.r.counters.messages == 1


def test_several_messages_in_one_segment_and_one_across_the_next():
    qs = [query(f"q{i}.example", i) for i in range(4)]
    data = framed(*qs)
    c = Conn()
    cut = len(framed(*qs[:2])) + 7
    c.send(ISN + 1, data[:cut])
    assert c.messages() == qs[:2]
    c.send(ISN + 1 + cut, data[cut:])
    assert c.messages() == qs


def test_out_of_order_segments_are_held_until_the_hole_fills():
    qs = [query(f"o{i}.example", i) for i in range(3)]
    data = framed(*qs)
    pieces = [(ISN + 1 + i, data[i:i + 9]) for i in range(0, len(data), 9)]
    c = Conn()
    for seq, piece in reversed(pieces):
        c.send(seq, piece)
    assert c.messages() == qs
    assert c.r.counters.out_of_order == len(pieces) - 1 and c.r.counters.gaps == 0


def test_retransmissions_and_overlaps_deliver_each_message_once():
    qs = [query(f"r{i}.example", i) for i in range(3)]
    data = framed(*qs)
    c = Conn()
    c.send(ISN + 1, data[:20])
    c.send(ISN + 1, data[:20])  # exact retransmission
    c.send(ISN + 11, data[10:40])  # overlaps the first segment, brings 20 new bytes
    c.send(ISN + 1, data[:60])  # repacketised retransmission
    c.send(ISN + 61, data[60:])
    c.send(ISN + 61, data[60:])
    assert c.messages() == qs
    assert c.r.counters.retransmitted == 2


def test_sequence_numbers_wrap_around():
    qs = [query("wrap.example", i) for i in range(3)]
    data = framed(*qs)
    r = TcpReassembler()
    isn = 0xFFFFFFF0
    r.segment(0.0, CLIENT, isn, 0, TCP_SYN, b"")
    out = []
    for i in range(0, len(data), 7):
        out += r.segment(0.1, CLIENT, (isn + 1 + i) & 0xFFFFFFFF, 0, TCP_ACK, data[i:i + 7])
    assert [m for _, _, m in out] == qs


def test_gap_acknowledged_by_the_peer_resynchronises_at_the_next_message():
    qs = [query(f"g{i}.example", i) for i in range(4)]
    c = Conn()
    seq = ISN + 1
    c.send(seq, framed(qs[0]))
    seq += len(framed(qs[0]))
    lost = framed(qs[1])[:10]  # the capture misses the start of message 1...
    seq += len(lost)
    c.send(seq, framed(qs[1])[10:])  # ...so this rest of it is held behind the hole
    seq += len(framed(qs[1])) - 10
    c.send(seq, framed(qs[2]))
    assert c.messages() == [qs[0]]
    # The server acknowledges everything: the hole was delivered, just not captured.
    c.send(ISN + 5000, b"", TCP_ACK, ack=(seq + len(framed(qs[2]))), flow=SERVER)
    assert c.messages() == [qs[0], qs[2]]
    assert c.r.counters.gaps == 1
    assert c.r.counters.bytes_skipped == len(framed(qs[1])) - 10
    seq += len(framed(qs[2]))
    c.send(seq, framed(qs[3]))
    assert c.messages() == [qs[0], qs[2], qs[3]]


def test_gap_already_acknowledged_when_the_segment_after_it_arrives():
    qs = [query(f"a{i}.example", i) for i in range(3)]
    c = Conn()
    c.send(ISN + 1, framed(qs[0]))
    after = ISN + 1 + len(framed(qs[0])) + len(framed(qs[1]))
    c.send(ISN + 9000, b"", TCP_ACK, ack=after, flow=SERVER)
    c.send(after, framed(qs[2]))
    assert c.messages() == [qs[0], qs[2]] and c.r.counters.gaps == 1


def test_unacknowledged_gap_is_settled_when_the_stream_ends():
    qs = [query(f"e{i}.example", i) for i in range(3)]
    c = Conn()
    c.send(ISN + 1, framed(qs[0]))
    after = ISN + 1 + len(framed(qs[0])) + len(framed(qs[1]))
    c.send(after, framed(qs[2]))
    assert c.messages() == [qs[0]]
    c.out += c.r.finish()
    assert c.messages() == [qs[0], qs[2]] and c.r.counters.gaps == 1 and c.r.open_streams() == 0


def test_gap_is_forced_when_too_many_bytes_wait_behind_it():
    qs = [query(f"m{i}.example", i) for i in range(30)]
    c = Conn(TcpReassembler(max_stream_bytes=200))
    seq = ISN + 1 + 50  # 50 bytes never captured
    for q in qs:
        c.send(seq, framed(q))
        seq += len(framed(q))
    assert c.r.counters.gaps == 1
    assert c.messages() == qs  # every message started a segment, so resynchronisation lost none


def test_flow_without_syn_starts_at_a_plausible_message():
    q, r = query("nosyn.example", 7), response("nosyn.example", 7)
    c = Conn(syn=False)
    c.send(5555, framed(q))
    c.send(7777, framed(r), flow=SERVER)
    assert [(flow, m) for _, flow, m in c.out] == [(CLIENT, q), (SERVER, r)]
    assert c.r.counters.bytes_skipped == 0


def test_flow_without_syn_skips_a_segment_that_begins_mid_message():
    # dnscap's do1t-nosyn-1nolen: the first captured segment is a message whose length went before it.
    q1, q2 = query("first.example", 1), query("second.example", 2)
    c = Conn(syn=False)
    c.send(5000, q1)
    c.send(5000 + len(q1), framed(q2)[:2])  # a length on its own: judged once the header arrives
    assert c.out == []
    c.send(5000 + len(q1) + 2, framed(q2)[2:])
    assert c.messages() == [q2]
    assert c.r.counters.bytes_skipped == len(q1)


def test_fin_ends_the_stream_and_counts_an_unfinished_message():
    q = query("fin.example")
    c = Conn()
    c.send(ISN + 1, framed(q) + framed(q)[:9], TCP_ACK | TCP_FIN)
    assert c.messages() == [q]
    assert c.r.open_streams() == 0 and c.r.counters.bytes_skipped == 9


def test_rst_ends_both_directions():
    c = Conn()
    c.send(ISN + 1, framed(query("x.example"))[:5])
    c.send(3000, b"", TCP_SYN | TCP_ACK, flow=SERVER)
    assert c.r.open_streams() == 2
    c.send(3001, b"", TCP_RST, flow=SERVER)
    assert c.r.open_streams() == 0 and c.r.counters.bytes_skipped == 5


def test_retransmitted_syn_keeps_the_stream_and_a_new_syn_restarts_it():
    q = query("again.example")
    c = Conn()
    c.send(ISN + 1, framed(q)[:5])
    c.send(ISN, b"", TCP_SYN)  # the same SYN again
    c.send(ISN + 6, framed(q)[5:])
    assert c.messages() == [q]
    c.send(ISN + 1 + len(framed(q)), framed(q)[:5])  # the start of a second message...
    c.send(90_000, b"", TCP_SYN)  # ...cut off by a new connection on the same ports
    c.send(90_001, framed(q))
    assert c.messages() == [q, q] and c.r.counters.bytes_skipped == 5


def test_least_recently_used_stream_is_evicted():
    r = TcpReassembler(max_streams=2)
    flows = [(b"\x0a\x00\x00\x01", 40000 + i, b"\x0a\x00\x00\x35", 53) for i in range(3)]
    for i, flow in enumerate(flows[:2]):
        r.segment(float(i), flow, ISN, 0, TCP_SYN, b"")
    r.segment(2.0, flows[0], ISN + 1, 0, TCP_ACK, b"\x00")  # flow 0 is now the most recently used
    r.segment(3.0, flows[2], ISN, 0, TCP_SYN, b"")
    assert r.counters.streams_evicted == 1
    assert set(r._streams) == {flows[0], flows[2]}


def test_idle_streams_are_closed_by_capture_time():
    q = query("idle.example")
    r = TcpReassembler(idle_timeout=10.0)
    r.segment(0.0, CLIENT, ISN, 0, TCP_SYN, b"")
    r.segment(1.0, CLIENT, ISN + 1, 0, TCP_ACK, framed(q)[:4])
    r.segment(20.0, SERVER, 5000, 0, TCP_SYN, b"")
    assert r.counters.streams_expired == 1 and r.counters.bytes_skipped == 4 and r.open_streams() == 1


def test_zero_length_prefix_is_skipped():
    q = query("zero.example")
    c = Conn()
    c.send(ISN + 1, b"\x00\x00" + framed(q))
    assert c.messages() == [q]


def test_looks_like_message_start():
    q, r = query("plausible.example"), response("plausible.example")
    assert looks_like_message_start(framed(q), 0) is True
    assert looks_like_message_start(framed(r), 0) is True
    assert looks_like_message_start(framed(q)[:13], 0) is None
    assert looks_like_message_start(b"xx" + framed(q), 2) is True
    assert looks_like_message_start(q, 0) is False  # a message without its length (dnscap's "nolen")
    too_short = bytearray(framed(r))
    too_short[0:2] = struct.pack("!H", 20)  # an answer cannot fit in 20 bytes
    assert looks_like_message_start(too_short, 0) is False
    bad_opcode = bytearray(framed(q))
    bad_opcode[4] |= 0x7 << 3  # opcode 7: unassigned
    assert looks_like_message_start(bad_opcode, 0) is False
    no_question = bytearray(framed(q))
    no_question[6:8] = b"\x00\x00"
    assert looks_like_message_start(no_question, 0) is False
    assert looks_like_message_start(b"\x00\x0c" + b"\x00" * 12, 0) is False  # a query with no question


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text("abcdefgh", min_size=1, max_size=20), min_size=1, max_size=8), st.randoms(),
       st.integers(min_value=0, max_value=0xFFFFFFFF))
def test_any_segmentation_order_and_duplication_gives_the_messages_once_in_order(labels, rnd, isn):
    qs = [query(f"{label}.example", i) for i, label in enumerate(labels)]
    data = framed(*qs)
    cuts = sorted(rnd.sample(range(1, len(data)), k=min(len(data) - 1, rnd.randint(0, 12))))
    bounds = [0, *cuts, len(data)]
    segments = [(bounds[i], data[bounds[i]:bounds[i + 1]]) for i in range(len(bounds) - 1)]
    segments += rnd.sample(segments, k=rnd.randint(0, len(segments)))  # duplicates
    rnd.shuffle(segments)
    r = TcpReassembler()
    out = r.segment(0.0, CLIENT, isn, 0, TCP_SYN, b"")
    for offset, piece in segments:
        out += r.segment(0.1, CLIENT, (isn + 1 + offset) & 0xFFFFFFFF, 0, TCP_ACK, piece)
    out += r.finish()
    assert [m for _, _, m in out] == qs
    assert r.counters.gaps == 0 and r.counters.bytes_skipped == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3000), st.integers(0, 0xFFFFFFFF), st.sampled_from(
    [0, TCP_ACK, TCP_SYN, TCP_FIN | TCP_ACK, TCP_RST, TCP_SYN | TCP_ACK]), st.binary(max_size=40), st.booleans()),
    max_size=40))
def test_arbitrary_segments_never_raise_and_stay_bounded(segments):
    r = TcpReassembler(max_streams=2, max_stream_bytes=64, idle_timeout=5.0)
    ts = 0.0
    for seq, ack, flags, payload, reverse in segments:
        ts += 0.5
        r.segment(ts, SERVER if reverse else CLIENT, 1000 + seq, ack, flags, payload)
        assert r.open_streams() <= 2
        assert all(s.pending_bytes <= 64 for s in r._streams.values())
    r.finish()
    assert r.open_streams() == 0


def test_random_loss_never_wedges_a_long_stream():
    rnd = random.Random(5)
    qs = [query(f"loss{i}.example", i) for i in range(300)]
    c = Conn()
    seq = ISN + 1
    for q in qs:
        if rnd.random() >= 0.1:  # one message segment in ten is lost, and the server acknowledges anyway
            c.send(seq, framed(q))
        seq += len(framed(q))
        c.send(7000, b"", TCP_ACK, ack=seq, flow=SERVER)
    got = c.messages()
    assert 240 < len(got) < 300 and all(m in qs for m in got)
    assert got == sorted(got, key=qs.index)
