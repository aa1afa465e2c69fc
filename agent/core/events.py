"""The security event (docs/event.md), compatible with Calico's `gtf_suspicious_dns_query` events.

The schema is the dataclasses below, each field described once in its metadata (`schema()` lists them all,
so docs and tables are generated from here). `build_event` fills it from an aggregated event; only here is
a matched message decoded in full, with dnslib — a few messages, never the per-packet path.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from datetime import datetime, timezone
from typing import Any, get_args, get_type_hints

import dnslib

from agent.core.aggregate import Event
from agent.core.answerslice import displayable_prefix
from agent.core.attribution import address_text
from agent.core.transactions import Transaction
from dnswatch.feeds.spec import DEFAULT_SEVERITY

NO_VALUE = "-"  # Calico's placeholder for a name that does not apply (a client that is no pod)
MAX_ANSWERS = 32  # a hostile response may carry thousands of records; the event shows the first ones
MITRE_IDS = ("T1041",)
MITIGATIONS = ("Create a global network policy to prevent traffic from this IP address",)


def _doc(doc: str, **kw: Any) -> Any:
    return field(metadata={"doc": doc}, **kw)


@dataclass(frozen=True, slots=True, kw_only=True)
class MatchRecord:
    name: str = _doc("the observed name (canonical A-label) or answer address that matched")
    feed: str = _doc("the feed holding the entry")
    entry: str = _doc("the feed entry that matched: `evil.com`, `*.evil.com`, `198.51.100.0/24`")
    section: str = _doc("where the name was found: question, answer, authority or additional")
    feed_version: str | None = _doc("the version of the feed's set that matched: the collector's (`7`), or "
                                    "`sha256:` and 12 hex digits of a replay's local feed body")
    line: int | None = _doc("the entry's 1-based line in the feed's body of that version (newline-delimited "
                            "feeds); null when not known")
    line_text: str | None = _doc("that line as written, when it differs from `entry`: `0.0.0.0 Evil.COM`, "
                                 "`*.evil.com.`; null otherwise")


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkloadRecord:
    kind: str = _doc("Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, CronJob, ... or Pod for a bare pod")
    name: str = _doc("the workload's name")


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    feeds: list[str] = _doc("the feeds that matched, sorted")
    feed_labels: dict[str, dict[str, str]] = _doc("per feed that matched, its labels (the GlobalThreatFeed's "
                                                  "metadata.labels): {feed: {label: value}}")
    suspicious_domains: list[str] = _doc("the observed names that matched a domain feed, canonical, sorted")
    suspicious_ips: list[str] = _doc("the answer addresses that matched an IP feed, sorted")
    matches: list[MatchRecord] = _doc("every match folded into the event, in the order first seen")
    qname: str = _doc("the question name of the latest transaction, canonical; empty when there was none")
    qtype: str = _doc("its question type mnemonic: A, AAAA, TYPE65534")
    rcode: str | None = _doc("the response code (NOERROR, NXDOMAIN, ...); null when no response was seen")
    server_ip: str = _doc("the DNS server as the client addressed it (the service IP when seen on both sides)")
    answers: list[str] = _doc(f"the answer section as `owner TYPE rdata` (at most {MAX_ANSWERS}); [] when none")
    count: int = _doc("DNS transactions folded into this event in its window, cumulative across re-emissions")
    first_seen: str = _doc("capture time of the first transaction, RFC 3339 UTC")
    last_seen: str = _doc("capture time of the latest transaction, RFC 3339 UTC")


@dataclass(frozen=True, slots=True, kw_only=True)
class SecurityEvent:
    id: str = _doc("window start (8 hex digits) + stable hash of node, client, names, feeds and window start: "
                   "re-emissions share it, and ids sort by window")
    time: str = _doc("first_seen, RFC 3339 UTC with milliseconds")
    type: str = _doc("always gtf_suspicious_dns_query", default="gtf_suspicious_dns_query")
    severity: int = _doc("the highest severity (0-100) of the feeds that matched; 100, as Calico's threat-feed "
                         "events, unless a feed sets spec.severity", default=100)
    origin: str = _doc("always `Suspicious DNS Query`", default="Suspicious DNS Query")
    name: str = _doc("always `Suspicious DNS Query`", default="Suspicious DNS Query")
    description: str = _doc("one line for people: who queried (or received) what, from which feeds")
    host: str = _doc("the node whose agent saw the traffic")
    source_ip: str = _doc("the client address; `-` when the event folds a workload's replicas")
    source_namespace: str = _doc("the client pod's namespace; `-` for a client that is no pod")
    source_name: str = _doc("the client pod's name; `-` for no pod, or when aggregated by workload")
    source_name_aggr: str = _doc("`web-7d4b9c-*` per Calico; the owner's name when aggregated by workload")
    source_labels: dict[str, str] = _doc("the client pod's labels (those all folded replicas share)")
    source_workload: WorkloadRecord | None = _doc("the client pod's owning workload; null for a client that is no pod")
    attack_vector: str = _doc("always Network", default="Network")
    # The next three are Calico's for its DNS threat-feed events, word for word, so that a consumer written
    # for Calico's events (a SIEM rule on mitre_tactic, a webhook showing mitigations) needs no change.
    mitre_ids: list[str] = _doc("always [T1041] (Exfiltration Over C2 Channel), as Calico's",
                                default_factory=lambda: list(MITRE_IDS))
    mitre_tactic: str = _doc("always `Exfiltration`, as Calico's", default="Exfiltration")
    mitigations: list[str] = _doc("always Calico's one: `Create a global network policy to prevent traffic "
                                  "from this IP address`", default_factory=lambda: list(MITIGATIONS))
    record: Record = _doc("the DNS details")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def schema() -> list[tuple[str, str]]:
    """(dotted field path, description) for every field of the event, in output order."""
    return _describe(SecurityEvent, "")


def _describe(cls: type, prefix: str) -> list[tuple[str, str]]:
    out = []
    hints = get_type_hints(cls)
    for f in fields(cls):
        path = prefix + f.name
        out.append((path, f.metadata["doc"]))
        inner = next((t for t in (hints[f.name], *get_args(hints[f.name])) if is_dataclass(t)), None)
        if inner is not None:
            out += _describe(inner, path + ".")
    return out


def build_event(ev: Event, node: str) -> dict[str, Any]:
    """The event dict for one emission of an aggregated event."""
    return _security_event(ev, node).to_dict()


def _security_event(ev: Event, node: str) -> SecurityEvent:
    pod = ev.pod
    domains = sorted({m.name for m in ev.matches if m.kind == "domain"})
    ips = sorted({m.name for m in ev.matches if m.kind == "ip"})
    if pod is None:
        namespace = name = name_aggr = NO_VALUE
        workload = None
        who = address_text(ev.client) if ev.client else NO_VALUE
    else:
        namespace = pod.namespace
        workload = WorkloadRecord(kind=pod.workload.kind, name=pod.workload.name)
        if ev.aggregate_by == "workload":
            name, name_aggr = NO_VALUE, pod.workload.name
        else:
            name, name_aggr = pod.name, pod.name_aggr
        # Calico names the pod, or its aggregated name when the pod's own is aggregated away.
        who = f"{namespace}/{name if name != NO_VALUE else name_aggr}"
    return SecurityEvent(
        id=event_id(node, ev),
        time=rfc3339(ev.first_seen),
        description=_description(who, domains, ips, ev.feeds),
        host=node,
        source_ip=address_text(ev.client) if ev.client else NO_VALUE,
        source_namespace=namespace,
        source_name=name,
        source_name_aggr=name_aggr,
        source_labels=dict(ev.labels),
        source_workload=workload,
        severity=max(m.feed_severity for m in ev.matches) if ev.matches else DEFAULT_SEVERITY,
        record=_record(ev, domains, ips),
    )


def event_id(node: str, ev: Event) -> str:
    """The same key and window always give the same id: a re-emission or a retried replay replaces, never adds.

    32 hex digits: the window's start (epoch seconds, 8 digits, modulo 2^32) and then 24 of the hash. Ids
    made at about the same time sort together, as a UUIDv7 does: the collector's unique index on the id is
    then written near its end, not at a random page per event, which kept its ingest rate from falling as
    the store grows. 96 bits of hash per window second leave collisions out of reach."""
    # \x1f cannot occur in a node name, DNS name, feed name or address, so the parts cannot run into each other.
    text = "\x1f".join((node, ev.identity, "~".join(ev.names), "~".join(ev.feeds), repr(ev.window_start)))
    digest = hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()
    return f"{int(ev.window_start) & 0xFFFF_FFFF:08x}{digest[:24]}"


def rfc3339(ts: float) -> str:
    """`2026-11-27T20:11:36.123Z`: UTC, milliseconds, as Calico and Elasticsearch write times."""
    seconds, millis = divmod(round(ts * 1000), 1000)
    stamp = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{millis:03d}Z"


def _description(who: str, domains: list[str], ips: list[str], feeds: tuple[str, ...]) -> str:
    what = []
    if domains:
        what.append(f"queried the domain name {', '.join(domains)}")
    if ips:
        what.append(f"received the address(es) {', '.join(ips)}")
    return f"{who} {' and '.join(what)} from global threat feed(s) {', '.join(feeds)}"


def _record(ev: Event, domains: list[str], ips: list[str]) -> Record:
    tx = ev.transaction
    message = tx.message
    rcode, answers = _response_details(tx)
    return Record(
        feeds=list(ev.feeds),
        feed_labels={m.feed: dict(m.feed_labels) for m in ev.matches},  # the latest match's, per feed
        suspicious_domains=domains,
        suspicious_ips=ips,
        matches=[MatchRecord(name=m.name, feed=m.feed, entry=m.entry, section=m.section, feed_version=m.feed_version,
                             line=m.line, line_text=m.line_text) for m in ev.matches],
        qname=message.qname,
        qtype=type_mnemonic(message.qtype),
        rcode=rcode,
        server_ip=address_text(tx.server),
        answers=answers,
        count=ev.count,
        first_seen=rfc3339(ev.first_seen),
        last_seen=rfc3339(ev.last_seen),
    )


def type_mnemonic(qtype: int) -> str:
    return dnslib.QTYPE.forward.get(qtype) or f"TYPE{qtype}"  # RFC 3597's form for unknown types


def rcode_mnemonic(rcode: int) -> str:
    return dnslib.RCODE.forward.get(rcode) or f"RCODE{rcode}"


def _response_details(tx: Transaction) -> tuple[str | None, list[str]]:
    """(rcode, answers) of the transaction's response; (None, []) when no response was seen."""
    response = tx.response
    if response is None:
        return None, []
    payload = response.payload
    rcode = rcode_mnemonic(payload[3] & 0x0F) if len(payload) >= 4 else None
    shown = displayable_prefix(payload, MAX_ANSWERS)
    if shown is None:
        return rcode, []
    try:
        return rcode, [_answer_text(rr) for rr in dnslib.DNSRecord.parse(shown).rr]
    except Exception:  # dnslib raises DNSError, struct.error, IndexError, ... on hostile bytes: the event stands
        return rcode, []


_NAME_RDATA = {"CNAME", "DNAME", "NS", "PTR"}


def _answer_text(rr: dnslib.RR) -> str:
    rtype = type_mnemonic(rr.rtype)
    rdata = rr.rdata.toZone()
    if rtype in _NAME_RDATA:
        rdata = _name_text(rdata)
    return f"{_name_text(str(rr.rname))} {rtype} {rdata}"


def _name_text(name: str) -> str:
    """Names as the rest of the event writes them: lower case, no trailing dot (the root stays `.`)."""
    return name.rstrip(".").lower() or "."
