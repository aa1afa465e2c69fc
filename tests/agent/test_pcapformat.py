"""FrameReader: classic pcap and pcapng, checked against scapy's readers and hand-built files."""

from __future__ import annotations

import io
import mmap
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import PcapNgWriter, RawPcapNgReader, RawPcapReader

from agent.core.pcapformat import CaptureFormatError, FrameReader
from dnswatch.errors import BadInput
from pcaps import wire

from tests.corpus import CORPUS
FRAMES = [bytes([i]) * (14 + i * 7) for i in range(5)]


def corpus_files() -> list[Path]:
    return sorted(CORPUS.glob("*.pcap*"))


def read_all(buf) -> tuple[list[tuple[float, int, bytes]], FrameReader]:
    reader = FrameReader(buf)
    return list(reader.frames()), reader


# -- classic pcap -----------------------------------------------------------------------------------------

def classic(order: str = "<", nano: bool = False, linktype: int = 1, frames=FRAMES, magic: int | None = None,
            record_extra: bytes = b"") -> bytes:
    if magic is None:
        magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype)]
    for i, frame in enumerate(frames):
        fraction = 123_456_789 + i if nano else 123_456 + i
        out.append(struct.pack(order + "IIII", 1_700_000_000 + i, fraction, len(frame), len(frame) + 3))
        out.append(record_extra + frame)
    return b"".join(out)


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_classic_pcap_in_both_byte_orders_and_resolutions(order, nano):
    frames, reader = read_all(classic(order, nano, linktype=113))
    assert [f for _, _, f in frames] == FRAMES
    assert {lt for _, lt, _ in frames} == {113}
    first = 1_700_000_000 + (0.123456789 if nano else 0.123456)
    assert frames[0][0] == pytest.approx(first, abs=1e-9)
    assert frames[4][0] == pytest.approx(first + 4 + (4e-9 if nano else 4e-6), abs=1e-9)
    assert not reader.truncated and reader.error is None


def test_link_type_field_ignores_the_fcs_bits_above_16():
    frames, _ = read_all(classic(linktype=(1 << 28) | (1 << 26) | 1))
    assert {lt for _, lt, _ in frames} == {1}


def test_modified_pcap_records_carry_eight_more_header_bytes():
    frames, reader = read_all(classic(magic=0xA1B2CD34, record_extra=b"\x00" * 8))
    assert [f for _, _, f in frames] == FRAMES and reader.error is None


def test_empty_capture_has_no_frames_and_no_error():
    frames, reader = read_all(classic(frames=[]))
    assert frames == [] and reader.error is None and not reader.truncated


def test_truncated_final_record_yields_the_others_and_says_so():
    data = classic()
    frames, reader = read_all(data[:-5])
    assert [f for _, _, f in frames] == FRAMES[:-1]
    assert reader.truncated and "ends inside the record" in reader.error


def test_truncated_record_header():
    data = classic()
    frames, reader = read_all(data + b"\x01\x02\x03")
    assert len(frames) == len(FRAMES) and reader.truncated and "record header" in reader.error


def test_implausible_record_length_is_corruption_not_truncation():
    data = bytearray(classic())
    struct.pack_into("<I", data, 24 + 8, 0x7FFFFFFF)  # the first record's captured length
    frames, reader = read_all(bytes(data))
    assert frames == [] and not reader.truncated and "corrupt" in reader.error


@pytest.mark.parametrize("data", [b"", b"\xd4\xc3", b"GET / HTTP/1.1\r\n\r\n", b"\x00" * 64, b"PK\x03\x04" + b"\x00" * 40])
def test_not_a_capture_raises_a_clear_bad_input(data):
    with pytest.raises(CaptureFormatError) as raised:
        FrameReader(data)
    assert isinstance(raised.value, BadInput)
    assert "capture" in str(raised.value) or "pcap" in str(raised.value)


def test_classic_header_cut_short_raises():
    with pytest.raises(CaptureFormatError, match="cut short"):
        FrameReader(classic()[:20])


@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_buffers_other_than_bytes_give_bytes_frames(kind):
    frames, _ = read_all(kind(classic()))
    assert all(type(f) is bytes for _, _, f in frames) and [f for _, _, f in frames] == FRAMES


def test_reads_an_mmap(tmp_path):
    path = tmp_path / "c.pcap"
    path.write_bytes(classic())
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        frames, _ = read_all(mapped)
        assert [f for _, _, f in frames] == FRAMES and all(type(f) is bytes for _, _, f in frames)


def test_every_corpus_capture_matches_scapys_reader():
    for path in corpus_files():
        ours, reader = read_all(path.read_bytes())
        with RawPcapReader(str(path)) as theirs_reader:
            theirs = [(meta.sec + meta.usec / 1e6, theirs_reader.linktype, data) for data, meta in theirs_reader]
        assert reader.error is None, path.name
        assert [(lt, f) for _, lt, f in ours] == [(lt, f) for _, lt, f in theirs], path.name
        assert [ts for ts, _, _ in ours] == pytest.approx([ts for ts, _, _ in theirs], abs=1e-6), path.name


def test_matches_the_project_pcap_writer():
    out = io.BytesIO()
    writer = wire.PcapWriter(out, linktype=101)
    for i, frame in enumerate(FRAMES):
        writer.write(1_700_000_000_000_000 + i * 1_500_001, frame)
    writer.flush()
    frames, _ = read_all(out.getvalue())
    assert frames == [((1_700_000_000_000_000 + i * 1_500_001) / 1e6, 101, f) for i, f in enumerate(FRAMES)]


# -- pcapng ------------------------------------------------------------------------------------------------

def block(order: str, block_type: int, body: bytes) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    total = 12 + len(body)
    return struct.pack(order + "II", block_type, total) + body + struct.pack(order + "I", total)


def option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)


def shb(order: str) -> bytes:
    return block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def idb(order: str, linktype: int, tsresol: int | None = None, tsoffset: int | None = None, snaplen: int = 0) -> bytes:
    options = b""
    if tsresol is not None:
        options += option(order, 9, bytes([tsresol]))
    if tsoffset is not None:
        options += option(order, 14, struct.pack(order + "q", tsoffset))
    if options:
        options += struct.pack(order + "HH", 0, 0)
    return block(order, 1, struct.pack(order + "HHI", linktype, 0, snaplen) + options)


def epb(order: str, interface: int, ticks: int, frame: bytes) -> bytes:
    return block(order, 6, struct.pack(order + "IIIII", interface, ticks >> 32, ticks & 0xFFFFFFFF, len(frame),
                                       len(frame) + 10) + frame)


def spb(order: str, frame: bytes, origlen: int | None = None) -> bytes:
    return block(order, 3, struct.pack(order + "I", len(frame) if origlen is None else origlen) + frame)


def obsolete_pb(order: str, interface: int, ticks: int, frame: bytes) -> bytes:
    return block(order, 2, struct.pack(order + "HHIIII", interface, 0, ticks >> 32, ticks & 0xFFFFFFFF,
                                       len(frame), len(frame)) + frame)


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng_interfaces_resolutions_and_packet_block_kinds(order):
    data = b"".join([
        shb(order),
        idb(order, 1),  # default resolution: microseconds
        block(order, 4, b"\x00\x00\x00\x00"),  # a name resolution block: skipped
        idb(order, 101, tsresol=9),  # nanoseconds
        idb(order, 113, tsresol=0x80 | 10, tsoffset=1000),  # 2^-10 s, plus 1000 s
        epb(order, 0, 1_700_000_000_250_000, FRAMES[0]),
        epb(order, 1, 1_700_000_001_000_000_001, FRAMES[1]),
        epb(order, 2, 1024 * 5 + 512, FRAMES[2]),
        block(order, 0x80000BAD, b"custom block"),  # unknown: skipped
        spb(order, FRAMES[3]),
        obsolete_pb(order, 1, 2_000_000_000_000_000_000, FRAMES[4]),
    ])
    frames, reader = read_all(data)
    assert reader.error is None
    assert [(lt, f) for _, lt, f in frames] == [(1, FRAMES[0]), (101, FRAMES[1]), (113, FRAMES[2]), (1, FRAMES[3]),
                                                (101, FRAMES[4])]
    stamps = [ts for ts, _, _ in frames]
    assert stamps[0] == 1_700_000_000.25
    assert stamps[1] == pytest.approx(1_700_000_001.000000001, abs=1e-6)
    assert stamps[2] == 1005.5
    assert stamps[3] == stamps[2]  # a simple packet block has no timestamp: it inherits the previous one
    assert stamps[4] == 2_000_000_000.0


def test_pcapng_sections_reset_interfaces_and_may_switch_byte_order():
    data = b"".join([
        shb("<"), idb("<", 1), epb("<", 0, 1_000_000, FRAMES[0]),
        shb(">"), idb(">", 229, tsresol=3), epb(">", 0, 2_500, FRAMES[1]),
        shb("<"), idb("<", 276), epb("<", 0, 3_000_000, FRAMES[2]),
    ])
    frames, reader = read_all(data)
    assert reader.error is None
    assert frames == [(1.0, 1, FRAMES[0]), (2.5, 229, FRAMES[1]), (3.0, 276, FRAMES[2])]


def test_simple_packet_block_is_cut_to_the_snaplen():
    data = shb("<") + idb("<", 1, snaplen=16) + spb("<", FRAMES[3], origlen=100)
    frames, _ = read_all(data)
    assert frames[0][2] == FRAMES[3][:16]


def test_pcapng_truncated_final_block():
    data = shb("<") + idb("<", 1) + epb("<", 0, 1, FRAMES[0]) + epb("<", 0, 2, FRAMES[1])
    frames, reader = read_all(data[:-6])
    assert [f for _, _, f in frames] == [FRAMES[0]]
    assert reader.truncated and reader.error


@pytest.mark.parametrize("damage", ["trailing length", "odd length", "undefined interface", "caplen too big"])
def test_pcapng_corrupt_block_stops_cleanly(damage):
    good = shb("<") + idb("<", 1) + epb("<", 0, 1, FRAMES[0])
    bad = bytearray(epb("<", 0, 2, FRAMES[1]))
    if damage == "trailing length":
        struct.pack_into("<I", bad, len(bad) - 4, len(bad) + 4)
    elif damage == "odd length":
        struct.pack_into("<I", bad, 4, len(bad) - 3)
    elif damage == "undefined interface":
        struct.pack_into("<I", bad, 8, 7)
    else:
        struct.pack_into("<I", bad, 20, len(bad))
    frames, reader = read_all(good + bytes(bad) + epb("<", 0, 3, FRAMES[2]))
    assert [f for _, _, f in frames] == [FRAMES[0]]
    assert not reader.truncated and "corrupt" in reader.error


def test_pcapng_with_a_bad_byte_order_magic_is_not_a_capture():
    data = bytearray(shb("<"))
    data[8:12] = b"ABCD"
    with pytest.raises(CaptureFormatError, match="byte-order"):
        FrameReader(bytes(data))


def test_matches_scapys_pcapng_writer_and_reader(tmp_path):
    path = tmp_path / "scapy.pcapng"
    packets = [Ether() / IP(dst=f"10.0.0.{i}") / UDP(dport=53) / Raw(b"q" * i) for i in range(20)]
    for i, packet in enumerate(packets):
        packet.time = 1_700_000_000.5 + i * 0.001001
    writer = PcapNgWriter(str(path))
    for packet in packets:
        writer.write(packet)
    writer.close()
    ours, reader = read_all(path.read_bytes())
    theirs = [(((m.tshigh << 32) | m.tslow) / m.tsresol, m.linktype, data) for data, m in RawPcapNgReader(str(path))]
    assert reader.error is None and ours == theirs


def test_matches_the_project_pcapng_writer():
    out = io.BytesIO()
    writer = wire.PcapngWriter(out)
    eth = writer.add_interface("eth0")
    raw = writer.add_interface("tun0", linktype=101)
    writer.write(1_000_000, FRAMES[0], eth)
    writer.write(2_000_001, FRAMES[1], raw, comment="a comment option")
    frames, reader = read_all(out.getvalue())
    assert reader.error is None and frames == [(1.0, 1, FRAMES[0]), (2.000001, 101, FRAMES[1])]


# -- never anything but CaptureFormatError ----------------------------------------------------------------

def _drain(data: bytes) -> None:
    try:
        reader = FrameReader(data)
    except CaptureFormatError:
        return
    for _ in reader.frames():
        pass


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise_anything_but_capture_format_error(data):
    _drain(data)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([classic(frames=[])[:24], classic(">", True, frames=[])[:24], shb("<"), shb(">"),
                        shb("<") + idb("<", 1), shb(">") + idb(">", 1, tsresol=9)]),
       st.binary(max_size=300))
def test_valid_headers_followed_by_garbage_never_raise(header, tail):
    _drain(header + tail)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=400), st.binary(min_size=1, max_size=4))
def test_damaged_valid_capture_never_raises(position, garbage):
    data = bytearray(shb("<") + idb("<", 1, tsresol=9) + epb("<", 0, 5, FRAMES[1]) + spb("<", FRAMES[2])
                     + obsolete_pb("<", 0, 7, FRAMES[3]) + epb("<", 0, 9, FRAMES[4]))
    position %= len(data)
    data[position:position + len(garbage)] = garbage
    _drain(bytes(data))


# -- timestamps that cannot be capture times --------------------------------------------------------------

from agent.core.decode import Decoder  # noqa: E402 - only the classic-pcap loop below needs it
from agent.core.pcapformat import LATEST_TIMESTAMP  # noqa: E402


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng_packets_out_of_the_years_1970_to_9999_are_skipped_and_counted(order):
    data = b"".join([
        shb(order),
        idb(order, 1),
        idb(order, 1, tsoffset=-2_000_000_000),  # every packet lands before 1970
        idb(order, 1, tsresol=100),  # 10^-100 s: no clock has it, the times cannot be read
        idb(order, 1, tsresol=0x80 | 100),  # 2^-100 s: the same
        idb(order, 1, tsoffset=2**62),  # an absurd offset: beyond 9999
        epb(order, 0, 1_700_000_000_000_000, FRAMES[0]),
        epb(order, 0, 2**64 - 1, FRAMES[1]),  # the largest 64-bit stamp: the year 586,912
        epb(order, 0, int(LATEST_TIMESTAMP) * 1_000_000, FRAMES[1]),  # the last second of 9999 is already out
        epb(order, 1, 1_700_000_000_000_000, FRAMES[1]),
        epb(order, 2, 1_700_000_000, FRAMES[1]),
        epb(order, 3, 1_700_000_000, FRAMES[1]),
        epb(order, 4, 1, FRAMES[1]),
        obsolete_pb(order, 1, 1_700_000_000_000_000, FRAMES[1]),
        spb(order, FRAMES[2]),  # no time of its own: the last good packet's
        epb(order, 0, int(LATEST_TIMESTAMP - 1) * 1_000_000, FRAMES[3]),
    ])
    frames, reader = read_all(data)
    assert reader.error is None and reader.bad_timestamps == 7
    assert frames == [(1_700_000_000.0, 1, FRAMES[0]), (1_700_000_000.0, 1, FRAMES[2]),
                      (LATEST_TIMESTAMP - 1, 1, FRAMES[3])]


@pytest.mark.parametrize("nano", [False, True])
def test_classic_records_whose_fraction_is_a_second_or_more_are_skipped_and_counted(nano):
    data = bytearray(classic(nano=nano))
    per_second = 1_000_000_000 if nano else 1_000_000
    at = 24
    for index, frame in enumerate(FRAMES):
        if index in (1, 3):
            struct.pack_into("<I", data, at + 4, per_second + index * 7)
        at += 16 + len(frame)
    frames, reader = read_all(bytes(data))
    assert [f for _, _, f in frames] == [FRAMES[0], FRAMES[2], FRAMES[4]]
    assert reader.bad_timestamps == 2 and reader.error is None
    # The decoder's own loop over classic records skips and counts them the same way.
    walked = FrameReader(bytes(data))
    decoder = Decoder()
    assert list(decoder.capture_messages(walked)) == []
    assert walked.bad_timestamps == 2 and decoder.stats.frames == 3
