"""Frames to DNS messages: link layer, IPv4/IPv6, fragments, UDP and TCP, down to one DNS message each.

`Decoder.messages(frames)` takes `(timestamp, linktype, frame)` tuples (from `pcapformat.FrameReader`, or a
live capture) and yields one plain tuple per DNS message:

    (ts, src_addr, src_port, dst_addr, dst_port, ip_proto, dns_payload)

with addresses as raw 4- or 16-byte `bytes` (turned into text later, only for messages that matter),
`ip_proto` 17 (UDP) or 6 (TCP), and `dns_payload` one whole DNS message (over TCP without its length prefix;
over UDP as captured, so a frame cut by the snaplen gives a truncated message for the scanner to judge).
A UDP or TCP packet is DNS when either port is in `ports`.

Why the shape of `messages`: it runs once per packet and replay must reach 250k packets/s, so Ethernet →
IPv4 (no options) → UDP, unfragmented — nearly all DNS traffic — is one `unpack_from` and a few integer tests
inline in the loop, and Ethernet → IPv6 → UDP is one more. Everything else (VLAN tags, other link types,
IP options, extension headers, fragments, TCP) goes to `_decode_frame`, which may be slower. Nothing raises on bad input: every frame that cannot be decoded is
counted in `stats` under the reason.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields

from agent.core.fragments import FragmentCounters, FragmentReassembler
from agent.core.pcapformat import FrameReader
from agent.core.tcpstreams import TcpCounters, TcpReassembler

DnsMessage = tuple[float, bytes, int, bytes, int, int, bytes]

IPPROTO_TCP = 6
IPPROTO_UDP = 17

# Link types (https://www.tcpdump.org/linktypes.html).
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_PPP = 9
LINKTYPE_RAW_BSD_12 = 12  # DLT_RAW on most BSDs, written as-is by their libpcap
LINKTYPE_RAW_BSD_14 = 14  # DLT_RAW on OpenBSD
LINKTYPE_PPP_HDLC = 50
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_PPPOE_SESSION = 0x8864
# 802.1Q, 802.1ad (QinQ) and the pre-standard QinQ tag: each adds 4 bytes before the real EtherType.
_VLAN_ETHERTYPES = frozenset({0x8100, 0x88A8, 0x9100})
# BSD loopback address families of IPv6 differ per OS (NetBSD/OpenBSD 24, FreeBSD 28, Darwin 30); Linux's 10.
_AF_INET = 2
_AF_INET6 = frozenset({10, 24, 28, 30})
_PPP_IPV4 = 0x0021
_PPP_IPV6 = 0x0057

# IPv6 extension headers walked over to reach the transport header (RFC 8200 §4, plus AH and mobility).
_IPV6_HOP_BY_HOP = 0
_IPV6_ROUTING = 43
_IPV6_FRAGMENT = 44
_IPV6_AH = 51
_IPV6_DEST_OPTS = 60
_IPV6_MOBILITY = 135
_IPV6_SKIPPABLE = frozenset({_IPV6_HOP_BY_HOP, _IPV6_ROUTING, _IPV6_DEST_OPTS, _IPV6_MOBILITY})

# The hot path reads Ethernet, IPv4 and UDP headers in one call: EtherType, version/IHL, total length,
# flags/fragment offset, protocol, source, destination, source port, destination port, UDP length.
_ETH_IPV4_UDP = struct.Struct("!12xHBxH2xHxB2x4s4sHHH")
# Its IPv6 twin, after the EtherType: payload length, next header, source, destination, then UDP's ports and length.
_ETH_IPV6_UDP = struct.Struct("!18xHBx16s16sHHH")
_IPV4 = struct.Struct("!BxHHHxB2x4s4s")
_IPV6 = struct.Struct("!4xHBx16s16s")
_UDP = struct.Struct("!HHH")
_TCP = struct.Struct("!HHIIBB")
_U16 = struct.Struct("!H")


@dataclass(frozen=True)
class DecodeLimits:
    """Memory bounds of the decoder's reassembly state; times are capture time, in seconds."""

    max_fragment_datagrams: int = 1024
    """Incomplete IP datagrams held at once; beyond it the oldest is dropped."""
    max_fragment_bytes: int = 8 * 1024 * 1024
    """Fragment bytes held at once, over all datagrams."""
    fragment_timeout: float = 30.0
    """A datagram still incomplete this long after its first fragment is dropped (Linux's ipfrag_time)."""
    max_tcp_streams: int = 10_000
    """TCP stream directions tracked at once; beyond it the least recently used is dropped."""
    max_tcp_stream_bytes: int = 128 * 1024
    """Bytes held out of order per stream before the hole in front of them is given up on."""
    tcp_idle_timeout: float = 60.0
    """A stream without a segment for this long is closed."""


@dataclass(slots=True)
class DecodeStats:
    """Counters of what the decoder saw, bumped per frame; `as_dict` flattens them for reports."""

    frames: int = 0
    """Frames handed to the decoder."""
    unsupported_linktype: int = 0
    """Frames of a link type the decoder does not know (skipped)."""
    non_ip: int = 0
    """Frames carrying something other than IPv4/IPv6 (ARP, LLDP, PPP control...)."""
    non_dns: int = 0
    """IP packets that are not UDP/TCP with a DNS port (ICMP, other ports, ESP...)."""
    malformed_frames: int = 0
    """Frames too short for a header they announce, or with inconsistent lengths (incl. empty DNS/UDP)."""
    udp_messages: int = 0
    """DNS messages yielded from UDP."""
    fragments: FragmentCounters = field(default_factory=FragmentCounters)
    """IP fragment reassembly (`fragments.received`, `.reassembled`, `.evicted`...)."""
    tcp: TcpCounters = field(default_factory=TcpCounters)
    """DNS over TCP (`tcp.segments`, `.messages`, `.gaps`, `.bytes_skipped`, `.streams_evicted`...)."""

    def as_dict(self) -> dict[str, int]:
        """Every counter by a flat name: `frames`, ..., `fragments_evicted`, `tcp_gaps`..."""
        flat: dict[str, int] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, int):
                flat[f.name] = value
            else:
                flat.update({f"{f.name}_{g.name}": getattr(value, g.name) for g in fields(value)})
        return flat


class Decoder:
    """Stateful (fragments, TCP streams): use one decoder per capture, or per live interface."""

    def __init__(self, ports: frozenset[int] = frozenset({53}), limits: DecodeLimits = DecodeLimits()) -> None:
        self.ports = frozenset(ports)
        self.limits = limits
        self.stats = DecodeStats()
        self._fragments = FragmentReassembler(limits.max_fragment_datagrams, limits.max_fragment_bytes,
                                              limits.fragment_timeout, self.stats.fragments)
        self._tcp = TcpReassembler(limits.max_tcp_streams, limits.max_tcp_stream_bytes, limits.tcp_idle_timeout,
                                   self.stats.tcp)

    def messages(self, frames: Iterable[tuple[float, int, bytes]]) -> Iterator[DnsMessage]:
        """Every DNS message in `frames`, in capture order (a TCP message when its last byte arrives).

        At the end of `frames` the TCP streams are closed and incomplete fragments dropped, so what held
        segments still complete is yielded then; feed a whole capture (or a live stream) to one call.
        """
        stats = self.stats
        ports = self.ports
        hot_headers = _ETH_IPV4_UDP.unpack_from
        hot_ipv6_headers = _ETH_IPV6_UDP.unpack_from
        decode_frame = self._decode_frame
        for ts, linktype, frame in frames:
            stats.frames += 1
            # More than the headers: `end` is not clipped to the frame below, so a frame of only the headers
            # would give an empty payload (capture_messages clips instead).
            if linktype == LINKTYPE_ETHERNET and len(frame) > 42:
                ethertype, version_ihl, total, frag, proto, src, dst, sport, dport, udp_len = hot_headers(frame)
                # IPv4 without options, UDP, neither MF nor a fragment offset: the bulk of DNS traffic. An IP
                # length too short for the UDP header (0 too: segmentation offload) is the general path's to judge.
                if (ethertype == ETHERTYPE_IPV4 and version_ihl == 0x45 and proto == IPPROTO_UDP and not frag & 0x3FFF
                        and total >= 28):
                    if sport not in ports and dport not in ports:
                        stats.non_dns += 1
                        continue
                    # Trust the smallest of the IP and UDP lengths: Ethernet pads short frames, and a UDP
                    # length shorter than the IP payload marks the bytes after it as not part of the message.
                    end = 14 + total
                    if 34 + udp_len < end:
                        end = 34 + udp_len
                    if end <= 42:
                        stats.malformed_frames += 1
                        continue
                    stats.udp_messages += 1
                    yield ts, src, sport, dst, dport, IPPROTO_UDP, frame[42:end]
                    continue
                if ethertype == ETHERTYPE_IPV6 and len(frame) > 62:
                    # The same for IPv6 straight to UDP (dual-stack clusters); a zero payload length
                    # (jumbogram), one too short for the UDP header, and extension headers take the general path.
                    payload_len, next_header, src, dst, sport, dport, udp_len = hot_ipv6_headers(frame)
                    if next_header == IPPROTO_UDP and payload_len >= 8 and frame[14] >> 4 == 6:
                        if sport not in ports and dport not in ports:
                            stats.non_dns += 1
                            continue
                        end = 54 + payload_len
                        if 54 + udp_len < end:
                            end = 54 + udp_len
                        if end <= 62:
                            stats.malformed_frames += 1
                            continue
                        stats.udp_messages += 1
                        yield ts, src, sport, dst, dport, IPPROTO_UDP, frame[62:end]
                        continue
            found = decode_frame(ts, linktype, frame)
            if found:
                yield from found
        yield from self._end_of_input()

    def capture_messages(
        self, reader: FrameReader, known: Callable[[bytes], object] | None = None, quiet: object = None
    ) -> Iterator[DnsMessage]:
        """`messages(reader.frames())`, but an Ethernet classic pcap is walked in this very loop.

        Measured on the bench capture, handing every frame through the reader's generator costs about
        0.4 µs a packet, a tenth of the replay budget; so this loop reads the records itself and decodes
        Ethernet → IPv4 → UDP inline, exactly as `messages` does (tests hold the two to the same output),
        and passes every other frame to the general path.

        With `known` (a cache's `get`, keyed by a message without its 2-byte id), a message on that path
        whose key `known` maps to `quiet` is counted and not yielded: nothing more would happen to it, and
        not handing it on saves a third of the replay's time. One message per second of capture time is
        yielded anyway, so that a consumer keeping time by the messages it sees keeps its clock going.
        """
        layout = reader.classic_layout()
        if layout is None or layout.linktype != LINKTYPE_ETHERNET:
            yield from self.messages(reader.frames())
            return
        buf, off, unpack_record, header, per_second, linktype, max_record = layout
        size = len(buf)
        stats = self.stats
        ports = self.ports
        hot_headers = _ETH_IPV4_UDP.unpack_from
        decode_frame = self._decode_frame
        # Headers are read straight from the capture buffer and only the DNS payload is copied out; the
        # busiest counters are kept in locals and written back when the loop ends (or is abandoned).
        frames = non_dns = udp_messages = bad_timestamps = 0
        next_heartbeat = 0
        try:
            while off + header <= size:
                seconds, fraction, caplen, _ = unpack_record(buf, off)
                start = off + header
                if start + caplen > size or caplen > max_record:
                    break
                off = start + caplen
                if fraction >= per_second:  # skipped as `reader.frames()` skips it: not a time at all
                    bad_timestamps += 1
                    continue
                frames += 1
                if caplen >= 42:
                    ethertype, version_ihl, total, frag, proto, src, dst, sport, dport, udp_len = hot_headers(
                        buf, start
                    )
                    if (
                        ethertype == ETHERTYPE_IPV4
                        and version_ihl == 0x45
                        and proto == IPPROTO_UDP
                        and not frag & 0x3FFF
                        and total >= 28
                    ):
                        if sport not in ports and dport not in ports:
                            non_dns += 1
                            continue
                        end = 14 + total
                        if 34 + udp_len < end:
                            end = 34 + udp_len
                        if end > caplen:
                            end = caplen
                        if end <= 42:
                            stats.malformed_frames += 1
                            continue
                        udp_messages += 1
                        if known is not None:
                            if seconds < next_heartbeat and known(buf[start + 44 : start + end]) is quiet:
                                continue
                            next_heartbeat = seconds + 1
                        yield seconds + fraction / per_second, src, sport, dst, dport, IPPROTO_UDP, buf[
                            start + 42 : start + end
                        ]
                        continue
                stats.frames += frames
                stats.non_dns += non_dns
                stats.udp_messages += udp_messages
                frames = non_dns = udp_messages = 0
                found = decode_frame(seconds + fraction / per_second, linktype, buf[start:off])
                if found:
                    yield from found
        finally:
            stats.frames += frames
            stats.non_dns += non_dns
            stats.udp_messages += udp_messages
            reader.bad_timestamps += bad_timestamps
        reader.stopped_at(off)
        yield from self._end_of_input()

    # -- the slower, general path -------------------------------------------------------------------------

    def _decode_frame(self, ts: float, linktype: int, frame: bytes) -> list[DnsMessage] | None:
        version, off = _network_layer(linktype, frame)
        if version == 4:
            return self._decode_ipv4(ts, frame, off)
        if version == 6:
            return self._decode_ipv6(ts, frame, off)
        if version == _NOT_IP:
            self.stats.non_ip += 1
        elif version == _TRUNCATED:
            self.stats.malformed_frames += 1
        else:
            self.stats.unsupported_linktype += 1
        return None

    def _decode_ipv4(self, ts: float, frame: bytes, off: int) -> list[DnsMessage] | None:
        if len(frame) - off < 20:
            self.stats.malformed_frames += 1
            return None
        version_ihl, total, ident, frag, proto, src, dst = _IPV4.unpack_from(frame, off)
        header = (version_ihl & 0x0F) * 4
        if total == 0:
            # Captured on the sending host before TCP segmentation offload split it: the NIC fills in the
            # length later, so the frame's own length is the only one there is (Wireshark assumes the same).
            total = len(frame) - off
        if version_ihl >> 4 != 4 or header < 20 or total < header or len(frame) - off < header:
            self.stats.malformed_frames += 1
            return None
        end = off + total
        if frag & 0x3FFF:
            if end > len(frame):
                # Cut by the snaplen: its bytes would sit in the datagram as if they were all there.
                self.stats.malformed_frames += 1
                return None
            payload = self._fragments.add(ts, (src, dst, proto, ident), (frag & 0x1FFF) * 8, bool(frag & 0x2000),
                                          frame[off + header:end])
            if payload is None:
                return None
            return self._decode_transport(ts, src, dst, proto, payload, 0, len(payload))
        return self._decode_transport(ts, src, dst, proto, frame, off + header, min(end, len(frame)))

    def _decode_ipv6(self, ts: float, frame: bytes, off: int) -> list[DnsMessage] | None:
        if len(frame) - off < 40:
            self.stats.malformed_frames += 1
            return None
        payload_len, next_header, src, dst = _IPV6.unpack_from(frame, off)
        if frame[off] >> 4 != 6:
            self.stats.malformed_frames += 1
            return None
        start = off + 40
        # A zero payload length announces a jumbogram (RFC 2675): its real length is in an option.
        end = len(frame) if payload_len == 0 else start + payload_len
        cut_by_snaplen = end > len(frame)
        end = min(end, len(frame))
        while True:
            next_header, start, fragment = _skip_ipv6_extensions(frame, next_header, start, end)
            if fragment is None:
                break
            if cut_by_snaplen:
                self.stats.malformed_frames += 1
                return None
            offset, more, ident = fragment
            payload = self._fragments.add(ts, (src, dst, next_header, ident), offset, more, frame[start:end])
            if payload is None:
                return None
            # The reassembled payload may open with more extension headers (destination options).
            frame, start, end, cut_by_snaplen = payload, 0, len(payload), False
        if start < 0:
            self.stats.malformed_frames += 1
            return None
        return self._decode_transport(ts, src, dst, next_header, frame, start, end)

    def _decode_transport(self, ts: float, src: bytes, dst: bytes, proto: int, data: bytes, start: int,
                          end: int) -> list[DnsMessage] | None:
        stats = self.stats
        if proto == IPPROTO_UDP:
            if end - start < 8:
                stats.malformed_frames += 1
                return None
            sport, dport, udp_len = _UDP.unpack_from(data, start)
            if sport not in self.ports and dport not in self.ports:
                stats.non_dns += 1
                return None
            if start + udp_len < end:
                end = start + udp_len
            if end - start <= 8:
                stats.malformed_frames += 1
                return None
            stats.udp_messages += 1
            return [(ts, src, sport, dst, dport, IPPROTO_UDP, data[start + 8:end])]
        if proto == IPPROTO_TCP:
            if end - start < 20:
                stats.malformed_frames += 1
                return None
            sport, dport, seq, ack, data_offset, flags = _TCP.unpack_from(data, start)
            if sport not in self.ports and dport not in self.ports:
                stats.non_dns += 1
                return None
            header = (data_offset >> 4) * 4
            if header < 20 or start + header > end:
                stats.malformed_frames += 1
                return None
            found = self._tcp.segment(ts, (src, sport, dst, dport), seq, ack, flags, data[start + header:end])
            return [(when, s, sp, d, dp, IPPROTO_TCP, message) for when, (s, sp, d, dp), message in found] or None
        stats.non_dns += 1
        return None

    def _end_of_input(self) -> list[DnsMessage]:
        self._fragments.drop_all()
        return [(when, s, sp, d, dp, IPPROTO_TCP, message) for when, (s, sp, d, dp), message in self._tcp.finish()]


# _network_layer's verdicts besides 4 and 6.
_NOT_IP = 0
_TRUNCATED = -1
_UNSUPPORTED = -2


def _network_layer(linktype: int, frame: bytes) -> tuple[int, int]:
    """(IP version, offset of the IP header) of a frame, or (_NOT_IP / _TRUNCATED / _UNSUPPORTED, 0)."""
    size = len(frame)
    if linktype == LINKTYPE_ETHERNET:
        if size < 14:
            return _TRUNCATED, 0
        return _ethertype_payload(frame, _U16.unpack_from(frame, 12)[0], 14)
    if linktype in (LINKTYPE_RAW, LINKTYPE_RAW_BSD_12, LINKTYPE_RAW_BSD_14, LINKTYPE_IPV4, LINKTYPE_IPV6):
        if size < 1:
            return _TRUNCATED, 0
        version = frame[0] >> 4
        return (version, 0) if version in (4, 6) else (_NOT_IP, 0)
    if linktype == LINKTYPE_LINUX_SLL2:
        if size < 20:
            return _TRUNCATED, 0
        return _ethertype_payload(frame, _U16.unpack_from(frame, 0)[0], 20)
    if linktype == LINKTYPE_LINUX_SLL:
        if size < 16:
            return _TRUNCATED, 0
        return _ethertype_payload(frame, _U16.unpack_from(frame, 14)[0], 16)
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if size < 4:
            return _TRUNCATED, 0
        # The family is in the writer's byte order (NULL) or network order (LOOP, but not always): accept both.
        family = frame[0] | frame[1] << 8 | frame[2] << 16 | frame[3] << 24
        if family > 0xFFFF:
            family = frame[3] | frame[2] << 8 | frame[1] << 16 | frame[0] << 24
        if family == _AF_INET:
            return 4, 4
        return (6, 4) if family in _AF_INET6 else (_NOT_IP, 0)
    if linktype in (LINKTYPE_PPP, LINKTYPE_PPP_HDLC):
        return _ppp_payload(frame, 0)
    return _UNSUPPORTED, 0


def _ethertype_payload(frame: bytes, ethertype: int, off: int) -> tuple[int, int]:
    size = len(frame)
    while ethertype in _VLAN_ETHERTYPES:
        if size - off < 4:
            return _TRUNCATED, 0
        ethertype = _U16.unpack_from(frame, off + 2)[0]
        off += 4
    if ethertype == ETHERTYPE_IPV4:
        return 4, off
    if ethertype == ETHERTYPE_IPV6:
        return 6, off
    if ethertype <= 1500 and frame[off:off + 3] == b"\xaa\xaa\x03":
        # 802.3 length field with LLC/SNAP: the EtherType follows the 3-byte OUI.
        if size - off < 8:
            return _TRUNCATED, 0
        return _ethertype_payload(frame, _U16.unpack_from(frame, off + 6)[0], off + 8)
    if ethertype == ETHERTYPE_PPPOE_SESSION:
        if size - off < 6:
            return _TRUNCATED, 0
        return _ppp_payload(frame, off + 6)
    return _NOT_IP, 0


def _ppp_payload(frame: bytes, off: int) -> tuple[int, int]:
    size = len(frame)
    if frame[off:off + 2] == b"\xff\x03":  # HDLC address and control bytes, when not compressed away
        off += 2
    if size - off < 1:
        return _TRUNCATED, 0
    if frame[off] & 1:  # protocol field compression: an odd first byte is a whole 1-byte protocol
        protocol, off = frame[off], off + 1
    elif size - off < 2:
        return _TRUNCATED, 0
    else:
        protocol, off = _U16.unpack_from(frame, off)[0], off + 2
    if protocol == _PPP_IPV4:
        return 4, off
    if protocol == _PPP_IPV6:
        return 6, off
    return _NOT_IP, 0


def _skip_ipv6_extensions(frame: bytes, next_header: int, start: int,
                          end: int) -> tuple[int, int, tuple[int, bool, int] | None]:
    """Walk extension headers to the transport header.

    Returns (protocol, its offset, None), or at a Fragment header that splits the datagram
    (protocol after it, offset of the fragment data, (fragment offset, more fragments, identification)).
    An offset of -1 means the headers run past the packet. ESP (50) and No Next Header (59) end the walk
    like any other non-extension protocol: the decoder then counts the packet as not DNS.
    """
    while True:
        if next_header in _IPV6_SKIPPABLE:
            if end - start < 8:
                return next_header, -1, None
            next_header, length = frame[start], (frame[start + 1] + 1) * 8
        elif next_header == _IPV6_AH:
            if end - start < 8:
                return next_header, -1, None
            next_header, length = frame[start], (frame[start + 1] + 2) * 4
        elif next_header == _IPV6_FRAGMENT:
            if end - start < 8:
                return next_header, -1, None
            next_header = frame[start]
            offset_flags, ident = struct.unpack_from("!HI", frame, start + 2)
            start += 8
            if offset_flags & 0xFFF9 == 0:
                continue  # an atomic fragment (offset 0, no more fragments): the whole datagram is here
            return next_header, start, ((offset_flags & 0xFFF8), bool(offset_flags & 1), ident)
        else:
            return next_header, start, None
        start += length
        if start > end:
            return next_header, -1, None
