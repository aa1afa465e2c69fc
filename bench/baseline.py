"""The "dnslib per packet" baseline of the replay target (docs/architecture.md), run in our replay's process.

An honest, straightforward implementation of what a Python engineer would write first: read the classic
pcap with `struct`, peel Ethernet (and 802.1Q tags) / IPv4 / IPv6 / UDP or TCP by hand, hand EVERY DNS
payload to `dnslib.DNSRecord.parse`, and look up every question name, every record's owner name and every
name-valued rdata in a Python set (exact entries, plus `*.parent` for each parent, for wildcard entries).
It is not deliberately slowed, and it does less than the agent (no transactions, no attribution, no IP
fragments or TCP reassembly: a TCP segment counts only when it holds exactly one length-prefixed message).
"""

from __future__ import annotations

import struct
import sys
import time
from pathlib import Path

from dnslib import DNSRecord

_PCAP_MAGIC = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">", b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}
_NAME_FIELDS = ("label", "mname", "rname", "target")  # CNAME/NS/PTR/MX/DNAME, SOA, SOA, SRV/SVCB/HTTPS


def load_feed_names(path: Path) -> set[str]:
    """The entries of a newline-delimited feed file as a set (lower-case; `*.x` entries kept as written)."""
    with open(path, encoding="utf-8") as stream:
        return {line.strip().rstrip(".").lower() for line in stream if line.strip() and not line.startswith("#")}


def _listed(name: str, feed: set[str]) -> bool:
    if name in feed:
        return True
    dot = name.find(".")
    while dot >= 0:
        if "*" + name[dot:] in feed:  # "*" + ".parent": a wildcard entry covering this name
            return True
        dot = name.find(".", dot + 1)
    return False


def _message_matches(record: DNSRecord, feed: set[str]) -> bool:
    labels = [question.qname for question in record.questions]
    for rr in record.rr + record.auth + record.ar:
        labels.append(rr.rname)
        rdata = rr.rdata
        for attribute in _NAME_FIELDS:
            value = getattr(rdata, attribute, None)
            if value is not None and not isinstance(value, (str, bytes, int)):
                labels.append(value)
    for label in labels:
        if _listed(str(label).rstrip(".").lower(), feed):
            return True
    return False


def baseline_replay(pcap_path: Path | str, feed_names: set[str], ports: tuple[int, ...] = (53,)) -> dict:
    """Replay a classic pcap the dnslib way; returns packets, seconds, matches (messages naming a feed entry),
    dns_messages and malformed (payloads dnslib refused)."""
    started = time.perf_counter()
    data = Path(pcap_path).read_bytes()
    order = _PCAP_MAGIC.get(data[:4])
    if order is None:
        raise ValueError(f"{pcap_path}: not a classic pcap file")
    linktype = struct.unpack_from(order + "I", data, 20)[0]
    if linktype != 1:
        raise ValueError(f"{pcap_path}: link type {linktype}, the baseline reads Ethernet only")
    record_header = struct.Struct(order + "IIII")
    dns_ports = frozenset(ports)
    packets = messages = matches = malformed = 0
    offset, end = 24, len(data)
    while offset + 16 <= end:
        _, _, captured, _ = record_header.unpack_from(data, offset)
        frame = data[offset + 16:offset + 16 + captured]
        offset += 16 + captured
        packets += 1
        ethertype = (frame[12] << 8) | frame[13]
        at = 14
        while ethertype in (0x8100, 0x88A8) and len(frame) >= at + 4:
            ethertype = (frame[at + 2] << 8) | frame[at + 3]
            at += 4
        if ethertype == 0x0800:
            if (struct.unpack_from("!H", frame, at + 6)[0] & 0x1FFF) != 0:  # a later fragment
                continue
            proto = frame[at + 9]
            at += (frame[at] & 0x0F) * 4
        elif ethertype == 0x86DD:
            proto = frame[at + 6]
            at += 40
        else:
            continue
        if proto == 17:
            sport, dport = struct.unpack_from("!HH", frame, at)
            if sport not in dns_ports and dport not in dns_ports:
                continue
            payload = frame[at + 8:]
        elif proto == 6:
            sport, dport = struct.unpack_from("!HH", frame, at)
            if sport not in dns_ports and dport not in dns_ports:
                continue
            payload = frame[at + (frame[at + 12] >> 4) * 4:]
            if len(payload) < 2 or struct.unpack_from("!H", payload)[0] != len(payload) - 2:
                continue
            payload = payload[2:]
        else:
            continue
        messages += 1
        try:
            record = DNSRecord.parse(payload)
        except Exception:  # dnslib raises several types on damaged input; the baseline only counts them
            malformed += 1
            continue
        if _message_matches(record, feed_names):
            matches += 1
    return {"packets": packets, "seconds": time.perf_counter() - started, "matches": matches,
            "dns_messages": messages, "malformed": malformed}


def main(argv: list[str] | None = None) -> int:
    from bench.workload import WorkloadSpec, ensure_workload

    args = sys.argv[1:] if argv is None else argv
    spec = WorkloadSpec(packets=int(args[0])) if args else WorkloadSpec()
    work = ensure_workload(spec)
    feed = load_feed_names(work.feed)
    result = baseline_replay(work.capture, feed)
    rate = result["packets"] / result["seconds"]
    print(f"dnslib baseline: {result['packets']} packets in {result['seconds']:.2f} s = {rate:,.0f} packets/s; "
          f"{result['matches']} messages match (expected {work.hit_messages}), {result['malformed']} malformed")
    return 0 if result["matches"] == work.hit_messages else 1


if __name__ == "__main__":
    sys.exit(main())
