"""A TPACKET_V3 receive ring: the kernel writes packets into memory we share, in blocks, with no system call
per packet.

Why, when one `recvfrom` per packet costs only a few µs (bench/live.py): the socket receive buffer that
`recvfrom` reads from is capped by `net.core.rmem_max` (212,992 bytes on most distributions) unless the
process holds CAP_NET_ADMIN, which the DaemonSet does not grant (NET_RAW only); at ~800 bytes of
kernel bookkeeping per small packet that is ~500 packets, a few milliseconds of DNS at 20k queries/s on the
DNS server's interface. A ring's size is ours to choose with NET_RAW alone, packets sit in it back to back
(~250 bytes for a DNS query), and the kernel hands over a block when it is full or `retire_ms` after its
first packet, so one wakeup reads many packets.

Memory: the ring's pages are the kernel's, allocated when the interface is opened, whether or not traffic
comes: 2 MiB (the default) × the captured interfaces, 220 MiB on a node of 110 pods. `--ring-mb` trades that
against slack (2 MiB ≈ 9,000 DNS packets, half a second of 20k queries/s on one interface). One ring shared
by every interface (an unbound socket whose filter also tests the interface index) would bound it, at the
price of per-interface drop counters: not done.

Layout (linux/if_packet.h): the ring is `blocks` blocks of `block_bytes`; each starts with a
`tpacket_block_desc` whose `block_status` says who owns it (TP_STATUS_USER: ours to read; we give it back
with TP_STATUS_KERNEL), `num_pkts` and `offset_to_first_pkt`; each packet is a `tpacket3_hdr` (next offset,
time, lengths, `tp_mac`) followed by a `sockaddr_ll` (its `sll_pkttype` tells incoming from outgoing), then
the frame at `tp_mac`.
"""

from __future__ import annotations

import mmap
import socket
import struct

SOL_PACKET = 263
PACKET_RX_RING = 5
PACKET_VERSION = 10
TPACKET_V3 = 2
TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1

_REQ3 = struct.Struct("=IIIIIII")  # block size, block count, frame size, frame count, retire ms, priv, features
_BLOCK = struct.Struct("=III")  # block_status, num_pkts, offset_to_first_pkt (at offset 8 of the block)
_STATUS = struct.Struct("=I")
# tpacket3_hdr: next offset, seconds, nanoseconds, snaplen, (len, status), tp_mac; then the sockaddr_ll at 48,
# whose sll_pkttype is byte 10 of it.
_PACKET = struct.Struct("=IIII8xH32xB")
_FRAME_BYTES = 2048  # nominal for V3 (packets are packed by their real size); must divide the block size


class PacketRing:
    """The receive ring of one AF_PACKET socket; set it up before the socket is bound to a protocol."""

    def __init__(self, sock: socket.socket, ring_bytes: int, block_bytes: int = 64 * 1024,
                 retire_ms: int = 16) -> None:
        """`ring_bytes` in blocks of `block_bytes`. A block is handed over when full or `retire_ms` after its
        first packet, whichever comes first, so at low rates each block holds only `retire_ms` of traffic and
        the ring's slack in time is about blocks × retire_ms: many small blocks (32 of 64 KiB in 2 MiB, so
        half a second) rather than a few large ones (8 of 256 KiB were 64 ms, and dropped on a busy node)."""
        page = mmap.PAGESIZE
        block_bytes = max(page, block_bytes // page * page)
        blocks = max(2, ring_bytes // block_bytes)
        sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
        request = _REQ3.pack(block_bytes, blocks, _FRAME_BYTES, block_bytes // _FRAME_BYTES * blocks, retire_ms, 0, 0)
        sock.setsockopt(SOL_PACKET, PACKET_RX_RING, request)
        self._map = mmap.mmap(sock.fileno(), block_bytes * blocks, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self.block_bytes = block_bytes
        self.blocks = blocks
        self._current = 0

    @property
    def size(self) -> int:
        return self.block_bytes * self.blocks

    def read(self, max_blocks: int) -> list[tuple[float, bytes, int]]:
        """(kernel time stamp, frame, sll_pkttype) of every packet in up to `max_blocks` blocks the kernel
        has handed over, in order; the blocks go back to the kernel at once (the frames are copies)."""
        ring = self._map
        block_bytes = self.block_bytes
        unpack_block = _BLOCK.unpack_from
        unpack_packet = _PACKET.unpack_from
        out = []
        append = out.append
        for _ in range(max_blocks):
            base = self._current * block_bytes
            status, count, offset = unpack_block(ring, base + 8)
            if not status & TP_STATUS_USER:
                break
            offset += base
            for _ in range(count):
                next_offset, seconds, nanoseconds, snaplen, mac, pkttype = unpack_packet(ring, offset)
                append((seconds + nanoseconds * 1e-9, ring[offset + mac:offset + mac + snaplen], pkttype))
                offset += next_offset
            # Handing the block back is one aligned 4-byte store after our last read of it, as libpcap does
            # (it adds a compiler barrier, which Python's interpreter loop is anyway).
            _STATUS.pack_into(ring, base + 8, TP_STATUS_KERNEL)
            self._current = (self._current + 1) % self.blocks
        return out

    def close(self) -> None:
        self._map.close()
