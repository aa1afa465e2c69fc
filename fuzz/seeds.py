"""Seed corpora, built when a run starts from the real captures and feeds of `pcaps/` (nothing is committed).

A fuzzer mutates what it is given: seeds that already reach deep (a TCP stream, a fragment, a compressed
response, a hosts file) let a short run explore past the first header check. Each target's inputs stay under
its `max_len` (4 KiB by default): captures are cut into windows of a few records, so every input stays a
fraction of the 50 ms budget and libFuzzer's mutations land in the part that is read.
"""

from __future__ import annotations

import gzip
import io
import struct
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import yaml

from agent.core.decode import Decoder
from agent.core.pcapformat import CaptureFormatError, FrameReader
from pcaps import make_hostile, wire

ROOT = Path(__file__).resolve().parents[1]
PCAPS = ROOT / "pcaps"
DNS_PORTS = frozenset({53, 5353, 8053})  # the corpus holds DNS on 8053 too (tcpdump's dns_*_8053)
MAX_SEED = 4096
WINDOW = 8  # records per capture window: enough for a TCP handshake and a message, or a fragment train


def capture_files() -> list[Path]:
    """Every capture of the repository: the demo, the corpus of other projects' test captures, the hostile ones."""
    return [PCAPS / "demo.pcapng", *sorted((PCAPS / "corpus").glob("*.pcap*")), *sorted((PCAPS / "hostile").glob("*.pcap*"))]


@cache
def capture_frames() -> tuple[tuple[str, tuple[tuple[float, int, bytes], ...]], ...]:
    """(file name, its frames) for every capture."""
    out = []
    for path in capture_files():
        try:
            out.append((path.name, tuple(FrameReader(path.read_bytes()).frames())))
        except CaptureFormatError:
            continue
    return tuple(out)


@cache
def dns_messages() -> tuple[bytes, ...]:
    """Every distinct DNS message in the captures, plus the hostile messages of `pcaps/make_hostile.py`."""
    seen: dict[bytes, None] = {}
    for _name, frames in capture_frames():
        for *_, payload in Decoder(DNS_PORTS).messages(frames):
            seen.setdefault(payload[:MAX_SEED], None)
    for hostile in make_hostile.CAPTURES:
        seen.setdefault(hostile.message()[:MAX_SEED], None)
    return tuple(seen)


# -- capture files, cut into small ones ---------------------------------------------------------------------


def _classic_records(data: bytes) -> tuple[bytes, list[bytes]] | None:
    """(file header, raw records) of a classic pcap, None for pcapng."""
    (magic,) = struct.unpack_from("<I", data, 0)
    if magic == 0x0A0D0D0A:
        return None
    order = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D, 0xA1B2CD34) else ">"
    header_size = 24 if struct.unpack_from(order + "I", data, 0)[0] == 0xA1B2CD34 else 16
    records, off = [], 24
    while off + header_size <= len(data):
        (caplen,) = struct.unpack_from(order + "I", data, off + 8)
        end = off + header_size + caplen
        if end > len(data):
            break
        records.append(data[off:end])
        off = end
    return data[:24], records


def _pcapng_blocks(data: bytes) -> list[tuple[int, bytes]]:
    """(block type, raw block) of every whole block of a pcapng file."""
    blocks, off, order = [], 0, "<"
    while off + 12 <= len(data):
        (block_type,) = struct.unpack_from(order + "I", data, off)
        if block_type == 0x0A0D0D0A:
            order = "<" if data[off + 8:off + 12] == b"\x4d\x3c\x2b\x1a" else ">"
        (total,) = struct.unpack_from(order + "I", data, off + 4)
        if total < 12 or off + total > len(data):
            break
        blocks.append((block_type, data[off:off + total]))
        off += total
    return blocks


def capture_windows(data: bytes) -> Iterator[bytes]:
    """Small captures cut from one: its header (and pcapng's section and interface blocks) and WINDOW records."""
    classic = _classic_records(data)
    if classic is not None:
        header, records = classic
        for start in range(0, len(records), WINDOW):
            yield (header + b"".join(records[start:start + WINDOW]))[:MAX_SEED]
        return
    blocks = _pcapng_blocks(data)
    preamble = b"".join(block for kind, block in blocks if kind in (0x0A0D0D0A, 0x00000001))
    packets = [block for kind, block in blocks if kind not in (0x0A0D0D0A, 0x00000001)]
    for start in range(0, len(packets), WINDOW):
        yield (preamble + b"".join(packets[start:start + WINDOW]))[:MAX_SEED]


def pcapng_with(frames, tsresol: bytes | None = None, tsoffset: int | None = None, linktype: int = 1) -> bytes:
    """A pcapng capture whose one interface says `if_tsresol` / `if_tsoffset` (wire.py's writer says neither),
    its packets stamped with their frames' times in microseconds, whatever the resolution says."""
    options = b""
    if tsresol is not None:
        options += struct.pack("<HH", 9, 1) + tsresol + b"\x00\x00\x00"
    if tsoffset is not None:
        options += struct.pack("<HHq", 14, 8, tsoffset)
    idb = struct.pack("<HHI", linktype, 0, 262144) + options + struct.pack("<HH", 0, 0)
    out = io.BytesIO()
    wire.PcapngWriter(out)  # the section header block
    out.write(_block(1, idb))
    for ts, _linktype, frame in frames:
        stamp = int(ts * 1_000_000)
        body = struct.pack("<IIIII", 0, stamp >> 32 & 0xFFFFFFFF, stamp & 0xFFFFFFFF, len(frame), len(frame))
        out.write(_block(6, body + frame + b"\x00" * (-len(frame) % 4)))
    return out.getvalue()


def _block(block_type: int, body: bytes) -> bytes:
    return struct.pack("<II", block_type, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))


@cache
def capture_seeds() -> tuple[bytes, ...]:
    """Windows of every capture, and pcapng variants with other timestamp resolutions and offsets."""
    seeds: dict[bytes, None] = {}
    for path in capture_files():
        for window in capture_windows(path.read_bytes()):
            seeds.setdefault(window, None)
    demo = dict(capture_frames())["demo.pcapng"][:WINDOW]
    for tsresol, tsoffset in ((b"\x09", None), (b"\x83", None), (b"\x06", 3600), (None, -60), (b"\x7f", None)):
        seeds.setdefault(pcapng_with(demo, tsresol, tsoffset)[:MAX_SEED], None)
    return tuple(seeds)


# -- frames, for the decoder ----------------------------------------------------------------------------------

# The link types `agent.core.decode` reads, and one it does not (to keep that path covered).
LINKTYPES = (1, 0, 9, 12, 14, 50, 101, 108, 113, 228, 229, 276, 147)


def encode_frames(linktype: int, frames: list[tuple[int, bytes]]) -> bytes:
    """The decoder harness's input: a link-type index, then per frame a time step (ms), a 2-byte length, the bytes."""
    index = LINKTYPES.index(linktype) if linktype in LINKTYPES else len(LINKTYPES) - 1
    return bytes((index,)) + b"".join(bytes((step,)) + struct.pack("!H", len(frame)) + frame for step, frame in frames)


def decode_frames(data: bytes) -> tuple[int, list[tuple[int, bytes]]]:
    """`encode_frames` backwards: (link type, [(time step, frame)]); a short last frame takes what is left."""
    if not data:
        return LINKTYPES[0], []
    linktype = LINKTYPES[data[0] % len(LINKTYPES)]
    frames, off = [], 1
    while off + 3 <= len(data):
        step, length = data[off], struct.unpack_from("!H", data, off + 1)[0]
        frames.append((step, data[off + 3:off + 3 + length]))
        off += 3 + length
    return linktype, frames


def _relinked(ip_packet: bytes, linktype: int) -> bytes:
    """One IP packet behind the link-layer header of `linktype`."""
    v6 = ip_packet[0] >> 4 == 6
    if linktype in (12, 14, 101, 228, 229):
        return ip_packet
    if linktype == 0:
        return struct.pack("<I", 24 if v6 else 2) + ip_packet
    if linktype == 108:
        return struct.pack("!I", 24 if v6 else 2) + ip_packet
    if linktype in (9, 50):
        return b"\xff\x03" + struct.pack("!H", 0x57 if v6 else 0x21) + ip_packet
    ethertype = 0x86DD if v6 else 0x0800
    if linktype == 113:
        return struct.pack("!HHH8sH", 0, 1, 6, b"\x0a\x58\x0a\xf4\x01\x0a\x00\x00", ethertype) + ip_packet
    if linktype == 276:
        return struct.pack("!HHIHBB8s", ethertype, 0, 2, 1, 0, 6, b"\x0a\x58\x0a\xf4\x01\x0a\x00\x00") + ip_packet
    return b"\xee" * 6 + b"\x0a\x58\x0a\xf4\x01\x0a" + struct.pack("!H", 0x8100) + b"\x00\x0b" + struct.pack("!H", ethertype) + ip_packet


def _ipv4_fragments(ip_packet: bytes, size: int = 24) -> list[bytes]:
    """An unfragmented IPv4 packet as fragments of `size` payload bytes (a multiple of 8)."""
    header_len = (ip_packet[0] & 0x0F) * 4
    payload = ip_packet[header_len:]
    pieces = []
    for start in range(0, len(payload), size):
        chunk = payload[start:start + size]
        more = 0x2000 if start + size < len(payload) else 0
        header = bytearray(ip_packet[:header_len])
        struct.pack_into("!HHH", header, 2, header_len + len(chunk), 0x4242, more | start // 8)
        pieces.append(bytes(header) + chunk)
    return pieces


@cache
def frame_seeds() -> tuple[bytes, ...]:
    """Windows of every capture's frames; their IP packets behind every other link type; fragment trains."""
    seeds: dict[bytes, None] = {}
    for _name, frames in capture_frames():
        for start in range(0, len(frames), WINDOW):
            window = frames[start:start + WINDOW]
            first_ts, linktype = window[0][0], window[0][1]
            steps = [(min(int((ts - first_ts) * 1000), 255), frame) for ts, lt, frame in window if lt == linktype]
            seeds.setdefault(encode_frames(linktype, steps), None)
    ethernet_ip = [frame[14:] for _name, frames in capture_frames() for _ts, lt, frame in frames[:40]
                   if lt == 1 and frame[12:14] in (b"\x08\x00", b"\x86\xdd")]
    for linktype in LINKTYPES:
        for start in range(0, min(len(ethernet_ip), 64), 4):
            seeds.setdefault(encode_frames(linktype, [(1, _relinked(p, linktype)) for p in ethernet_ip[start:start + 4]]), None)
    for packet in ethernet_ip[:64]:
        if packet[0] == 0x45 and len(packet) > 60:
            pieces = _ipv4_fragments(packet)
            seeds.setdefault(encode_frames(1, [(1, _relinked(p, 1)) for p in reversed(pieces)]), None)
    return tuple(seed for seed in seeds if len(seed) <= MAX_SEED)


# -- feeds and manifests -------------------------------------------------------------------------------------


@cache
def feed_bodies() -> tuple[bytes, ...]:
    """The demo and hostile feeds, cut into pieces, and in the encodings and line formats feeds arrive in."""
    bodies: dict[bytes, None] = {}
    files = sorted(PCAPS.glob("demo-*.txt")) + [PCAPS / "hostile" / make_hostile.FEED_FILE]
    for path in files:
        text = path.read_bytes()
        bodies.setdefault(text[:MAX_SEED], None)
        names = [line for line in text.decode().splitlines() if line and not line.startswith("#")][:40]
        bodies.setdefault("\r\n".join(names).encode(), None)
        bodies.setdefault(b"\xef\xbb\xbf" + text[:1024], None)
        bodies.setdefault("\ufeff".encode("utf-16-le") + text[:512].decode().encode("utf-16-le"), None)
        bodies.setdefault(gzip.compress(text[:2048], mtime=0), None)
        forms = ("0.0.0.0 {}", "127.0.0.1 {} # sink", "||{}^", "*.{}", "address=/{}/0.0.0.0", "{} CNAME .",
                 "https://{}/path?q=1", "{}. IN A 192.0.2.1", "! comment {}", "{}  # inline")
        for form in forms:
            bodies.setdefault("\n".join(form.format(name) for name in names[:10]).encode(), None)
    return tuple(bodies)


@cache
def structured_bodies() -> tuple[bytes, ...]:
    """JSON, JSON-lines, CSV, MISP and STIX documents holding the demo feeds' entries."""
    import json

    names = [line for line in (PCAPS / "demo-c2.txt").read_text().splitlines() if line and not line.startswith("#")]
    ips = [line for line in (PCAPS / "demo-badips.txt").read_text().splitlines() if line and not line.startswith("#")]
    docs = [
        json.dumps({"data": [{"domain": name, "score": 9} for name in names[:12]]}),
        json.dumps([{"ip": ip} for ip in ips[:12]]),
        json.dumps({"a": {"b": [names[:4], {"c": names[4:8]}]}}),
        "domain,score\n" + "\n".join(f"{name},9" for name in names[:20]),
        "# comment\n" + "\n".join(f"{ip};x;\"quoted, {ip}\"" for ip in ips[:12]),
        "\n".join(f"1\t{name}" for name in names[:20]),
        "\n".join(json.dumps({"cidr": ip, "sblid": "SBL1"}) for ip in ips[:12]) + '\n{"type":"metadata"}\n',
        json.dumps({str(n): [{"ioc_value": name, "ioc_type": "domain"}] for n, name in enumerate(names[:12])}),
        "# c\n" + "\n".join(f'"{n}", "{name}", "domain"' for n, name in enumerate(names[:12])),
        json.dumps({"Event": {"Attribute": [{"type": "domain|ip", "value": f"{name}|{ip}"}
                                            for name, ip in zip(names[:12], ips[:12])]}}),
        json.dumps({"type": "bundle", "objects": [
            {"type": "indicator", "pattern": f"[domain-name:value = '{name}' OR ipv4-addr:value = '{ip}']",
             "valid_until": "2030-01-01T00:00:00Z"} for name, ip in zip(names[:12], ips[:12])]}),
    ]
    return tuple(doc.encode() for doc in docs)


@cache
def manifest_seeds() -> tuple[bytes, ...]:
    """The demo's GlobalThreatFeed manifests, whole and one by one, and variants using every spec field."""
    text = (PCAPS / "demo-feeds.yaml").read_text()
    seeds = {text.encode(): None}
    documents = [doc for doc in yaml.safe_load_all(text) if doc]
    for doc in documents:
        seeds.setdefault(yaml.safe_dump(doc).encode(), None)
    base = documents[0]
    http = {"url": "https://feeds.example/c2.csv", "headers": [
        {"name": "Authorization", "valueFrom": {"secretKeyRef": {"name": "feeds", "key": "token", "optional": True}}},
        {"name": "X-Api", "value": "v"},
        {"name": "X-Cm", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}}]}
    variants = [
        {"csv": {"fieldName": "domain", "header": True, "columnDelimiter": ";", "commentDelimiter": "#"}},
        {"csv": {"fieldNum": 1, "recordSize": 3}},
        {"csv": {"fieldNum": 0, "disableRecordSizeValidation": True}},
        {"json": {"path": "$.data[*].domain"}},
        {"json": {"path": "$..['ip', 'addr'][0:5:2]"}},
    ]
    for fmt in variants:
        doc = {**base, "apiVersion": "projectcalico.org/v3",
               "spec": {**base["spec"], "pull": {"period": "1h30m", "http": {**http, "format": fmt}}}}
        seeds.setdefault(yaml.safe_dump(doc).encode(), None)
    seeds.setdefault(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": documents}).encode(), None)
    return tuple(seed for seed in seeds if len(seed) <= MAX_SEED)
