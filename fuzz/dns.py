"""DNS messages: the scanner (`Matcher.scan`, `NameCollector.collect`, `question_of`, `read_name`) and, for a
matched message, what happens off the hot path (`answerslice`, and the event built with dnslib).

Inputs are whole DNS messages, seeded with every message of the repository's captures and the hostile ones.
The scanner's documented rejections are `Damaged` and IndexError out of `read_name` (a name cut short);
`scan`, `collect` and `question_of` raise nothing: damage is their answer. Cross-checks: a second scan (from
the cache) agrees with the first, the matches are a subset of what `NameCollector` walked past, and every
name `read_name` returns is one well-formed uncompressed name of at most 255 octets.
"""

from __future__ import annotations

import ipaddress
import json
from functools import cache

from agent.core.answerslice import displayable_prefix
from dnswatch.feeds.domainset import DomainSet
from agent.core.eventpipeline import EventPipeline
from dnswatch.feeds.lines import parse_domain_lines, parse_ip_lines
from dnswatch.feeds.ipset import IPSet
from agent.core.scanner import SECTIONS, Damaged, Matcher, NameCollector, dotted, question_of, read_name, wire_labels
from agent.shell.scanloop import sighting_of
from fuzz import seeds
from fuzz.oracle import Target, bounded, check

CLIENT, SERVER = bytes((10, 244, 1, 10)), bytes((10, 96, 0, 10))
START = 1_795_810_296.0


def _domains(path, match_subdomains: bool = False) -> DomainSet:
    return DomainSet.from_names(parse_domain_lines(path.read_bytes()).entries, match_subdomains)


@cache
def demo_feeds() -> tuple[list, list]:
    """(domain feeds, IP feeds) as the demo replays them: the demo's files and the hostile captures' feed."""
    domains = [("c2", _domains(seeds.PCAPS / "demo-c2.txt")),
               ("exfil", _domains(seeds.PCAPS / "demo-exfil.txt", match_subdomains=True)),
               ("hostile", _domains(seeds.PCAPS / "hostile" / "feed.txt"))]
    ips = [("badips", IPSet.from_entries(parse_ip_lines((seeds.PCAPS / "demo-badips.txt").read_bytes()).entries))]
    return domains, ips


@cache
def matching_feeds() -> tuple[list, list]:
    """The demo feeds plus feeds that match most seeds: each seed question's last two labels with their
    subdomains, and every address; so that most mutated messages go on to an event."""
    domains, ips = demo_feeds()
    parents = set()
    for message in seeds.dns_messages():
        name, _ = question_of(message)
        if name:
            parents.add(".".join(name.split(".")[-2:]))
    parents.discard("")
    wide = DomainSet.from_names(sorted(parents), match_subdomains=True)
    return domains + [("seen", wide)], ips + [("any", IPSet.from_entries(["0.0.0.0/0", "::/0"]))]


def _names_walked(message: bytes) -> tuple[bool, set[str], set[str]]:
    collector = NameCollector()
    damaged = collector.collect(message)
    names = {dotted(list(labels)).decode("ascii", "backslashreplace") for labels in collector.names}
    addresses = {str(ipaddress.ip_address(a)) for a in collector.addresses if len(a) in (4, 16)}
    return damaged, names, addresses


def scan_one(message: bytes) -> None:
    domains, ips = demo_feeds()
    matcher = Matcher(domains, ips)
    damaged, matches = matcher.scan(message)
    check(matcher.scan(message) == (damaged, matches), "a second scan (from the cache) differs from the first")
    walked_damaged, names, addresses = _names_walked(message)
    check(walked_damaged == damaged, "NameCollector and Matcher disagree on whether the message is damaged")
    for match in matches:
        check(match.section in SECTIONS, f"match in an unknown section {match.section!r}")
        check(match.name in (names if match.kind == "domain" else addresses),
              f"match {match.name!r} is not among the names and addresses the walk found")
    qname, qtype = question_of(message)
    check(isinstance(qname, str) and 0 <= qtype <= 0xFFFF, "question_of gave no (str, 16-bit type)")
    check(qname == "" or qname in names, f"question {qname!r} is not among the names the walk found")
    for offset in range(12, min(len(message), 12 + 48)):
        try:
            wire, after = read_name(message, offset)
        except (Damaged, IndexError):
            continue
        check(len(wire) <= 255 and wire_labels(wire) is not None, f"read_name at {offset} returned a bad name")
        check(offset < after <= len(message), f"read_name at {offset} ends at {after}")


def event_one(message: bytes) -> None:
    domains, ips = matching_feeds()
    matcher = Matcher(domains, ips)
    _damaged, matches = matcher.scan(message)
    shown = displayable_prefix(message, 32)
    check(shown is None or (shown[4:6] in (b"\x00\x00", b"\x00\x01") and (shown[6] << 8 | shown[7]) <= 32
                            and shown[8:12] == b"\x00" * 4), "the answer slice counts more than it shows")
    if not matches or len(message) < 12:
        return
    pipeline = EventPipeline(node="fuzz", pods=None)
    response = bool(message[2] & 0x80)
    ends = (SERVER, 53, CLIENT, 40000) if response else (CLIENT, 40000, SERVER, 53)
    events = pipeline.observe(sighting_of(START, ends[0], ends[1], ends[2], ends[3], 17, message, matches))
    events += pipeline.finish()
    check(pipeline.counters()["events_emitted"] == len(events), "emitted events and the counter differ")
    check(bool(events) or pipeline.build_errors > 0, "a matched message made no event")
    check(pipeline.build_errors == 0, f"building the event failed: {pipeline.last_build_error}")
    for event in events:
        json.dumps(event)  # what the output and the shipper do with it
        check(event["record"]["count"] >= 1, "an event with no transaction")


TARGETS = [
    Target("scanner", "agent/core/scanner.py: Matcher.scan on the demo feeds, NameCollector, question_of, read_name",
           bounded(scan_one), seeds.dns_messages),
    Target("events", "agent/core/answerslice.py and events.py: a matched message through EventPipeline to its event",
           bounded(event_one), seeds.dns_messages),
]
