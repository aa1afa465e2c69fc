"""The DNS message scanner: every name docs/detection.md lists, damage handling, and agreement with dnslib."""

from __future__ import annotations

import struct

import dnslib
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dnswatch.feeds.domainset import DomainSet
from dnswatch.feeds.ipset import IPSet
from agent.core.scanner import CLEAN, Damaged, Matcher, NameCollector, question_of, read_name


def pack(record: dnslib.DNSRecord) -> bytes:
    return bytes(record.pack())


def matcher(**feeds) -> Matcher:
    return Matcher([(name, DomainSet.from_names(entries)) for name, entries in feeds.items()])


def found(result) -> set[tuple[str, str, str, str]]:
    damaged, matches = result
    return {(m.name, m.feed, m.entry, m.section) for m in matches}


def reply_with(qname: str, *, answers=(), authority=(), additional=(), rcode=0) -> bytes:
    response = dnslib.DNSRecord.question(qname).reply()
    response.header.rcode = rcode
    for rr in answers:
        response.add_answer(rr)
    for rr in authority:
        response.add_auth(rr)
    for rr in additional:
        response.add_ar(rr)
    return pack(response)


def test_plain_query_and_case_insensitivity():
    scan = matcher(c2=["evil.example"]).scan
    assert found(scan(pack(dnslib.DNSRecord.question("EvIl.Example")))) == {
        ("evil.example", "c2", "evil.example", "question")
    }
    assert scan(pack(dnslib.DNSRecord.question("good.example"))) is CLEAN


def test_query_with_edns_is_checked():
    query = dnslib.DNSRecord.question("evil.example")
    query.add_ar(dnslib.EDNS0(udp_len=1232))
    assert found(matcher(c2=["evil.example"]).scan(pack(query))) == {
        ("evil.example", "c2", "evil.example", "question")
    }


@pytest.mark.parametrize(
    ("rr", "section"),
    [
        (dnslib.RR("www.good.example", dnslib.QTYPE.CNAME, rdata=dnslib.CNAME("bad.example")), "answer"),
        (dnslib.RR("good.example", dnslib.QTYPE.NS, rdata=dnslib.NS("bad.example")), "authority"),
        (dnslib.RR("good.example", dnslib.QTYPE.MX, rdata=dnslib.MX("bad.example", 10)), "answer"),
        (dnslib.RR("good.example", dnslib.QTYPE.PTR, rdata=dnslib.PTR("bad.example")), "answer"),
        (dnslib.RR("_x._tcp.good.example", dnslib.QTYPE.SRV, rdata=dnslib.SRV(1, 2, 443, "bad.example")), "answer"),
        (
            dnslib.RR("good.example", dnslib.QTYPE.SOA, rdata=dnslib.SOA("bad.example", "h.good.example")),
            "authority",
        ),
        (
            dnslib.RR("good.example", dnslib.QTYPE.SOA, rdata=dnslib.SOA("ns.good.example", "bad.example")),
            "authority",
        ),
        (dnslib.RR("bad.example", dnslib.QTYPE.A, rdata=dnslib.A("192.0.2.1")), "additional"),
        (dnslib.RR("bad.example", dnslib.QTYPE.TXT, rdata=dnslib.TXT("x")), "answer"),
    ],
)
def test_every_name_position_is_checked(rr, section):
    sections = {"answer": "answers", "authority": "authority", "additional": "additional"}
    message = reply_with("www.good.example", **{sections[section]: [rr]})
    assert found(matcher(c2=["bad.example"]).scan(message)) == {("bad.example", "c2", "bad.example", section)}


def test_dname_and_https_targets():
    dname = struct.pack("!HHIH", 39, 1, 60, 13) + b"\x03bad\x07example\x00"
    https = struct.pack("!HHIH", 65, 1, 60, 15) + b"\x00\x01\x03bad\x07example\x00"
    for record in (dname, https):
        query = pack(dnslib.DNSRecord.question("good.example"))
        message = bytearray(query)
        message[2] |= 0x80
        message[7] = 1
        message += b"\xc0\x0c" + record
        assert found(matcher(c2=["bad.example"]).scan(bytes(message))) == {
            ("bad.example", "c2", "bad.example", "answer")
        }


def test_answer_addresses_against_ip_feeds():
    scan = Matcher(ip_feeds=[("bad-ips", IPSet.from_entries(["198.51.100.0/24", "2001:db8::/32"]))]).scan
    message = reply_with(
        "x.example",
        answers=[
            dnslib.RR("x.example", rdata=dnslib.A("198.51.100.7")),
            dnslib.RR("x.example", dnslib.QTYPE.AAAA, rdata=dnslib.AAAA("2001:db8::1")),
            dnslib.RR("x.example", rdata=dnslib.A("192.0.2.1")),
        ],
        additional=[dnslib.RR("y.example", rdata=dnslib.A("198.51.100.9"))],  # additional is not checked
    )
    names = {(m.name, m.feed, m.section, m.kind) for m in scan(message)[1]}
    assert names == {("198.51.100.7", "bad-ips", "answer", "ip"), ("2001:db8::1", "bad-ips", "answer", "ip")}


def test_truncated_response_still_names_its_question():
    message = reply_with("evil.example", answers=[dnslib.RR("evil.example", rdata=dnslib.A("192.0.2.1"))])
    damaged, matches = matcher(c2=["evil.example"]).scan(message[:-3])
    assert damaged and [m.name for m in matches] == ["evil.example"]


@pytest.mark.parametrize(
    "message",
    [
        b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01",  # pointer to itself
        b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x10\x00\x01\x00\x01",  # forward pointer
        b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x41abc\x00\x00\x01\x00\x01",  # extended label type
        b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + b"\x3f" + b"a" * 63 + b"\x3f" + b"b" * 63
        + b"\x3f" + b"c" * 63 + b"\x3f" + b"d" * 63 + b"\x00\x00\x01\x00\x01",  # 257 octets
        b"\x00\x01\x81\x80\x00\x01\x00\x05\x00\x00\x00\x00\x01a\x00\x00\x01\x00\x01",  # bogus counts
        b"\x00\x01\x81",  # shorter than a header
    ],
)
def test_malformed_messages_are_damaged_not_raised(message):
    damaged, matches = matcher(c2=["a"]).scan(message)
    assert damaged


HEADER_ONE_QUESTION = b"\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00"


@pytest.mark.parametrize(
    "name",
    [
        b"\x03abc\xc0\x0c",  # a label, then a pointer back to that label: looped for ever once
        b"\x01a\x01b\xc0\x0e",  # a pointer to the name's own second label
        b"\x01a\xc0\x0e",  # a pointer to itself after a label
    ],
)
def test_a_pointer_back_into_the_name_being_read_is_damage(name):
    with pytest.raises(Damaged):
        read_name(HEADER_ONE_QUESTION + name + b"\x00\x01\x00\x01", 12)


def test_every_jump_must_land_before_every_position_visited():
    # Question 1 at 12: `a.b`; question 2: `c` + pointer to 14 (`b`, before it): valid, `c.b`.
    message = HEADER_ONE_QUESTION + b"\x01a\x01b\x00" + b"\x00\x01\x00\x01" + b"\x01c\xc0\x0e"
    assert read_name(message, 21) == (b"\x01c\x01b\x00", 25)
    # A pointer to 22 after jumping to 14 points after a position visited (14): refused, though it is
    # before the pointer's own position.
    looping = HEADER_ONE_QUESTION + b"\x01a\x01b\xc0\x16" + b"\x00\x01\x00\x01" + b"\x01c\xc0\x0e"
    with pytest.raises(Damaged):
        read_name(looping, 21)


def test_a_name_is_refused_as_it_grows_past_255_octets():
    # 100 questions, each a 3-octet label and a pointer to the one before: the 85th name passes 255 octets.
    message = bytearray(HEADER_ONE_QUESTION + b"\x02aa\x00\x00\x01\x00\x01")
    starts = [12]
    for _ in range(99):
        starts.append(len(message))
        message += b"\x02ab" + struct.pack("!H", 0xC000 | starts[-2]) + b"\x00\x01\x00\x01"
    wire, _ = read_name(bytes(message), starts[83])
    assert len(wire) == 3 * 84 + 1  # 84 labels and the root: 253 octets
    with pytest.raises(Damaged, match="255"):
        read_name(bytes(message), starts[84])


def test_a_chain_of_bare_pointers_is_bounded_in_jumps():
    # 200 pointers, each to the one before, ending at the root: an empty name 200 jumps deep.
    message = bytearray(HEADER_ONE_QUESTION + b"\x00")
    previous = 12
    for _ in range(200):
        position = len(message)
        message += struct.pack("!H", 0xC000 | previous)
        previous = position
    assert read_name(bytes(message), 12 + 1 + 2 * 126)[0] == b"\x00"
    with pytest.raises(Damaged):
        read_name(bytes(message), previous)


def test_question_of():
    assert question_of(pack(dnslib.DNSRecord.question("WWW.Example.COM", "AAAA"))) == ("www.example.com", 28)
    assert question_of(b"\x00\x01") == ("", 0)


# Differential testing against dnslib: the scanner must find exactly the names dnslib decodes.

_label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=12)
_name = st.lists(_label, min_size=1, max_size=4).map(".".join)
_ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))


def _rr(kind: str, owner: str, target: str, address: str) -> dnslib.RR:
    rdata = {
        "A": lambda: dnslib.A(address),
        "AAAA": lambda: dnslib.AAAA("2001:db8::" + address.split(".")[-1]),
        "CNAME": lambda: dnslib.CNAME(target),
        "NS": lambda: dnslib.NS(target),
        "PTR": lambda: dnslib.PTR(target),
        "MX": lambda: dnslib.MX(target, 5),
        "SRV": lambda: dnslib.SRV(1, 1, 53, target),
        "SOA": lambda: dnslib.SOA(target, "hostmaster." + owner, (1, 2, 3, 4, 5)),
        "TXT": lambda: dnslib.TXT(target),
    }[kind]()
    return dnslib.RR(owner, getattr(dnslib.QTYPE, kind), rdata=rdata)


_record = st.builds(
    _rr, st.sampled_from(["A", "AAAA", "CNAME", "NS", "PTR", "MX", "SRV", "SOA", "TXT"]), _name, _name, _ipv4
)


@st.composite
def dns_messages(draw) -> bytes:
    qtype = getattr(dnslib.QTYPE, draw(st.sampled_from(["A", "AAAA", "MX", "TXT"])))
    record = dnslib.DNSRecord(dnslib.DNSHeader(id=draw(st.integers(0, 65535))), q=dnslib.DNSQuestion(draw(_name), qtype))
    if draw(st.booleans()):
        record = record.reply()
        for add in (record.add_answer, record.add_auth, record.add_ar):
            for rr in draw(st.lists(_record, max_size=3)):
                add(rr)
    return pack(record)


def dnslib_view(message: bytes):
    """Names (label tuples) and answer addresses as dnslib decodes them; None when dnslib refuses."""
    try:
        record = dnslib.DNSRecord.parse(message)
    except Exception:  # dnslib raises several types on damage; any refusal is "no opinion"
        return None
    names = {tuple(label.lower() for label in q.qname.label) for q in record.questions}
    addresses = set()
    for section, rrs in enumerate((record.rr, record.auth, record.ar), start=1):
        for rr in rrs:
            names.add(tuple(label.lower() for label in rr.rname.label))
            rd = rr.rdata
            if rr.rtype in (dnslib.QTYPE.CNAME, dnslib.QTYPE.NS, dnslib.QTYPE.PTR, dnslib.QTYPE.MX):
                names.add(tuple(label.lower() for label in rd.label.label))
            elif rr.rtype == dnslib.QTYPE.SRV:
                names.add(tuple(label.lower() for label in rd.target.label))
            elif rr.rtype == dnslib.QTYPE.SOA:
                names.add(tuple(label.lower() for label in rd.mname.label))
                names.add(tuple(label.lower() for label in rd.rname.label))
            elif section == 1 and rr.rtype in (dnslib.QTYPE.A, dnslib.QTYPE.AAAA):
                addresses.add(bytes(rd.data))
    names.discard(())  # the root (OPT owners) is not a name to check
    return names, addresses


def scanner_view(message: bytes):
    collector = NameCollector()
    damaged = collector.collect(message)
    names = set(collector.names)
    names.discard(())
    return damaged, names, set(collector.addresses)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(dns_messages())
def test_scanner_agrees_with_dnslib_on_generated_messages(message):
    expected_names, expected_addresses = dnslib_view(message)
    damaged, names, addresses = scanner_view(message)
    assert not damaged
    assert names == expected_names
    assert addresses == expected_addresses


def _longest_label_ok(message: bytes, names) -> bool:
    return all(len(label) < 64 for name in names for label in name)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(dns_messages(), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4),
       st.integers(0, 600))
def test_scanner_agrees_with_dnslib_on_mutated_messages(message, flips, cut):
    mutated = bytearray(message)
    for position, value in flips:
        mutated[position % len(mutated)] = value
    mutated = bytes(mutated[: max(12, len(mutated) - cut % (len(mutated) + 1))])
    damaged, names, addresses = scanner_view(mutated)  # must not raise, whatever the bytes
    view = dnslib_view(mutated)
    if view is None:
        return
    expected_names, expected_addresses = view
    if not damaged:
        assert names == expected_names
        assert addresses == expected_addresses
    else:
        # We are stricter than dnslib on what RFC 1035 forbids (labels of 64+ octets, which dnslib reads as
        # lengths, and names over 255 octets): then what we did decode must be a part of what dnslib found.
        assert names <= expected_names


@settings(max_examples=1000)
@given(st.binary(max_size=600))
def test_no_byte_string_makes_the_scanner_raise(data):
    scan = Matcher(
        [("f", DomainSet.from_names(["a", "*.b"]))], [("i", IPSet.from_entries(["0.0.0.0/0", "::/0"]))]
    ).scan
    damaged, matches = scan(data)
    assert isinstance(damaged, bool)
    NameCollector().collect(data)


# -- a message's names cost steps in proportion to its length ----------------------------------------------

from agent.core.scanner import read_names_once  # noqa: E402


class CountingBytes(bytes):
    """A message that counts how often the scanner reads it (each octet read, each slice taken)."""

    def __getitem__(self, key):
        self.reads = getattr(self, "reads", 0) + 1
        return super().__getitem__(key)


def chain_then_pointers_to_its_end(names: int, section: str) -> bytes:
    """127 questions, each a pointer to the one before (the last is 126 jumps deep), then `names` more names,
    each pointing to that last one (questions, or owners of answers: a label, then the pointer): every name
    is valid, and each costs 127 jumps when walked on its own."""
    body, previous = b"\x01a\x00\x00\x01\x00\x01", 12
    for _ in range(126):
        position = 12 + len(body)
        body += struct.pack("!H", 0xC000 | previous) + b"\x00\x01\x00\x01"
        previous = position
    return _then_pointing(body, 127, [previous] * names, section)


def pointers_into_a_run_of_labels(names: int, section: str) -> bytes:
    """A question of 127 one-octet labels, then `names` names pointing into it, from its second label on."""
    body = b"\x01a" * 127 + b"\x00" + b"\x00\x01\x00\x01"
    return _then_pointing(body, 1, [12 + 2 * (1 + index % 126) for index in range(names)], section)


def _then_pointing(questions: bytes, qdcount: int, targets: list[int], section: str) -> bytes:
    if section == "question":
        names = b"".join(struct.pack("!H", 0xC000 | target) + b"\x00\x01\x00\x01" for target in targets)
        return struct.pack("!HHHHHH", 1, 0x0100, qdcount + len(targets), 0, 0, 0) + questions + names
    # TXT records with empty rdata, owned by `x` under each target (a bare pointer would be skipped as checked).
    records = b"".join(b"\x01x" + struct.pack("!HHHIH", 0xC000 | target, 16, 1, 60, 0) for target in targets)
    return struct.pack("!HHHHHH", 1, 0x8180, qdcount, len(targets), 0, 0) + questions + records


@pytest.mark.parametrize("build", [chain_then_pointers_to_its_end, pointers_into_a_run_of_labels])
@pytest.mark.parametrize("section", ["question", "answer"])
def test_names_pointing_into_one_chain_are_each_walked_once_per_message(build, section):
    # Found by fuzzing (fuzz/dns.py): each name obeys every rule, so nothing was damaged, but each cost a
    # walk of the whole chain: 10,000 such names in one 64 KiB message took over a second to scan, and as
    # long again in NameCollector. Now a walk stops where an earlier one of the same message went through.
    counted = CountingBytes(build(2000, section))
    damaged, _ = Matcher().scan(counted)
    assert not damaged
    assert counted.reads <= 20 * 2127  # a few reads a name and its record; a walk per name was 250 or more
    collected = CountingBytes(build(2000, section))
    assert NameCollector().collect(collected) is False and collected.reads <= 20 * 2127


def _read_or_refuse(read, message: bytes, offset: int):
    try:
        return read(message, offset)
    except (Damaged, IndexError):
        return "refused"


@settings(max_examples=500)
@given(st.binary(max_size=300).map(lambda tail: HEADER_ONE_QUESTION + tail), st.randoms(use_true_random=False))
def test_names_read_once_per_message_are_the_names_read_name_reads(message, random):
    # Whatever the order in which a message's positions are read, and whatever was remembered before, the
    # remembering walk gives read_name's name and offset, and refuses what read_name refuses.
    pointers = [12 + 2 * i for i in range(20)] + [message.find(b"\xc0", 12) + 1 or 12]
    message = message + b"".join(struct.pack("!H", 0xC000 | p) + b"\x00" for p in pointers)
    positions = list(range(12, len(message)))
    random.shuffle(positions)
    walked: dict = {}
    for offset in positions:
        expected = _read_or_refuse(read_name, message, offset)
        assert _read_or_refuse(lambda m, o: read_names_once(m, o, walked), message, offset) == expected
