"""What an event's answers are decoded from: the response cut after the answers it shows, its names checked."""

from __future__ import annotations

import struct

import dnslib
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.core.answerslice import displayable_prefix

LABEL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
NAME = st.lists(LABEL, min_size=1, max_size=4).map(".".join)
RDATA = st.one_of(
    st.builds(dnslib.A, st.ip_addresses(v=4).map(str)),
    st.builds(dnslib.CNAME, NAME),
    st.builds(dnslib.MX, NAME, st.integers(0, 65535)),
    st.builds(dnslib.SRV, st.integers(0, 9), st.integers(0, 9), st.integers(1, 65535), NAME),
    st.builds(dnslib.SOA, NAME, NAME, st.tuples(*[st.integers(0, 2**31)] * 5)),
    st.builds(dnslib.TXT, LABEL),
    st.builds(lambda name: dnslib.NAPTR(1, 2, b"S", b"SIP+D2U", b"", name), NAME),
)


def response(qname: str, answers: list, authority: list) -> bytes:
    reply = dnslib.DNSRecord.question(qname).reply()
    for rdata in answers:
        reply.add_answer(dnslib.RR(qname, getattr(dnslib.QTYPE, type(rdata).__name__), rdata=rdata))
    for rdata in authority:
        reply.add_auth(dnslib.RR(qname, getattr(dnslib.QTYPE, type(rdata).__name__), rdata=rdata))
    return bytes(reply.pack())


@settings(max_examples=200, deadline=None)
@given(NAME, st.lists(RDATA, max_size=8), st.lists(RDATA, max_size=3), st.integers(1, 8))
def test_the_cut_message_decodes_as_the_first_answers_of_the_whole(qname, answers, authority, shown):
    message = response(qname, answers, authority)
    cut = displayable_prefix(message, shown)
    assert cut is not None
    whole, part = dnslib.DNSRecord.parse(message), dnslib.DNSRecord.parse(cut)
    assert [str(rr) for rr in part.rr] == [str(rr) for rr in whole.rr[:shown]]
    assert part.auth == [] and part.ar == [] and part.questions == whole.questions


def pointer_chain_response(depth: int, records: int) -> bytes:
    """A response whose first answer's rdata holds a chain of `depth` labels, each pointing to the one
    before, and whose `records` NAPTR answers all name the end of the chain: dnslib walks the whole chain
    once per record."""
    question = b"\x01a\x00\x00\x01\x00\x01"
    chain_at = 12 + len(question) + 12
    chain, previous = b"", None
    for _ in range(depth):
        position = chain_at + len(chain)
        chain += b"\x01a" + (struct.pack("!H", 0xC000 | previous) if previous is not None else b"\x00")
        previous = position
    body = b"\xc0\x0c" + struct.pack("!HHIH", 65280, 1, 0, len(chain)) + chain
    naptr = b"\x00\x01\x00\x01\x00\x00\x00" + struct.pack("!H", 0xC000 | previous)
    body += (b"\xc0\x0c" + struct.pack("!HHIH", 35, 1, 0, len(naptr)) + naptr) * records
    return struct.pack("!HHHHHH", 1, 0x8180, 1, 1 + records, 0, 0) + question + body


def test_a_long_pointer_chain_in_rdata_dnslib_decodes_is_not_handed_to_it():
    assert displayable_prefix(pointer_chain_response(100, 3), 32) is not None  # 100 labels: a valid name
    assert displayable_prefix(pointer_chain_response(900, 3000), 32) is None


@pytest.mark.parametrize("cut", [5, 13, 20, 30])
def test_a_truncated_response_has_no_answers_to_show(cut):
    message = response("evil.example", [dnslib.A("192.0.2.1"), dnslib.CNAME("x.example")], [])
    assert displayable_prefix(message[:cut], 32) is None


def test_names_pointing_into_one_chain_are_handed_to_dnslib_written_out():
    # Found by fuzzing (fuzz/dns.py): questions and owners that each point to the deepest link of a
    # 126-jump pointer chain are valid names, but dnslib walks the chain again for every one of them: a
    # 4 KiB response took it 0.4 s, a 64 KiB one 8 s. It now gets the first question and the answers shown,
    # every name written out: no pointer left to follow.
    questions, previous = b"\x01a\x00\x00\x01\x00\x01", 12
    for _ in range(126):
        position = 12 + len(questions)
        questions += struct.pack("!H", 0xC000 | previous) + b"\x00\x01\x00\x01"
        previous = position
    questions += (struct.pack("!H", 0xC000 | previous) + b"\x00\x01\x00\x01") * 2000
    answers = (b"\x01x" + struct.pack("!HHHIH", 0xC000 | previous, 16, 1, 60, 2) + b"\x01t") * 3
    message = struct.pack("!HHHHHH", 7, 0x8180, 2127, 3, 0, 0) + questions + answers
    cut = displayable_prefix(message, 32)
    assert cut == (struct.pack("!HHHHHH", 7, 0x8180, 1, 3, 0, 0) + b"\x01a\x00\x00\x01\x00\x01"
                   + (b"\x01x\x01a\x00" + struct.pack("!HHIH", 16, 1, 60, 2) + b"\x01t") * 3)
    assert [str(rr.rname) for rr in dnslib.DNSRecord.parse(cut).rr] == ["x.a."] * 3


def test_names_inside_rdata_are_written_out_too():
    message = response("q.example", [dnslib.MX("mail.q.example", 10), dnslib.SOA("ns.q.example", "root.q.example",
                                                                                  (1, 2, 3, 4, 5))], [])
    assert b"\xc0" in message[29:]  # dnslib compressed them
    cut = displayable_prefix(message, 32)
    assert [str(rr) for rr in dnslib.DNSRecord.parse(cut).rr] == [str(rr) for rr in dnslib.DNSRecord.parse(message).rr]
    assert b"\x04mail\x01q\x07example\x00" in cut and b"\x04root\x01q\x07example\x00" in cut
