"""Cluster DNS traffic as the synthetic captures make it: the demo (`pcaps.make_demo`) and the benchmark
workload (`bench.workload`) share what a Kubernetes node's DNS looks like, whatever story each tells.

Here: when the captures start, the cluster's fixed resolvers, glibc's ndots:5 search list, the zones' SOA
records, DNS messages and the answers CoreDNS gives (its kubernetes plugin for Service names, a CNAME chain
and its addresses for the rest), and the client ports; and a capture of nothing but new names, every
exchange an event (`write_tunnel_capture`), for the spool's tests and benchmark. Deterministic: randomness
comes from the caller's seeded `random.Random`, drawn exactly as each generator always drew it, so their
output stays byte for byte what it was.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

from dnslib import AAAA, QTYPE, RCODE, RR, SOA, A, CNAME, DNSHeader, DNSQuestion, DNSRecord

from pcaps import wire

START_US = 1_795_810_296 * 1_000_000  # 2026-11-27T20:11:36Z
"""When the captures start, in µs since the epoch."""

KUBE_DNS_SERVICE = "10.96.0.10"
"""The kube-dns Service address pods send their queries to."""
UPSTREAM_RESOLVER = "192.168.10.2"  # the node's resolver, where CoreDNS forwards names outside the cluster

SEARCH_SUFFIXES = ("svc.cluster.local", "cluster.local")
CLUSTER_SOA = ("cluster.local", "ns.dns.cluster.local", "hostmaster.cluster.local", (1795800000, 7200, 1800, 86400, 30))
ROOT_SOA = ("", "a.root-servers.net", "nstld.verisign-grs.com", (2026112700, 1800, 900, 604800, 86400))


def soa(spec: tuple) -> RR:
    """The SOA record of (owner, mname, rname, (serial, refresh, retry, expire, minimum)); TTL the minimum."""
    owner, mname, rname, times = spec
    return RR(owner or ".", QTYPE.SOA, ttl=times[4], rdata=SOA(mname, rname, times))


def search_list(name: str, namespace: str, absolute: bool = False) -> list[str]:
    """The names glibc asks for `name` from a pod in `namespace` (ndots:5): the search list first, unless the
    name is absolute or has five dots or more, then the name itself."""
    if absolute or name.count(".") >= 5:
        return [name]
    return [f"{name}.{namespace}.svc.cluster.local"] + [f"{name}.{suffix}" for suffix in SEARCH_SUFFIXES] + [name]


def ephemeral_port(rng: random.Random) -> int:
    """A client's source port, from Linux's default ephemeral range."""
    return rng.randrange(32768, 61000)


def dns_query(qid: int, qname: str, qtype: str) -> DNSRecord:
    return DNSRecord(DNSHeader(id=qid, qr=0, rd=1), q=DNSQuestion(qname, getattr(QTYPE, qtype)))


def dns_response(query: DNSRecord, rcode: int, answers: list[RR], authority: list[RR], aa: bool) -> DNSRecord:
    header = DNSHeader(id=query.header.id, qr=1, aa=int(aa), rd=1, ra=1, rcode=rcode)
    return DNSRecord(header, questions=[query.q], rr=list(answers), auth=list(authority))


def service_answer(services: dict[str, list[str]], qname: str, qtype: str) -> tuple[int, list[RR], list[RR], bool]:
    """(rcode, answers, authority, authoritative) for a cluster name as CoreDNS's kubernetes plugin answers it:
    a Service's A records (5 s TTL); NOERROR and no data for another type (single-stack Services, the SOA says
    for how long); NXDOMAIN with the cluster SOA for a name that is no Service."""
    addresses = services.get(qname)
    if addresses is None:
        return RCODE.NXDOMAIN, [], [soa(CLUSTER_SOA)], True
    if qtype != "A":
        return RCODE.NOERROR, [], [soa(CLUSTER_SOA)], True
    return RCODE.NOERROR, [RR(qname, QTYPE.A, ttl=5, rdata=A(a)) for a in addresses], [], True


def chain_answers(qname: str, chain: list[str], qtype: str, v4: list[str], v6: list[str], *, cname_ttl: int,
                  address_ttl: int) -> tuple[list[RR], str]:
    """The answers for a name outside the cluster: its CNAME chain, then the A or AAAA records (for those
    types) of the chain's last name; and that last name, which owns any other record of the answer."""
    answers, owner = [], qname
    for target in chain:
        answers.append(RR(owner, QTYPE.CNAME, ttl=cname_ttl, rdata=CNAME(target)))
        owner = target
    if qtype == "A":
        answers += [RR(owner, QTYPE.A, ttl=address_ttl, rdata=A(a)) for a in v4]
    elif qtype == "AAAA":
        answers += [RR(owner, QTYPE.AAAA, ttl=address_ttl, rdata=AAAA(a)) for a in v6]
    return answers, owner


# --- a capture of nothing but new names ------------------------------------------------------------

# The tunnel capture's client and resolver: (address, MAC) each.
_TUNNEL_CLIENT = (wire.ip_bytes("10.244.1.10"), wire.mac_bytes("02:42:0a:f4:01:0a"))
_TUNNEL_SERVER = (wire.ip_bytes(KUBE_DNS_SERVICE), wire.CALICO_HOST_MAC)


def _question(name: str) -> bytes:
    return b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\0" + b"\0\1\0\1"


def write_tunnel_capture(path: Path, names: int) -> None:
    """`names` exchanges, each a query for a new name under tunnel.example and its NXDOMAIN answer, 1 ms apart."""
    (client, client_mac), (server, server_mac) = _TUNNEL_CLIENT, _TUNNEL_SERVER
    with open(path, "wb") as out:
        writer = wire.PcapWriter(out)
        for i in range(names):
            body = _question(f"h{i:06d}.tunnel.example")
            ident, sport, ts = i & 0xFFFF, 20000 + i % 40000, 1_790_000_000_000_000 + i * 1000
            query = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + body
            answer = struct.pack("!HHHHHH", ident, 0x8183, 1, 0, 0, 0) + body
            writer.write(ts, wire.udp_frame(client_mac, server_mac, client, server, sport, 53, query))
            writer.write(ts + 200, wire.udp_frame(server_mac, client_mac, server, client, 53, sport, answer))
        writer.flush()
