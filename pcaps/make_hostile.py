"""Generate the hostile captures of `pcaps/hostile/`: `python -m pcaps.make_hostile [--check]`.

Each capture holds one kind of hostile or broken input between ordinary queries for a feed entry, so a test
can check three things at once: the replay ends (promptly), the hostile message is counted as malformed,
and the events before and after it are all still reported. Every capture is described in `CAPTURES` below
and replayed by tests/test_hostile_captures.py against `hostile/feed.txt`.

Like the demo, the files are byte-for-byte reproducible; `--check` regenerates them into a temporary
directory and compares.
"""

from __future__ import annotations

import argparse
import filecmp
import io
import struct
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pcaps import wire

HERE = Path(__file__).resolve().parent / "hostile"
START_US = 1_795_810_296 * 1_000_000  # 2026-11-27T20:11:36Z, as the demo
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
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return list(files)


def check(directory: Path = HERE) -> list[str]:
    """Names of the committed files that differ from a fresh generation (empty when all match)."""
    with tempfile.TemporaryDirectory() as scratch:
        names = generate(Path(scratch))
        return [name for name in names
                if not (directory / name).is_file() or not filecmp.cmp(Path(scratch) / name, directory / name, shallow=False)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pcaps.make_hostile", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if pcaps/hostile/ is not what this script generates")
    parser.add_argument("--out", type=Path, default=HERE, help="directory to write into (default: pcaps/hostile/)")
    args = parser.parse_args(argv)
    if args.check:
        stale = check(args.out)
        for name in stale:
            print(f"pcaps/make_hostile: {args.out / name} differs from a fresh generation; "
                  f"run `python -m pcaps.make_hostile` and commit", file=sys.stderr)
        return 1 if stale else 0
    for name in generate(args.out):
        print(args.out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
