"""The kernel filter of a live capture: classic BPF that passes only DNS on the given ports.

The agent reads every packet it is handed in Python, so the kernel must drop everything else before it is
copied to us: UDP or TCP over IPv4 or IPv6 with a DNS port as source or destination. Two kinds of packet
pass without a port check because their ports cannot be seen: IPv4 fragments after the first, of UDP or TCP,
and IPv6 packets whose first header after the fixed one is a Fragment header (a large EDNS response over
UDP arrives so). They are rare, and the decoder reassembles them and drops what is not DNS.

The program is generated here from the port list rather than by libpcap (`pcap_compile`), so the agent needs
no libpcap at run time; tests hold it to libpcap's output for the same ports (`udp port 53 or tcp port 53`)
on every frame without fragments, and to the kernel's own verdicts on frames sent through a filtered socket.

Two link layers: Ethernet (veth, the pod interfaces of every common CNI; the IP header at offset 14) and raw
IP (tunnels, WireGuard, `SOCK_DGRAM` sockets; the IP header at offset 0).
"""

from __future__ import annotations

import ctypes
import socket
import struct
from collections.abc import Iterable

# Opcodes (linux/bpf_common.h, linux/filter.h).
_LD, _LDX, _JMP, _RET, _ALU = 0x00, 0x01, 0x05, 0x06, 0x04
_W, _H, _B = 0x00, 0x08, 0x10
_ABS, _IND, _MSH = 0x20, 0x40, 0xA0
_JEQ, _JSET = 0x10, 0x40
_RSH = 0x70
_K = 0x00

SNAPLEN = 262_144
"""Bytes of an accepted packet handed over (libpcap's default): whole packets, as the decoder expects."""

SO_ATTACH_FILTER = 26

ETHERNET_HEADER = 14
"""Offset of the IP header in an Ethernet frame (pod interfaces carry no VLAN tags)."""
RAW_IP_HEADER = 0

Instruction = tuple[int, int, int, int]
"""(code, jump if true, jump if false, k), as `struct sock_filter` and `tcpdump -dd` spell it."""


class _Program:
    """A tiny assembler: instructions with symbolic jump targets, resolved into relative offsets at the end."""

    def __init__(self) -> None:
        self._code: list[tuple[int, object, object, int]] = []
        self._labels: dict[str, int] = {}

    def label(self, name: str) -> None:
        self._labels[name] = len(self._code)

    def op(self, code: int, k: int = 0) -> None:
        self._code.append((code, 0, 0, k))

    def jump(self, code: int, k: int, if_true: str | int, if_false: str | int) -> None:
        """`if_true`/`if_false`: a label, or 0 for the next instruction."""
        self._code.append((code, if_true, if_false, k))

    def assemble(self) -> list[Instruction]:
        out = []
        for index, (code, jt, jf, k) in enumerate(self._code):
            jt = self._labels[jt] - index - 1 if isinstance(jt, str) else jt
            jf = self._labels[jf] - index - 1 if isinstance(jf, str) else jf
            if not (0 <= jt < 256 and 0 <= jf < 256):  # classic BPF jumps only forward, at most 255
                raise ValueError("filter program too long for a conditional jump")
            out.append((code, jt, jf, k & 0xFFFFFFFF))
        return out


def dns_filter(ports: Iterable[int], link_header: int = ETHERNET_HEADER) -> list[Instruction]:
    """The program passing UDP/TCP with a port in `ports` (either side), IPv4 and IPv6, after `link_header`
    bytes of link layer (`ETHERNET_HEADER` or `RAW_IP_HEADER`)."""
    ports = sorted(set(ports))
    if not ports or not all(0 < port < 65536 for port in ports):
        raise ValueError(f"ports must be 1-65535: {ports}")
    if len(ports) > 60:  # each port is two jumps; far past what anyone gives, and the jumps must reach `accept`
        raise ValueError("at most 60 DNS ports")
    p = _Program()
    ip = link_header
    if link_header == ETHERNET_HEADER:
        p.op(_LD | _H | _ABS, 12)  # EtherType
        p.jump(_JMP | _JEQ | _K, 0x0800, "ipv4", 0)
        p.jump(_JMP | _JEQ | _K, 0x86DD, "ipv6", "reject")
    elif link_header == RAW_IP_HEADER:
        p.op(_LD | _B | _ABS, 0)
        p.op(_ALU | _RSH | _K, 4)  # the IP version
        p.jump(_JMP | _JEQ | _K, 4, "ipv4", 0)
        p.jump(_JMP | _JEQ | _K, 6, "ipv6", "reject")
    else:
        raise ValueError(f"unsupported link header length {link_header}")

    p.label("ipv4")
    p.op(_LD | _B | _ABS, ip + 9)  # protocol
    p.jump(_JMP | _JEQ | _K, 17, 1, 0)
    p.jump(_JMP | _JEQ | _K, 6, 0, "reject")
    p.op(_LD | _H | _ABS, ip + 6)  # flags and fragment offset
    p.jump(_JMP | _JSET | _K, 0x1FFF, "accept", 0)  # a later fragment: no ports to look at
    p.op(_LDX | _B | _MSH, ip)  # X = IPv4 header length
    p.op(_LD | _H | _IND, ip)  # source port
    _port_tests(p, ports, "accept", 0)
    p.op(_LD | _H | _IND, ip + 2)  # destination port
    _port_tests(p, ports, "accept", "reject")

    p.label("ipv6")
    p.op(_LD | _B | _ABS, ip + 6)  # next header
    p.jump(_JMP | _JEQ | _K, 17, 2, 0)
    p.jump(_JMP | _JEQ | _K, 6, 1, 0)
    p.jump(_JMP | _JEQ | _K, 44, "accept", "reject")  # a fragment: its ports may be in another packet
    p.op(_LD | _H | _ABS, ip + 40)
    _port_tests(p, ports, "accept", 0)
    p.op(_LD | _H | _ABS, ip + 42)
    _port_tests(p, ports, "accept", "reject")

    p.label("accept")
    p.op(_RET | _K, SNAPLEN)
    p.label("reject")
    p.op(_RET | _K, 0)
    return p.assemble()


def _port_tests(p: _Program, ports: list[int], matched: str, otherwise: str | int) -> None:
    for port in ports[:-1]:
        p.jump(_JMP | _JEQ | _K, port, matched, 0)
    p.jump(_JMP | _JEQ | _K, ports[-1], matched, otherwise)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def attach(sock: socket.socket, program: list[Instruction]) -> None:
    """Attach `program` to `sock` (SO_ATTACH_FILTER); the kernel copies it, so nothing here must live on."""
    code = b"".join(struct.pack("=HBBI", *instruction) for instruction in program)
    buffer = ctypes.create_string_buffer(code, len(code))
    fprog = _SockFprog(len(program), ctypes.addressof(buffer))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, bytes(fprog))
