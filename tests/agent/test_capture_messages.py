"""`Decoder.capture_messages` (records walked in the decoding loop) must equal `messages(reader.frames())`."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from agent.core.decode import Decoder
from agent.core.pcapformat import FrameReader
from pcaps import wire

from tests.corpus import CORPUS, MANIFEST
FILES = [CORPUS / entry["file"] for entry in MANIFEST]
FILES += [Path(__file__).resolve().parents[2] / "pcaps" / "demo.pcapng"]


def both_ways(data: bytes, ports=frozenset({53, 8053})):
    layered_reader, fused_reader = FrameReader(data), FrameReader(data)
    layered_decoder, fused_decoder = Decoder(ports), Decoder(ports)
    layered = list(layered_decoder.messages(layered_reader.frames()))
    fused = list(fused_decoder.capture_messages(fused_reader))
    assert fused == layered
    assert fused_decoder.stats.as_dict() == layered_decoder.stats.as_dict()
    assert (fused_reader.truncated, fused_reader.error) == (layered_reader.truncated, layered_reader.error)
    return fused


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
def test_same_messages_on_real_captures(path):
    both_ways(path.read_bytes())


def _classic_capture() -> bytes:
    out = io.BytesIO()
    writer = wire.PcapWriter(out)
    query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x04evil\x07example\x00\x00\x01\x00\x01"
    src, dst = wire.ip_bytes("10.244.1.10"), wire.ip_bytes("10.96.0.10")
    mac = wire.mac_bytes("02:00:00:00:00:01")
    for index in range(50):
        writer.write(1_000_000 * index, wire.udp_frame(mac, mac, src, dst, 40000 + index, 53, query))
    writer.write(60_000_000, wire.udp_frame(mac, mac, src, dst, 40000, 80, query))  # not DNS
    writer.write(61_000_000, b"\x00" * 20)  # a runt
    writer.flush()
    return out.getvalue()


@pytest.mark.parametrize("cut", [0, 1, 10, 17, 40])
def test_same_messages_and_verdict_on_cut_captures(cut):
    data = _classic_capture()
    found = both_ways(data[: len(data) - cut] if cut else data)
    assert len(found) == 50  # the cuts fall in the two records after the DNS ones


def test_corrupt_record_header_stops_both_alike():
    data = bytearray(_classic_capture())
    data[24 + 8 : 24 + 12] = (10**9).to_bytes(4, "little")  # first record claims a gigabyte
    assert both_ways(bytes(data)) == []


def test_known_quiet_messages_are_counted_but_not_handed_on():
    out = io.BytesIO()
    writer = wire.PcapWriter(out)
    quiet_query = b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x04good\x07example\x00\x00\x01\x00\x01"
    other_query = b"\x00\x02\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x04evil\x07example\x00\x00\x01\x00\x01"
    src, dst = wire.ip_bytes("10.244.1.10"), wire.ip_bytes("10.96.0.10")
    mac = wire.mac_bytes("02:00:00:00:00:01")
    for index in range(20):  # all within one second of capture time, then one more a second later
        writer.write(10_000 * index, wire.udp_frame(mac, mac, src, dst, 40000 + index, 53, quiet_query))
        writer.write(10_000 * index + 5, wire.udp_frame(mac, mac, src, dst, 40000 + index, 53, other_query))
    writer.write(1_500_000, wire.udp_frame(mac, mac, src, dst, 41000, 53, quiet_query))
    writer.flush()
    quiet = object()
    known = {quiet_query[2:]: quiet, other_query[2:]: "interesting"}.get
    decoder = Decoder(frozenset({53}))
    handed_on = list(decoder.capture_messages(FrameReader(out.getvalue()), known, quiet))
    payloads = [message[-1] for message in handed_on]
    # Every interesting message; of the quiet ones, the first of each second of capture time only.
    assert payloads.count(other_query) == 20
    assert payloads.count(quiet_query) == 2
    assert decoder.stats.udp_messages == 41  # counted all the same
