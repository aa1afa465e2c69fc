"""Capture files: `FrameReader` over classic pcap and pcapng, and the decoder's own classic-pcap loop.

Inputs are whole capture files, seeded with windows of every capture of the repository and pcapng files
with other timestamp resolutions and offsets. The one documented rejection is `CaptureFormatError` (not a
capture at all); anything damaged inside a capture stops the reading, with `error` saying why. Cross-checks:
every timestamp yielded is one an event can carry (the year 1970 to 9999); the frames written back with
`pcaps/wire.py`'s writers read back the same; and `Decoder.capture_messages` walks the same records.
"""

from __future__ import annotations

import io

from agent.core.decode import Decoder
from agent.core.pcapformat import LATEST_TIMESTAMP, CaptureFormatError, FrameReader
from fuzz import seeds
from fuzz.oracle import Target, bounded, check
from pcaps import wire


def read_one(data: bytes) -> None:
    try:
        reader = FrameReader(data)
    except CaptureFormatError:
        return
    frames = list(reader.frames())
    check(reader.error is not None or not reader.truncated, "truncated without saying why")
    for ts, linktype, frame in frames:
        check(0.0 <= ts < LATEST_TIMESTAMP, f"a timestamp out of range: {ts!r}")
        check(0 <= linktype <= 0xFFFF and isinstance(frame, bytes), "a bad link type or frame")
    check(reader.bad_timestamps >= 0, "a negative count")
    _round_trip(reader, frames)
    walked = FrameReader(data)
    decoder = Decoder(seeds.DNS_PORTS)
    for _message in decoder.capture_messages(walked):
        pass
    check(decoder.stats.frames + walked.bad_timestamps == len(frames) + reader.bad_timestamps,
          "capture_messages and frames() read different records")
    check(walked.error == reader.error, f"capture_messages stopped otherwise: {walked.error!r} / {reader.error!r}")


def _round_trip(reader: FrameReader, frames) -> None:
    out = io.BytesIO()
    if reader.linktype is not None:
        writer = wire.PcapWriter(out, reader.linktype)
        for ts, _linktype, frame in frames:
            writer.write(round(ts * 1_000_000), frame)
        writer.flush()
    else:
        writer = wire.PcapngWriter(out)
        interfaces: dict[int, int] = {}
        for ts, linktype, frame in frames:
            if linktype not in interfaces:
                interfaces[linktype] = writer.add_interface(f"if{len(interfaces)}", linktype)
            writer.write(round(ts * 1_000_000), frame, interfaces[linktype])
    again = FrameReader(out.getvalue())
    copied = list(again.frames())
    check(again.error is None, f"reading back what was written failed: {again.error}")
    check([(lt, f) for _ts, lt, f in copied] == [(lt, f) for _ts, lt, f in frames], "frames differ when read back")
    check(all(abs(a[0] - b[0]) <= 1e-6 + abs(b[0]) * 1e-15 for a, b in zip(copied, frames)),
          "timestamps differ by more than a microsecond when read back")


TARGETS = [
    Target("pcap", "agent/core/pcapformat.py: FrameReader over pcap and pcapng, and Decoder.capture_messages",
           bounded(read_one), seeds.capture_seeds),
]
