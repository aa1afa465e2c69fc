"""Frames to DNS messages: `Decoder.messages` over every link type it reads, IP fragments, TCP streams.

An input is a link type and a run of frames (`fuzz.seeds.encode_frames`), seeded with windows of every
capture's frames, their IP packets behind each other link type, and fragment trains. The decoder documents
no exception at all: whatever the bytes, it counts them. Cross-checks: every message it yields is a DNS
message of a watched port with raw addresses of one family; it counted every frame; and for Ethernet, the
classic-pcap loop of `capture_messages` (its own inline copy of the hot path) yields what `messages` does.
"""

from __future__ import annotations

import io

from agent.core.decode import Decoder, DecodeLimits
from agent.core.pcapformat import FrameReader
from fuzz import seeds
from fuzz.oracle import Target, bounded, check
from pcaps import wire

START_US = 1_795_810_296_000_000
# Small bounds, so that a few kilobytes of input reach the eviction and give-up paths too.
LIMITS = DecodeLimits(max_fragment_datagrams=4, max_fragment_bytes=2048, fragment_timeout=0.5, max_tcp_streams=4,
                      max_tcp_stream_bytes=1024, tcp_idle_timeout=0.5)


def _check_messages(messages, ports) -> None:
    for ts, src, sport, dst, dport, proto, payload in messages:
        check(proto in (6, 17), f"a message over IP protocol {proto}")
        check(sport in ports or dport in ports, f"a message between ports {sport} and {dport}")
        check(len(src) == len(dst) and len(src) in (4, 16), "a message with addresses of mixed or odd size")
        check(isinstance(payload, bytes) and payload, "an empty or non-bytes DNS payload")
        check(isinstance(ts, float), "a timestamp that is not a float")


def decode_one(data: bytes) -> None:
    linktype, steps = seeds.decode_frames(data)
    frames, now = [], START_US
    for step, frame in steps:
        now += step * 1000
        frames.append((now // 1_000_000 + now % 1_000_000 / 1_000_000, linktype, frame))
    decoder = Decoder(seeds.DNS_PORTS, LIMITS)
    messages = list(decoder.messages(frames))
    _check_messages(messages, seeds.DNS_PORTS)
    check(decoder.stats.frames == len(frames), "the decoder did not count every frame")
    if linktype != 1:
        return
    out = io.BytesIO()
    writer = wire.PcapWriter(out)
    for (step, frame), (ts, _linktype, _frame) in zip(steps, frames):
        writer.write(round(ts * 1_000_000), frame)
    writer.flush()
    inline = Decoder(seeds.DNS_PORTS, LIMITS)
    inline_messages = list(inline.capture_messages(FrameReader(out.getvalue())))
    check(inline_messages == messages, "capture_messages and messages yield different messages for one capture")
    check(inline.stats.as_dict() == decoder.stats.as_dict(), "capture_messages and messages count differently")


TARGETS = [
    Target("decode", "agent/core/decode.py, fragments.py, tcpstreams.py: Decoder.messages over every link type",
           bounded(decode_one), seeds.frame_seeds),
]
