"""Hand-built frames and capture files for the sample-data generators.

Scapy builds a packet in ~100 µs, so 200,000 of them would take half a minute; these helpers assemble
Ethernet/IPv4/IPv6/UDP/TCP with `struct` in a few µs and stream classic pcap or pcapng. Everything is
deterministic: timestamps are integer microseconds, nothing reads the clock.

Addresses are passed as packed bytes (4 or 16 long, see `ip_bytes`) so the hot loops convert each
address once, not once per packet.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import BinaryIO

LINKTYPE_ETHERNET = 1
ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_VLAN = 0x8100
IPPROTO_TCP = 6
IPPROTO_UDP = 17

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_PSH = 0x08
TCP_ACK = 0x10

# Calico gives the host side of every pod veth this MAC; pods see it as their gateway.
CALICO_HOST_MAC = b"\xee\xee\xee\xee\xee\xee"

_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_IPV6 = struct.Struct("!IHBB16s16s")
_UDP = struct.Struct("!HHHH")
_TCP = struct.Struct("!HHIIBBHHH")
_PSEUDO4 = struct.Struct("!4s4sBBH")
_PSEUDO6 = struct.Struct("!16s16sIxxxB")
_U16 = struct.Struct("!H")


def ip_bytes(text: str) -> bytes:
    """Packed form of an IPv4 or IPv6 address literal."""
    return ipaddress.ip_address(text).packed


def mac_bytes(text: str) -> bytes:
    """`02:42:0a:f4:01:0a` -> 6 bytes."""
    return bytes.fromhex(text.replace(":", "").replace("-", ""))


def internet_checksum(data: bytes) -> int:
    """RFC 1071 checksum of `data` (padded to even length).

    Read as one big-endian integer, the data is the sum of w_i * 65536**k; since 65536 ≡ 1 (mod 65535),
    that integer mod 65535 is the ones'-complement sum of the 16-bit words, computed in C instead of a
    Python loop. A result of 0 stands for 0xFFFF (data is never all zero here: a pseudo-header or an IP
    header always has non-zero words), whose complement is 0, which UDP must send as 0xFFFF; in ones'
    complement arithmetic 0 and 0xFFFF are the same value, so returning 0xFFFF is right for every user.
    """
    if len(data) & 1:
        data += b"\x00"
    return (~(int.from_bytes(data, "big") % 0xFFFF)) & 0xFFFF


def ipv4_header(src: bytes, dst: bytes, proto: int, payload_len: int, ident: int = 0, ttl: int = 64,
                dont_fragment: bool = True) -> bytes:
    """A 20-byte IPv4 header with a correct header checksum."""
    flags = 0x4000 if dont_fragment else 0
    header = _IPV4.pack(0x45, 0, 20 + payload_len, ident & 0xFFFF, flags, ttl, proto, 0, src, dst)
    return header[:10] + _U16.pack(internet_checksum(header)) + header[12:]


def ipv6_header(src: bytes, dst: bytes, next_header: int, payload_len: int, hop_limit: int = 64,
                flow_label: int = 0) -> bytes:
    """A 40-byte IPv6 header."""
    return _IPV6.pack((6 << 28) | (flow_label & 0xFFFFF), payload_len, next_header, hop_limit, src, dst)


def _pseudo_header(src: bytes, dst: bytes, proto: int, length: int) -> bytes:
    if len(src) == 4:
        return _PSEUDO4.pack(src, dst, 0, proto, length)
    return _PSEUDO6.pack(src, dst, length, proto)


def udp_datagram(src: bytes, dst: bytes, sport: int, dport: int, payload: bytes, checksum: bool = True) -> bytes:
    """UDP header + payload. The checksum is optional over IPv4 (0 = none) and mandatory over IPv6."""
    length = 8 + len(payload)
    if not checksum and len(src) == 4:
        return _UDP.pack(sport, dport, length, 0) + payload
    header = _UDP.pack(sport, dport, length, 0)
    value = internet_checksum(_pseudo_header(src, dst, IPPROTO_UDP, length) + header + payload)
    return _UDP.pack(sport, dport, length, value) + payload


def tcp_segment(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int,
                payload: bytes = b"", window: int = 64240) -> bytes:
    """A TCP header without options (data offset 5) + payload, with its checksum."""
    header = _TCP.pack(sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, window, 0, 0)
    length = len(header) + len(payload)
    value = internet_checksum(_pseudo_header(src, dst, IPPROTO_TCP, length) + header + payload)
    return header[:16] + _U16.pack(value) + header[18:] + payload


def ip_packet(src: bytes, dst: bytes, proto: int, segment: bytes, ident: int = 0, ttl: int = 64) -> tuple[int, bytes]:
    """(ethertype, IP header + segment); the IP version follows the address length."""
    if len(src) == 4:
        return ETHERTYPE_IPV4, ipv4_header(src, dst, proto, len(segment), ident, ttl) + segment
    return ETHERTYPE_IPV6, ipv6_header(src, dst, proto, len(segment), ttl) + segment


def ethernet(src_mac: bytes, dst_mac: bytes, ethertype: int, payload: bytes, vlan: int | None = None) -> bytes:
    """An Ethernet II frame, optionally 802.1Q-tagged (no FCS, as captures record it)."""
    if vlan is None:
        return dst_mac + src_mac + _U16.pack(ethertype) + payload
    return dst_mac + src_mac + _U16.pack(ETHERTYPE_VLAN) + _U16.pack(vlan & 0x0FFF) + _U16.pack(ethertype) + payload


def udp_frame(src_mac: bytes, dst_mac: bytes, src: bytes, dst: bytes, sport: int, dport: int, payload: bytes,
              ident: int = 0, ttl: int = 64) -> bytes:
    """Ethernet + IPv4/IPv6 + UDP around `payload`."""
    ethertype, packet = ip_packet(src, dst, IPPROTO_UDP, udp_datagram(src, dst, sport, dport, payload), ident, ttl)
    return ethernet(src_mac, dst_mac, ethertype, packet)


def tcp_frame(src_mac: bytes, dst_mac: bytes, src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int,
              flags: int, payload: bytes = b"", ident: int = 0, ttl: int = 64) -> bytes:
    """Ethernet + IPv4/IPv6 + TCP around `payload`."""
    segment = tcp_segment(src, dst, sport, dport, seq, ack, flags, payload)
    ethertype, packet = ip_packet(src, dst, IPPROTO_TCP, segment, ident, ttl)
    return ethernet(src_mac, dst_mac, ethertype, packet)


def dns_over_tcp(message: bytes) -> bytes:
    """RFC 1035 §4.2.2 framing: a two-byte length before the message."""
    return _U16.pack(len(message)) + message


# --- capture files ----------------------------------------------------------------------------------

_PCAP_HEADER = struct.Struct("<IHHiIII")
_PCAP_RECORD = struct.Struct("<IIII")


class PcapWriter:
    """Classic libpcap format, little-endian, microsecond timestamps."""

    def __init__(self, stream: BinaryIO, linktype: int = LINKTYPE_ETHERNET, snaplen: int = 262144) -> None:
        self._stream = stream
        self._pending: list[bytes] = []
        stream.write(_PCAP_HEADER.pack(0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype))

    def write(self, ts_us: int, frame: bytes, orig_len: int | None = None) -> None:
        """Append one packet stamped `ts_us` microseconds after the epoch."""
        sec, usec = divmod(ts_us, 1_000_000)
        self._pending.append(_PCAP_RECORD.pack(sec, usec, len(frame), orig_len or len(frame)))
        self._pending.append(frame)
        if len(self._pending) >= 8192:
            self.flush()

    def flush(self) -> None:
        self._stream.write(b"".join(self._pending))
        self._pending.clear()


_BLOCK_SHB = 0x0A0D0D0A
_BLOCK_IDB = 0x00000001
_BLOCK_EPB = 0x00000006
_OPT_END = 0
_OPT_COMMENT = 1
_SHB_HARDWARE = 2
_SHB_OS = 3
_SHB_USERAPPL = 4
_IF_NAME = 2
_IF_DESCRIPTION = 3
_IF_TSRESOL = 9


def _pad4(data: bytes) -> bytes:
    return data + b"\x00" * (-len(data) % 4)


def _options(options: list[tuple[int, bytes]]) -> bytes:
    if not options:
        return b""
    body = b"".join(struct.pack("<HH", code, len(value)) + _pad4(value) for code, value in options)
    return body + struct.pack("<HH", _OPT_END, 0)


def _block(block_type: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", block_type, total) + body + struct.pack("<I", total)


class PcapngWriter:
    """pcapng with one section: SHB, then IDBs and EPBs (little-endian, microsecond resolution).

    Interfaces may be added at any point, as dumpcap does when it captures on several interfaces.
    """

    def __init__(self, stream: BinaryIO, application: str = "dnswatch", os_name: str = "", hardware: str = "") -> None:
        self._stream = stream
        self._interfaces = 0
        options = [(_SHB_USERAPPL, application.encode())]
        if os_name:
            options.append((_SHB_OS, os_name.encode()))
        if hardware:
            options.append((_SHB_HARDWARE, hardware.encode()))
        # Section length -1: unknown, the usual value for a file written as a stream.
        body = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + _options(options)
        stream.write(_block(_BLOCK_SHB, body))

    def add_interface(self, name: str, linktype: int = LINKTYPE_ETHERNET, snaplen: int = 262144,
                      description: str = "") -> int:
        """Write an Interface Description Block; returns the interface id to pass to `write`."""
        options = [(_IF_NAME, name.encode())]
        if description:
            options.append((_IF_DESCRIPTION, description.encode()))
        options.append((_IF_TSRESOL, b"\x06"))
        body = struct.pack("<HHI", linktype, 0, snaplen) + _options(options)
        self._stream.write(_block(_BLOCK_IDB, body))
        self._interfaces += 1
        return self._interfaces - 1

    def write(self, ts_us: int, frame: bytes, interface: int = 0, comment: str = "") -> None:
        """Append one Enhanced Packet Block."""
        if not 0 <= interface < self._interfaces:
            raise ValueError(f"interface {interface} was never added")
        body = struct.pack("<IIIII", interface, ts_us >> 32, ts_us & 0xFFFFFFFF, len(frame), len(frame))
        body += _pad4(frame)
        if comment:
            body += _options([(_OPT_COMMENT, comment.encode())])
        self._stream.write(_block(_BLOCK_EPB, body))
