"""Generate the hostile captures of `pcaps/hostile/`: `python -m pcaps.make_hostile [--check]`.

Each capture holds one kind of hostile or broken input between ordinary queries for a feed entry, so a test
can check three things at once: the replay ends (promptly), the hostile message is counted as malformed,
and the events before and after it are all still reported. Every capture is described in `CAPTURES` below
and replayed by tests/test_hostile_captures.py against `hostile/feed.txt`.

The timestamp captures (`TIMESTAMP_CAPTURES`) hold one packet whose time cannot be a capture time, between
ordinary queries: the replay skips it and counts it as malformed, and the events of the packets around it
(one of them aggregated, pending until the end) all come out.

Like the demo, the files are byte-for-byte reproducible; `--check` regenerates them into a temporary
directory and compares.
"""

from __future__ import annotations

import io
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pcaps import wire
from pcaps.generated import generator_main, stale_files
from pcaps.synth import START_US

HERE = Path(__file__).resolve().parent / "hostile"
FEED = ("# the names the hostile captures ask for: their ordinary queries, and names decoded intact before damage\n"
        "before.evil.example\nafter.evil.example\nloop.evil.example\na.b.evil.example\n")
POD_MAC, GATEWAY_MAC = wire.mac_bytes("0a:58:0a:f4:01:0a"), wire.mac_bytes("ee:ee:ee:ee:ee:ee")
CLIENT, SERVER = wire.ip_bytes("10.244.1.10"), wire.ip_bytes("10.96.0.10")


def header(qid: int, flags: int, qd: int, an: int = 0, ns: int = 0, ar: int = 0) -> bytes:
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


def qname(name: str) -> bytes:
    return b"".join(bytes((len(label),)) + label.encode() for label in name.split(".")) + b"\x00"


def query(qid: int, name: str) -> bytes:
    return header(qid, 0x0100, 1) + qname(name) + b"\x00\x01\x00\x01"


def label_then_pointer_to_itself() -> bytes:
    """A question that is the label `abc` followed by a pointer back to that label: the name never ends."""
    return header(0x4242, 0x0100, 1) + b"\x03abc\xc0\x0c" + b"\x00\x01\x00\x01"


def answer_looping_after_intact_question() -> bytes:
    """A response whose question names a feed entry and whose answer's owner loops: the question still counts."""
    question = qname("loop.evil.example") + b"\x00\x01\x00\x01"
    owner_at = 12 + len(question)
    # The owner is a label followed by a pointer back to that label.
    owner = b"\x01x" + struct.pack("!H", 0xC000 | owner_at)
    record = owner + struct.pack("!HHIH", 1, 1, 60, 4) + bytes((198, 51, 100, 7))
    return header(0x4343, 0x8180, 1, an=1) + question + record


def pointer_chain_through_earlier_names() -> bytes:
    """Two names that point into each other's labels; the second's pointer lands after its own start."""
    first = qname("a.b.evil.example")
    # The second question: a label, then a pointer to the first question's `b` (before it: valid), whose
    # walk reaches the end of the first name: a valid name. The third: a pointer to its own label: a loop.
    second_at = 12 + len(first) + 4
    second = b"\x01c" + struct.pack("!H", 0xC000 | 14)
    third_at = second_at + len(second) + 4
    third = b"\x01d\x01e" + struct.pack("!H", 0xC000 | (third_at + 2))
    body = first + b"\x00\x01\x00\x01" + second + b"\x00\x01\x00\x01" + third + b"\x00\x01\x00\x01"
    return header(0x4444, 0x0100, 3) + body


def name_growing_past_255_octets() -> bytes:
    """90 questions, each a 3-octet label and a pointer to the one before: the 85th passes 255 octets, no loop."""
    body = b"\x02aa\x00\x00\x01\x00\x01"
    previous = 12
    for _ in range(89):
        position = 12 + len(body)
        body += b"\x02ab" + struct.pack("!H", 0xC000 | previous) + b"\x00\x01\x00\x01"
        previous = position
    return header(0x4545, 0x0100, 90) + body


@dataclass(frozen=True)
class Hostile:
    file: str
    what: str
    message: Callable[[], bytes]
    matches_inside: tuple[str, ...] = ()
    """Feed names the hostile message itself still matches (decoded intact before its damage)."""


CAPTURES = (
    Hostile("pointer-loop.pcap", "a question name that loops through a pointer to its own label",
            label_then_pointer_to_itself),
    Hostile("answer-loop.pcap", "a response whose intact question matches and whose answer owner loops",
            answer_looping_after_intact_question, ("loop.evil.example",)),
    Hostile("pointer-into-itself.pcap", "a third question whose pointer lands inside its own name",
            pointer_chain_through_earlier_names, ("a.b.evil.example",)),
    Hostile("name-over-255.pcap", "questions whose pointer chains grow one name past 255 octets",
            name_growing_past_255_octets),
)
FEED_FILE = "feed.txt"
FLOOD = 200  # copies of the hostile message in each capture, as one pod repeating it


@dataclass(frozen=True)
class BadTimestamp:
    file: str
    what: str
    build: Callable[[list[tuple[int, bytes]], bytes], bytes]
    """Writes the capture: the ordinary (time in µs, frame) pairs, and the frame to stamp with a bad time."""


def _pcapng_block(block_type: int, body: bytes) -> bytes:
    return struct.pack("<II", block_type, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))


def _interface(options: bytes = b"") -> bytes:
    """An Ethernet Interface Description Block with these options (each already padded)."""
    return _pcapng_block(1, struct.pack("<HHI", wire.LINKTYPE_ETHERNET, 0, 262144) + options + b"\x00" * 4)


def _packet(interface: int, ticks: int, frame: bytes) -> bytes:
    body = struct.pack("<IIIII", interface, ticks >> 32, ticks & 0xFFFFFFFF, len(frame), len(frame))
    return _pcapng_block(6, body + frame + b"\x00" * (-len(frame) % 4))


def _pcapng(good: list[tuple[int, bytes]], bad_interface_options: bytes | None, bad_ticks: int, bad: bytes) -> bytes:
    """The good packets on interface 0 (µs), the bad one after the second of them, on interface 1 when it has
    options of its own, else on interface 0."""
    out = io.BytesIO()
    wire.PcapngWriter(out)  # the section header
    out.write(_interface())
    bad_on = 0
    if bad_interface_options is not None:
        out.write(_interface(bad_interface_options))
        bad_on = 1
    for index, (ts, frame) in enumerate(good):
        out.write(_packet(0, ts, frame))
        if index == 1:
            out.write(_packet(bad_on, bad_ticks, bad))
    return out.getvalue()


def after_year_9999(good, bad) -> bytes:
    # 10000-01-01T00:00:00Z in microseconds, the interface's default resolution: fits the 64-bit field easily.
    return _pcapng(good, None, 253_402_300_800 * 1_000_000, bad)


def offset_before_1970(good, bad) -> bytes:
    # if_tsoffset (option 14, signed seconds) of minus 60 years: the packet's time lands in 1966.
    return _pcapng(good, struct.pack("<HHq", 14, 8, -60 * 365 * 86400), START_US, bad)


def resolution_beyond_any_clock(good, bad) -> bytes:
    # if_tsresol (option 9) of 10^-100 s: the 7-bit exponent allows it, no clock has it; its times are unknowable.
    return _pcapng(good, struct.pack("<HHB3x", 9, 1, 100), START_US, bad)


def fraction_over_a_second(good, bad) -> bytes:
    out = io.BytesIO()
    writer = wire.PcapWriter(out)
    for index, (ts, frame) in enumerate(good):
        writer.write(ts, frame)
        if index == 1:
            writer.flush()
            # A classic record header by hand: 1.5 million microseconds is no fraction of a second.
            out.write(struct.pack("<IIII", START_US // 1_000_000, 1_500_000, len(bad), len(bad)) + bad)
    writer.flush()
    return out.getvalue()


TIMESTAMP_CAPTURES = (
    BadTimestamp("ts-after-9999.pcapng", "an enhanced packet block stamped in the year 10000", after_year_9999),
    BadTimestamp("ts-before-1970.pcapng", "an interface whose if_tsoffset puts its packet in 1966", offset_before_1970),
    BadTimestamp("ts-resolution-1e-100.pcapng", "an interface whose if_tsresol is 10^-100 s", resolution_beyond_any_clock),
    BadTimestamp("ts-usec-over-a-second.pcap", "a classic record with 1,500,000 microseconds", fraction_over_a_second),
)
# Around the bad packet: `before` twice (one event, its second count pending until the end), then `after`.
TIMESTAMP_NEIGHBOURS = ("before.evil.example", "before.evil.example", "after.evil.example")
TIMESTAMP_BAD_NAME = "loop.evil.example"  # in the feed: reported if the bad packet were not skipped


def timestamp_capture_bytes(capture: BadTimestamp) -> bytes:
    good = [(START_US + index * 1000, wire.udp_frame(POD_MAC, GATEWAY_MAC, CLIENT, SERVER, 40000, 53, query(index + 1, name)))
            for index, name in enumerate(TIMESTAMP_NEIGHBOURS)]
    bad = wire.udp_frame(POD_MAC, GATEWAY_MAC, CLIENT, SERVER, 40009, 53, query(9, TIMESTAMP_BAD_NAME))
    return capture.build(good, bad)


def capture_bytes(hostile: Hostile) -> bytes:
    """The ordinary query, the hostile message 200 times (a flood from one pod), the ordinary query again."""
    out = io.BytesIO()
    writer = wire.PcapWriter(out)
    ts = START_US
    messages = [query(1, "before.evil.example")] + [hostile.message()] * FLOOD + [query(2, "after.evil.example")]
    for index, message in enumerate(messages):
        port = 40000 + index
        if message[2] & 0x80:  # a response: from the server back to the pod
            frame = wire.udp_frame(GATEWAY_MAC, POD_MAC, SERVER, CLIENT, 53, port, message)
        else:
            frame = wire.udp_frame(POD_MAC, GATEWAY_MAC, CLIENT, SERVER, port, 53, message)
        writer.write(ts, frame)
        ts += 1000
    writer.flush()
    return out.getvalue()


def generate(directory: Path) -> list[str]:
    """Write every hostile capture and the feed into `directory`; returns their names."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {FEED_FILE: FEED.encode()} | {hostile.file: capture_bytes(hostile) for hostile in CAPTURES}
    files |= {capture.file: timestamp_capture_bytes(capture) for capture in TIMESTAMP_CAPTURES}
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return list(files)


def check(directory: Path = HERE) -> list[str]:
    """Names of the committed files that differ from a fresh generation (empty when all match)."""
    return stale_files(generate, directory)


def main(argv: list[str] | None = None) -> int:
    return generator_main(argv, module="make_hostile", description=__doc__.splitlines()[0], generate=generate, default=HERE)


if __name__ == "__main__":
    sys.exit(main())
