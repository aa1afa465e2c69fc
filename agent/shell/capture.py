"""Live capture: one AF_PACKET socket per matching interface, filtered in the kernel, read in one poll loop.

`LiveCapture.frames(stop, every_second)` yields `(ts, linktype, frame)` — what `Decoder.messages` takes —
for every DNS packet on the interfaces matching the patterns, and calls `every_second(now)` about once a
second, packets or not, so the caller's clock (aggregation windows, unanswered queries) keeps moving when
the network is quiet. Interfaces are matched again every `rescan_interval`: a pod interface that appears is
captured from then on, one that vanishes is closed (its kernel counters are kept for the totals).

Why a socket per interface rather than one for all: the kernel filter and PACKET_STATISTICS are per socket,
so drops are known per interface; and an interface that is not captured costs nothing, not even a filter run.

Each packet once. The host side of a pod's veth sees the pod's packets as incoming and the packets routed to
the pod as outgoing. A packet routed from one captured interface to another (pod to pod, a query to a DNS
server pod) would therefore be captured twice: incoming on the first, outgoing on the second. An outgoing
packet is skipped when its source address has been seen as the source of incoming packets on a captured
interface — it then came in through one and was (or will be) read there; an outgoing packet from anywhere
else (the node itself, a host-network DNS server, a pod on another node, a service address after kube-proxy's
reverse NAT) is the only copy and is kept. The addresses learnt are forgotten with their interface. On a
loopback interface, where every packet is both sent and received, outgoing copies are always skipped. Each poll
round learns from every socket's incoming packets before judging any outgoing one, and an outgoing packet
from a source not known yet waits `DUPLICATE_HOLD` (50 ms) for its twin, so the order in which sockets and
ring blocks are handed over does not matter. What slips through (one exchange seen both under a service and a
pod address, after kube-proxy's NAT) is the same transaction for the TransactionTracker, which counts it once;
the counters here are only more exact.

Reading: a TPACKET_V3 ring per interface by default (agent.shell.ring says why: a socket buffer beyond
rmem_max needs CAP_NET_ADMIN), or one `recvfrom` per packet (`ring_bytes=0`). The ring costs about half the
CPU a packet that recvfrom does; bench/README.md has the figures (bench/live.py measures both).
"""

from __future__ import annotations

import errno
import fnmatch
import logging
import select
import socket
import struct
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from agent.core.decode import LINKTYPE_ETHERNET, LINKTYPE_RAW
from dnswatch.errors import BadInput
from agent.shell import bpf
from agent.shell.ring import PacketRing

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_STATISTICS = 6
PACKET_OUTGOING = 4
SO_RCVBUFFORCE = 33

# sll_hatype of interfaces that hand AF_PACKET SOCK_RAW an Ethernet header (veth, bridges, NICs, loopback's
# all-zero one) versus none at all (tun, WireGuard, IP-in-IP: the frame starts at the IP header).
_ARPHRD_ETHER = 1
_ARPHRD_LOOPBACK = 772
_ARPHRD_RAW_IP = frozenset({0xFFFE, 768, 769, 776, 778, 65534, 519})  # NONE, TUNNEL, TUNNEL6, SIT, IPGRE, RAWIP

log = logging.getLogger(__name__)

_STATS = struct.Struct("=II")
_MAX_LEARNT = 65_536  # addresses behind captured interfaces; a node has a few hundred pods
RING_RETIRE_MS = 16  # a ring block with packets is handed over at the latest this long after it was opened
DUPLICATE_HOLD = 0.05  # seconds an outgoing packet of an unknown source waits for its incoming twin (> retire)
DRAIN_SECONDS = 1.0  # at most this long reading what is queued after a stop (under load it never empties)


@dataclass(frozen=True)
class CaptureSettings:
    """What to capture and how."""

    patterns: tuple[str, ...]
    """Interface name patterns (fnmatch: `cali*`, `veth*`); an interface matching any is captured."""
    ports: frozenset[int] = frozenset({53})
    """UDP/TCP ports carrying DNS; the kernel filter passes nothing else."""
    rescan_interval: float = 1.0
    """Seconds between two looks at the node's interfaces."""
    buffer_bytes: int = 8 * 1024 * 1024
    """Socket receive buffer per interface: how large a burst the kernel holds while we are busy."""
    stats_interval: float = 1.0
    """Seconds between two reads of the kernel's packet and drop counters."""
    batch: int = 256
    """Packets read from one socket before the next gets its turn (fairness under load)."""
    ring_bytes: int = 2 * 1024 * 1024
    """Size of each interface's TPACKET_V3 ring (agent.shell.ring); 0 reads with one `recvfrom` per packet
    from a socket buffer of `buffer_bytes` instead."""
    coalesce: float = 0.002
    """Without a ring: seconds to wait after a round that found little to read, letting packets gather in the
    socket buffers, so that one wakeup reads many rather than one each (what TPACKET_V3's block timeout does).
    Measured on the testbed (bench/live.py, capture alone): at 5k queries/s, 24 % of a core without the wait
    and 8 % with 2 ms. Events are late by as much, which nobody can tell."""


@dataclass
class InterfaceCounters:
    """The kernel's counters of one interface's socket (PACKET_STATISTICS), summed over reads."""

    name: str
    index: int
    packets: int = 0
    """Packets that passed the filter (the kernel counts drops among them)."""
    drops: int = 0
    """Packets the filter passed but the socket buffer had no room for: lost to us."""


@dataclass
class CaptureStats:
    """Everything the capture counted, for the summary and the metrics."""

    frames: int = 0
    """Frames handed on to the decoder."""
    duplicate_copies: int = 0
    """Outgoing copies skipped because the packet came in on a captured interface (or on loopback)."""
    interfaces_opened: int = 0
    interfaces_closed: int = 0
    open_errors: int = 0
    """Interfaces that matched but could not be opened (vanished at once, permissions)."""
    interfaces: dict[int, InterfaceCounters] = field(default_factory=dict)
    """Counters of the interfaces captured now, by index."""
    retired: list[InterfaceCounters] = field(default_factory=list)
    """Counters of the interfaces captured earlier and gone since."""

    @property
    def kernel_packets(self) -> int:
        return sum(c.packets for c in self.interfaces.values()) + sum(c.packets for c in self.retired)

    @property
    def kernel_drops(self) -> int:
        return sum(c.drops for c in self.interfaces.values()) + sum(c.drops for c in self.retired)


class _Interface:
    __slots__ = ("name", "index", "sock", "ring", "linktype", "ip_offset", "loopback", "counters")

    def __init__(self, name: str, index: int, sock: socket.socket, ring: PacketRing | None, linktype: int,
                 ip_offset: int, loopback: bool, counters: InterfaceCounters) -> None:
        self.name = name
        self.index = index
        self.sock = sock
        self.ring = ring
        self.linktype = linktype
        self.ip_offset = ip_offset
        self.loopback = loopback
        self.counters = counters


def open_interface_socket(
    name: str, ports: frozenset[int], buffer_bytes: int, ring_bytes: int = 0
) -> tuple[socket.socket, PacketRing | None, int, int, bool]:
    """A non-blocking AF_PACKET socket on `name` with the DNS filter and, with `ring_bytes`, a receive ring:
    (socket, ring or None, linktype, IP offset, loopback).

    The filter goes on before the socket starts receiving — bound first with protocol 0, which hands it
    nothing, to learn the link type, and only then bound for every protocol — so no unfiltered packet is
    ever queued on it.
    """
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        sock.bind((name, 0))
        hatype = sock.getsockname()[3]
        if hatype in (_ARPHRD_ETHER, _ARPHRD_LOOPBACK):
            linktype, ip_offset = LINKTYPE_ETHERNET, bpf.ETHERNET_HEADER
        elif hatype in _ARPHRD_RAW_IP:
            linktype, ip_offset = LINKTYPE_RAW, bpf.RAW_IP_HEADER
        else:
            raise OSError(errno.EPROTONOSUPPORT, f"link type {hatype} is neither Ethernet nor raw IP")
        bpf.attach(sock, bpf.dns_filter(ports, ip_offset))
        ring = None
        if ring_bytes:
            try:
                ring = PacketRing(sock, ring_bytes, retire_ms=RING_RETIRE_MS)
            except PermissionError:
                raise
            except OSError as error:  # no TPACKET_V3 (very old kernels) or no memory for it: read packet by packet
                log.warning("no %d KiB ring on %s (%s): reading it with recvfrom", ring_bytes // 1024, name,
                            error.strerror or error)
        if ring is None:
            try:  # beyond net.core.rmem_max needs CAP_NET_ADMIN, which the DaemonSet does not grant
                sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, buffer_bytes)
            except OSError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer_bytes)
        sock.setblocking(False)
        try:
            sock.bind((name, ETH_P_ALL))
        except BaseException:
            if ring is not None:
                ring.close()
            raise
        return sock, ring, linktype, ip_offset, hatype == _ARPHRD_LOOPBACK
    except BaseException:
        sock.close()
        raise


def read_kernel_stats(sock: socket.socket) -> tuple[int, int]:
    """(packets, drops) since the last read: the kernel resets PACKET_STATISTICS on every read."""
    return _STATS.unpack(sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, _STATS.size))


class LiveCapture:
    """The set of captured interfaces, kept in step with the node's; not thread-safe (one loop drives it)."""

    def __init__(self, settings: CaptureSettings) -> None:
        if not settings.patterns or not all(settings.patterns):
            raise BadInput("--interfaces needs at least one interface name pattern")
        bpf.dns_filter(settings.ports)  # a port list the filter cannot express fails here, not per interface
        self.settings = settings
        self.stats = CaptureStats()
        self._by_fd: dict[int, _Interface] = {}
        self._by_index: dict[int, _Interface] = {}
        self._poll = select.poll()
        # Source address -> index of the captured interface it came in on (see the module docstring).
        self._behind: dict[bytes, int] = {}
        self._failed: set[tuple[int, str]] = set()

    @property
    def interfaces(self) -> list[str]:
        return sorted(iface.name for iface in self._by_index.values())

    def rescan(self) -> None:
        """Open the matching interfaces not captured yet; close the captured ones that are gone or renamed."""
        present = {index: name for index, name in socket.if_nameindex() if self._matches(name)}
        for index, iface in list(self._by_index.items()):
            if present.get(index) != iface.name:
                self._close(iface, "gone")
        self._failed &= set(present.items())  # an interface that failed once is tried again if it comes back
        for index, name in present.items():
            if index not in self._by_index and (index, name) not in self._failed:
                self._open(name, index)

    def frames(
        self, stop: Callable[[], bool], every_second: Callable[[float], None] | None = None
    ) -> Iterator[tuple[float, int, bytes]]:
        """Frames from every captured interface until `stop()` is true; see the module docstring.

        Once `stop()` is true the sockets are read until they are empty (for at most `DRAIN_SECONDS`), so
        the packets of an exchange that ended just before the stop are not left in the kernel's buffers.
        Time stamps are the kernel's with a ring, the wall clock at reading without one.
        """
        settings = self.settings
        self.rescan()
        now = time.time()
        next_second = now + 1.0
        next_rescan = now + settings.rescan_interval
        next_stats = now + settings.stats_interval
        poll = self._poll.poll
        read_round = self._read_round
        behind = self._behind
        batch = settings.batch
        coalesce = 0.0 if settings.ring_bytes else settings.coalesce  # a ring hands over blocks, not packets
        sleep = time.sleep
        stats = self.stats
        frames = duplicates = 0
        drain_until = None
        # Outgoing packets from a source not (yet) known to be behind a captured interface wait here a moment:
        # its incoming copy may be in a socket or ring block handed over a little later.
        held: deque[tuple[float, float, int, bytes, bytes]] = deque()
        hold, popleft = held.append, held.popleft
        try:
            while True:
                if drain_until is None:
                    if stop():
                        drain_until = time.monotonic() + DRAIN_SECONDS
                        continue
                    wake = min(next_second, next_rescan, next_stats, held[0][0] if held else next_second)
                    ready = poll(max(0, min(wake - time.time(), 0.25)) * 1000)
                else:
                    # A ring's last block is handed over only when its retire timer fires: wait that long.
                    ready = poll(4 * RING_RETIRE_MS if settings.ring_bytes else 0)
                    if not ready or time.monotonic() > drain_until:
                        break
                now = time.time()
                round_frames, skipped = read_round(ready, batch, behind, now)
                duplicates += skipped
                if coalesce and drain_until is None and len(round_frames) < batch:
                    sleep(coalesce)
                while held and held[0][0] <= now:
                    _, ts, linktype, frame, source = popleft()
                    if source in behind:
                        duplicates += 1
                        continue
                    frames += 1
                    yield ts, linktype, frame
                for ts, linktype, frame, outgoing_source in round_frames:
                    if outgoing_source is not None:
                        if outgoing_source in behind:
                            duplicates += 1
                            continue
                        hold((now + DUPLICATE_HOLD, ts, linktype, frame, outgoing_source))
                        continue
                    frames += 1
                    yield ts, linktype, frame
                if now >= next_stats:
                    self.read_stats()
                    next_stats = now + settings.stats_interval
                if now >= next_rescan and drain_until is None:
                    self.rescan()
                    next_rescan = now + settings.rescan_interval
                if now >= next_second:
                    stats.frames += frames
                    stats.duplicate_copies += duplicates
                    frames = duplicates = 0
                    if every_second is not None:
                        every_second(now)
                    next_second = now + 1.0
            while held:  # the stop: what was held has waited long enough
                _, ts, linktype, frame, source = popleft()
                if source in behind:
                    duplicates += 1
                    continue
                frames += 1
                yield ts, linktype, frame
        finally:
            stats.frames += frames
            stats.duplicate_copies += duplicates
            self.read_stats()

    def _read_round(self, ready, batch: int, behind: dict[bytes, int], now: float) -> tuple[list, int]:
        """Up to `batch` packets (or ring blocks) from each ready socket:
        ([(ts, linktype, frame, source if outgoing else None)], outgoing copies skipped at once).

        Two passes over a round: here every socket's incoming packets teach `behind` first, and only then
        does the caller judge the outgoing ones, so the outgoing copy of a packet whose incoming copy sits in
        a socket read later in the same round is still recognised.
        """
        round_frames = []
        append = round_frames.append
        duplicates = 0
        by_fd = self._by_fd
        for fd, _ in ready:
            iface = by_fd.get(fd)
            if iface is None:
                continue
            linktype = iface.linktype
            ip = iface.ip_offset
            index = iface.index
            if iface.ring is not None:
                packets = iface.ring.read(batch)
                if not packets:
                    self._clear_error(iface)
            else:
                packets = self._receive(iface, batch, now)
            for ts, frame, pkttype in packets:
                if frame[ip] >> 4 == 4:
                    source = frame[ip + 12:ip + 16]
                else:
                    source = frame[ip + 8:ip + 24]
                if pkttype == PACKET_OUTGOING:
                    if iface.loopback:
                        duplicates += 1
                        continue
                    append((ts, linktype, frame, source))
                    continue
                # Loopback's "incoming" packets are the node's own: their sources are not behind an interface.
                if source not in behind and not iface.loopback:
                    if len(behind) >= _MAX_LEARNT:
                        behind.clear()  # a spoofing pod could fill it; forgetting only risks a duplicate
                    behind[source] = index
                append((ts, linktype, frame, None))
        return round_frames, duplicates

    @staticmethod
    def _receive(iface: _Interface, batch: int, now: float) -> list[tuple[float, bytes, int]]:
        """Up to `batch` packets by `recvfrom`, each stamped `now` (the wall clock when the socket was found
        readable: close enough for windows of seconds, and no timestamp option or ancillary data to parse)."""
        out = []
        recvfrom = iface.sock.recvfrom
        for _ in range(batch):
            try:
                frame, address = recvfrom(65536)
            except BlockingIOError:
                break
            except OSError as error:
                # ENETDOWN: the interface went down (or away: the next rescan closes it).
                if error.errno not in (errno.ENETDOWN, errno.ENXIO, errno.ENODEV):
                    raise
                break
            out.append((now, frame, address[2]))
        return out

    @staticmethod
    def _clear_error(iface: _Interface) -> None:
        """A ring socket found readable with no block to hand over carries an error (ENETDOWN when its
        interface went down): read it, or poll would report it again and again."""
        try:
            iface.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        except OSError:
            pass

    def read_stats(self) -> None:
        for iface in self._by_index.values():
            self._add_kernel_stats(iface)

    def close(self) -> None:
        for iface in list(self._by_index.values()):
            self._close(iface, None)

    # -- interfaces coming and going -------------------------------------------------------------------

    def _matches(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.settings.patterns)

    def _open(self, name: str, index: int) -> None:
        try:
            sock, ring, linktype, ip_offset, loopback = open_interface_socket(
                name, self.settings.ports, self.settings.buffer_bytes, self.settings.ring_bytes)
        except PermissionError:
            raise  # no CAP_NET_RAW: no interface will do better, the caller says so and stops
        except OSError as error:
            # Gone between the listing and the bind (a pod deleted at once), or of a kind we cannot read.
            self.stats.open_errors += 1
            self._failed.add((index, name))
            log.warning("cannot capture on %s: %s", name, error.strerror or error)
            return
        counters = InterfaceCounters(name, index)
        iface = _Interface(name, index, sock, ring, linktype, ip_offset, loopback, counters)
        self._by_fd[sock.fileno()] = iface
        self._by_index[index] = iface
        self.stats.interfaces[index] = counters
        self.stats.interfaces_opened += 1
        self._poll.register(sock.fileno(), select.POLLIN)
        kind = "ethernet" if linktype == LINKTYPE_ETHERNET else "raw IP"
        reader = f"{ring.size // 1024} KiB ring" if ring is not None else "recvfrom"
        log.info("capturing on %s (index %d, %s, %s)", name, index, kind, reader)

    def _close(self, iface: _Interface, why: str | None) -> None:
        self._add_kernel_stats(iface)
        fd = iface.sock.fileno()
        self._poll.unregister(fd)
        del self._by_fd[fd]
        del self._by_index[iface.index]
        del self.stats.interfaces[iface.index]
        if iface.ring is not None:
            iface.ring.close()
        iface.sock.close()
        self.stats.retired.append(iface.counters)
        self.stats.interfaces_closed += 1
        for address in [a for a, index in self._behind.items() if index == iface.index]:
            del self._behind[address]  # the address may be given to a pod elsewhere: learn it again
        if why:
            log.info("stopped capturing on %s (%s)", iface.name, why)

    @staticmethod
    def _add_kernel_stats(iface: _Interface) -> None:
        try:
            packets, drops = read_kernel_stats(iface.sock)
        except OSError:
            return
        iface.counters.packets += packets
        iface.counters.drops += drops
