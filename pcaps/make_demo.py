"""Generate the demo capture, its pod list, feeds and expected events: `python -m pcaps.make_demo [--check]`.

The demo is one node (`node-1`) of a small Calico cluster, captured on every pod veth (`cali*`, one pcapng
interface each) for about twenty seconds from 2026-11-27T20:11:36Z. Most traffic is what Kubernetes DNS
really looks like — ndots:5 search-path expansion, NXDOMAIN with the cluster SOA, A and AAAA asked in
parallel, CoreDNS on the same node so a transaction is seen on the client's veth (to the Service IP) and
again on CoreDNS's veth (to the pod IP, after kube-proxy's DNAT), CoreDNS forwarding cache misses upstream.
Among it are the suspicious transactions listed in `demo-expected.json`, each exercising one rule of
docs/detection.md, and a few malformed messages.

`demo-expected.json` is ground truth written from what this script put in, not from running the agent;
as a guard, every transaction is re-decoded with dnslib and checked against the feeds with a naive matcher,
and generation fails if that finds a match the script did not declare (or misses one it did).

Everything is seeded and timestamps are fixed, so the output is byte-for-byte reproducible; `--check`
regenerates into a temporary directory and compares with the committed files.
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import json
import random
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import idna
from dnslib import QTYPE, RCODE, RR, TXT, DNSRecord

from pcaps import wire
from pcaps.generated import generator_main, stale_files
from pcaps.synth import (KUBE_DNS_SERVICE, ROOT_SOA, START_US, UPSTREAM_RESOLVER, chain_answers, dns_query,
                         dns_response, ephemeral_port, search_list, service_answer, soa)

HERE = Path(__file__).resolve().parent
SEED = 20261127
NODE = "node-1"
OUTPUTS = ("demo.pcapng", "demo-pods.json", "demo-c2.txt", "demo-exfil.txt", "demo-badips.txt",
           "demo-feeds.yaml", "demo-expected.json")

PUBLIC_RESOLVER6 = "2001:4860:4860::8888"
EXTERNAL_TTL = 60
IDN_C2 = "bücher-c2.example"
IDN_C2_WIRE = idna.encode("bücher-c2", uts46=True).decode() + ".example"


# --- the cluster ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    ip: str
    ip6: str
    node: str
    labels: dict
    owner_kind: str
    owner_name: str
    image: str
    phase: str = "Running"
    host_network: bool = False

    @property
    def iface(self) -> str:
        # Calico names a pod's host-side veth "cali" + the first 11 hex digits of sha1("<ns>.<pod>").
        return "cali" + hashlib.sha1(f"{self.namespace}.{self.name}".encode()).hexdigest()[:11]

    @property
    def mac(self) -> bytes:
        digest = hashlib.sha1(f"mac/{self.namespace}/{self.name}".encode()).digest()
        return bytes([0x02 | (digest[0] & 0xFC)]) + digest[1:6]  # locally administered, unicast


PODS = (
    Pod("shop", "web-7d4b9c-x2x1", "10.244.1.10", "fd00:10:244:1::a", NODE, {"app": "web", "pod-template-hash": "7d4b9c"},
        "ReplicaSet", "web-7d4b9c", "registry.example/shop/web:1.14.2"),
    Pod("shop", "web-7d4b9c-k9zq2", "10.244.1.11", "fd00:10:244:1::b", NODE, {"app": "web", "pod-template-hash": "7d4b9c"},
        "ReplicaSet", "web-7d4b9c", "registry.example/shop/web:1.14.2"),
    Pod("shop", "web-7d4b9c-p3m8n", "10.244.2.7", "fd00:10:244:2::7", "node-2", {"app": "web", "pod-template-hash": "7d4b9c"},
        "ReplicaSet", "web-7d4b9c", "registry.example/shop/web:1.14.2"),
    Pod("shop", "cart-5f6d8-abcde", "10.244.1.23", "fd00:10:244:1::17", NODE, {"app": "cart", "pod-template-hash": "5f6d8"},
        "ReplicaSet", "cart-5f6d8", "registry.example/shop/cart:3.2.0"),
    # Completed before the capture; its address now belongs to cart (a running pod wins).
    Pod("data", "db-migrate-28911-q7k2v", "10.244.1.23", "fd00:10:244:1::17", NODE,
        {"batch.kubernetes.io/job-name": "db-migrate-28911", "job-name": "db-migrate-28911"},
        "Job", "db-migrate-28911", "registry.example/data/migrate:2.0.1", phase="Succeeded"),
    Pod("data", "db-0", "10.244.1.30", "fd00:10:244:1::1e", NODE,
        {"app": "db", "statefulset.kubernetes.io/pod-name": "db-0", "controller-revision-hash": "db-6c9f7b8d5"},
        "StatefulSet", "db", "docker.io/library/postgres:16.4"),
    Pod("data", "db-1", "10.244.2.31", "fd00:10:244:2::1f", "node-2",
        {"app": "db", "statefulset.kubernetes.io/pod-name": "db-1", "controller-revision-hash": "db-6c9f7b8d5"},
        "StatefulSet", "db", "docker.io/library/postgres:16.4"),
    Pod("monitoring", "node-exporter-xyz12", "10.244.1.40", "fd00:10:244:1::28", NODE,
        {"app.kubernetes.io/name": "node-exporter", "controller-revision-hash": "7b9d5c6f4"},
        "DaemonSet", "node-exporter", "quay.io/prometheus/node-exporter:v1.8.2"),
    Pod("monitoring", "node-exporter-m4q8w", "10.244.2.40", "fd00:10:244:2::28", "node-2",
        {"app.kubernetes.io/name": "node-exporter", "controller-revision-hash": "7b9d5c6f4"},
        "DaemonSet", "node-exporter", "quay.io/prometheus/node-exporter:v1.8.2"),
    Pod("kube-system", "coredns-6d4b-aaaaa", "10.244.0.5", "fd00:10:244::5", NODE, {"k8s-app": "kube-dns", "pod-template-hash": "6d4b"},
        "ReplicaSet", "coredns-6d4b", "registry.k8s.io/coredns/coredns:v1.11.3"),
    Pod("kube-system", "coredns-6d4b-bbbbb", "10.244.2.3", "fd00:10:244:2::3", "node-2", {"k8s-app": "kube-dns", "pod-template-hash": "6d4b"},
        "ReplicaSet", "coredns-6d4b", "registry.k8s.io/coredns/coredns:v1.11.3"),
    Pod("kube-system", "kube-proxy-7xk2p", "192.168.10.11", "", NODE, {"k8s-app": "kube-proxy", "controller-revision-hash": "5d4f8c9b7"},
        "DaemonSet", "kube-proxy", "registry.k8s.io/kube-proxy:v1.31.2", host_network=True),
)
POD = {f"{p.namespace}/{p.name}": p for p in PODS}
WEB_A, WEB_B, CART, DB0, EXPORTER = (POD[k] for k in (
    "shop/web-7d4b9c-x2x1", "shop/web-7d4b9c-k9zq2", "shop/cart-5f6d8-abcde", "data/db-0", "monitoring/node-exporter-xyz12"))
COREDNS_LOCAL, COREDNS_REMOTE = POD["kube-system/coredns-6d4b-aaaaa"], POD["kube-system/coredns-6d4b-bbbbb"]
# An address from the pod range that no listed pod holds (its pod was deleted before the list was taken).
STRAY = Pod("-", "-", "10.244.1.250", "", NODE, {}, "", "", "")

SERVICES = {  # cluster names CoreDNS answers; headless services answer with pod addresses
    "kubernetes.default.svc.cluster.local": ["10.96.0.1"],
    "api.shop.svc.cluster.local": ["10.96.12.40"],
    "cart.shop.svc.cluster.local": ["10.96.12.41"],
    "redis.shop.svc.cluster.local": ["10.96.40.2"],
    "db.data.svc.cluster.local": ["10.244.1.30", "10.244.2.31"],
    "db-0.db.data.svc.cluster.local": ["10.244.1.30"],
    "prometheus.monitoring.svc.cluster.local": ["10.96.80.9"],
}
# External names: (CNAME chain after the owner, A, AAAA, TXT); anything absent is NXDOMAIN.
EXTERNAL = {
    "google.com": ([], ["142.250.185.78"], ["2a00:1450:4001:80b::200e"], []),
    "www.googleapis.com": ([], ["142.250.186.42", "142.250.185.106"], ["2a00:1450:4001:829::200a"], []),
    "api.github.com": ([], ["140.82.121.6"], [], []),
    "registry-1.docker.io": ([], ["54.236.113.205", "3.94.224.37", "54.227.20.253"], [], []),
    "www.github.com": (["github.com"], ["140.82.121.4"], [], []),
    "hooks.slack.com": (["hooks-slack.global.ssl.fastly.net"], ["151.101.194.49"], [], []),
    # suspicious ones
    "evil.example": ([], ["198.51.100.7"], [], []),
    "www.evil.example": ([], ["198.51.100.8"], [], []),
    "static.partner-cdn.test": (["cdn-update.badsite.example"], ["203.0.113.50"], [], []),
    "img.cdn-static.test": ([], ["192.0.2.9", "198.51.100.200"], ["2001:db8:bad::9"], []),
    IDN_C2_WIRE: ([], ["198.51.100.23"], [], []),
    "payload.dropper.test": ([], [], [], ["v=stage2;k=Zm9vYmFyYmF6;n=4", "chunk=aGVsbG8td29ybGQ"]),
    "x7f3.tunnel.exfil.example": ([], [], [], ["ack=1;seq=7f3"]),
    "exfil.example": ([], ["203.0.113.10"], [], []),
    "q1w2e3.dropzone.test": ([], ["203.0.113.88"], [], []),
    "c2-relay.example": ([], [], ["2001:db8:c2::1"], []),
    "beacon.malware.test": ([], ["203.0.113.77"], [], []),
    "stager.evil-cdn.test": ([], ["203.0.113.91", "203.0.113.92"], [], []),
}

# --- the feeds (file text, and the canonical entries the naive matcher uses) ---------------------------

C2_FEED = f"""\
# dnswatch demo feed: command-and-control domains
# format: one entry per line; hosts-file, adblock and URL lines are accepted too
! exported from the SOC blocklist, 2026-11-27
evil.example
0.0.0.0 beacon.malware.test
127.0.0.1 localhost
||cdn-update.badsite.example^
{IDN_C2}
c2-relay.example    # relay seen in incident 4711
https://payload.dropper.test/stage2.bin
stager.evil-cdn.test
update-check.never-seen.example
"""
C2_EXACT = {"evil.example", "beacon.malware.test", "cdn-update.badsite.example", IDN_C2_WIRE, "c2-relay.example",
            "payload.dropper.test", "stager.evil-cdn.test", "update-check.never-seen.example"}

EXFIL_FEED = """\
# dnswatch demo feed: DNS tunnelling and exfiltration endpoints
*.exfil.example
*.dns-tunnel.test
# with matchSubdomains: true a plain entry covers its subdomains too
dropzone.test
address=/exfil-drop.test/0.0.0.0
tunnel-relay.example CNAME .
"""
EXFIL_ENTRIES = {"dropzone.test", "exfil-drop.test", "tunnel-relay.example"}  # plain, matchSubdomains
EXFIL_WILDCARDS = {"exfil.example", "dns-tunnel.test"}  # strict subdomains only

BADIPS_FEED = """\
# dnswatch demo feed: known-bad addresses
203.0.113.66
192.0.2.0/28
198.18.0.1
2001:db8:bad::/48
"""
BADIPS = [ipaddress.ip_network(n) for n in ("203.0.113.66/32", "192.0.2.0/28", "198.18.0.1/32", "2001:db8:bad::/48")]

FEEDS_YAML = """\
# GlobalThreatFeed manifests for the demo. A relative file: URL is resolved against this file's directory.
apiVersion: dnswatch.dev/v1
kind: GlobalThreatFeed
metadata:
  name: c2
  labels:
    team: secops
    source: soc-blocklist
spec:
  content: DomainNameSet
  severity: 80
  mode: Enabled
  description: Known command-and-control domains
  feedType: Custom
  pull:
    period: 24h
    http:
      url: file:demo-c2.txt
      format:
        newlineDelimited: {}
---
apiVersion: dnswatch.dev/v1
kind: GlobalThreatFeed
metadata:
  name: exfil
spec:
  content: DomainNameSet
  mode: Enabled
  description: DNS tunnelling and exfiltration endpoints
  feedType: Custom
  matchSubdomains: true
  pull:
    period: 12h
    http:
      url: file:demo-exfil.txt
---
apiVersion: dnswatch.dev/v1
kind: GlobalThreatFeed
metadata:
  name: badips
spec:
  content: IPSet
  mode: Enabled
  description: Known-bad addresses
  pull:
    period: 24h
    http:
      url: file:demo-badips.txt
"""


def naive_matches(messages: list[bytes]) -> tuple[set[str], set[str], set[str]]:
    """(domains, ips, feeds) a straightforward reading of docs/detection.md finds in these messages (the guard)."""
    domains, ips, feeds = set(), set(), set()
    for wire_message in messages:
        record = DNSRecord.parse(wire_message)
        names = [q.qname for q in record.questions]
        for rr in record.rr + record.auth + record.ar:
            names.append(rr.rname)
            names.extend(getattr(rr.rdata, attr) for attr in ("label", "mname", "rname", "target") if hasattr(rr.rdata, attr))
            if rr in record.rr and rr.rtype in (QTYPE.A, QTYPE.AAAA):
                address = ipaddress.ip_address(str(rr.rdata))
                if any(address in network for network in BADIPS):
                    ips.add(str(address))
                    feeds.add("badips")
        for label in names:
            name = str(label).rstrip(".").lower()
            parents = [name.split(".", i)[i] for i in range(1, name.count(".") + 1)]
            if name in C2_EXACT:
                domains.add(name)
                feeds.add("c2")
            if name in EXFIL_ENTRIES or any(p in EXFIL_ENTRIES or p in EXFIL_WILDCARDS for p in parents):
                domains.add(name)
                feeds.add("exfil")
    return domains, ips, feeds


# --- DNS answers -----------------------------------------------------------------------------------------

def authoritative_answer(qname: str, qtype: str, ttl_left: int | None = None) -> tuple[int, list[RR], list[RR], bool]:
    """(rcode, answers, authority, authoritative) for a name as CoreDNS (or upstream, via CoreDNS) answers it."""
    if qname.endswith(".cluster.local") or qname == "cluster.local":
        return service_answer(SERVICES, qname, qtype)
    if qname not in EXTERNAL:
        return RCODE.NXDOMAIN, [], [soa(ROOT_SOA)], False
    chain, v4, v6, txt = EXTERNAL[qname]
    ttl = EXTERNAL_TTL if ttl_left is None else ttl_left  # CoreDNS's cache counts the TTL down
    answers, owner = chain_answers(qname, chain, qtype, v4, v6, cname_ttl=ttl, address_ttl=ttl)
    if qtype == "TXT":
        answers += [RR(owner, QTYPE.TXT, ttl=ttl, rdata=TXT(t)) for t in txt]
    return RCODE.NOERROR, answers, [], False


# --- the capture ------------------------------------------------------------------------------------------

@dataclass
class Expected:
    """One expected event (pod mode), accumulated over transactions."""
    pod: Pod
    client_ip: str
    domains: tuple[str, ...]
    ips: tuple[str, ...]
    feeds: tuple[str, ...]
    note: str
    count: int = 0


@dataclass
class Capture:
    rng: random.Random
    packets: list = field(default_factory=list)  # (ts_us, seq, iface, frame)
    qnames: set = field(default_factory=set)
    expected: dict = field(default_factory=dict)
    cache: dict = field(default_factory=dict)  # CoreDNS-on-this-node cache: (qname, qtype) -> expiry µs
    silent: list = field(default_factory=list)  # names queried that must NOT alert, with why
    malformed: int = 0  # DNS messages damaged on purpose

    def emit(self, ts_us: int, iface: str, frame: bytes) -> None:
        self.packets.append((ts_us, len(self.packets), iface, frame))

    def udp(self, ts_us: int, iface: str, src_mac: bytes, dst_mac: bytes, src: str, dst: str, sport: int, dport: int,
            payload: bytes, ttl: int = 64) -> None:
        frame = wire.udp_frame(src_mac, dst_mac, wire.ip_bytes(src), wire.ip_bytes(dst), sport, dport, payload,
                               ident=self.rng.randrange(65536), ttl=ttl)
        self.emit(ts_us, iface, frame)

    def record_qname(self, qname: str) -> None:
        self.qnames.add(qname)

    def declare(self, pod: Pod, client_ip: str, domains=(), ips=(), feeds=(), note: str = "") -> None:
        key = (pod.namespace, pod.name, client_ip, tuple(sorted(domains)), tuple(sorted(ips)), tuple(sorted(feeds)))
        entry = self.expected.setdefault(key, Expected(pod, client_ip, key[3], key[4], key[5], note))
        entry.count += 1

    # A transaction from a pod on this node through the kube-dns Service (or straight to another resolver).
    def transaction(self, t: int, client: Pod, qname: str, qtype: str, sport: int, *, via: str = "local",
                    expect: dict | None = None, server: str = KUBE_DNS_SERVICE, mangle=None,
                    query_lost: bool = False) -> int:
        """Emit a query and its response; return the response time on the client's veth.

        via: "local" — CoreDNS on this node (seen on both veths), "remote" — the CoreDNS on node-2 (client's
        veth only), "direct" — `server` is an outside resolver (client's veth only).
        """
        query = dns_query(self.rng.randrange(1, 65536), qname, qtype)
        q_bytes = query.pack()
        self.record_qname(qname)
        local = via == "local"
        upstream_delay = 0
        ttl_left = None
        if local and not qname.endswith("cluster.local"):  # only this node's CoreDNS is seen forwarding
            key = (qname, qtype)
            expiry = self.cache.get(key)
            if expiry is None or expiry < t:
                upstream_delay = self.forward_upstream(t + 120, qname, qtype)
                self.cache[key] = t + EXTERNAL_TTL * 1_000_000
            else:
                ttl_left = max(1, (expiry - t) // 1_000_000)
        rcode, answers, authority, aa = authoritative_answer(qname, qtype, ttl_left)
        r_bytes = dns_response(query, rcode, answers, authority, aa).pack()
        if mangle is not None:
            r_bytes = mangle(r_bytes)
            self.malformed += 2 if local else 1  # one message per veth it is seen on
        messages = [] if query_lost else [q_bytes]
        if mangle is None:
            messages.append(r_bytes)
            found = naive_matches(messages)
            wanted = expect or {}
            declared = (set(wanted.get("domains", ())), set(wanted.get("ips", ())), set(wanted.get("feeds", ())))
            if found != declared:
                raise AssertionError(f"{client.name} {qname}/{qtype}: naive matcher found {found}, declared {declared}")
        client_ip = client.ip6 if ":" in server else client.ip
        if expect is not None:
            self.declare(client, client_ip, **expect)

        service_rtt = self.rng.randrange(150, 450) + upstream_delay
        t_resp = t + service_rtt + (self.rng.randrange(300, 900) if via == "remote" else 0)
        if via == "direct":
            t_resp = t + self.rng.randrange(9_000, 16_000)
        if not query_lost:
            self.udp(t, client.iface, client.mac, wire.CALICO_HOST_MAC, client_ip, server, sport, 53, q_bytes)
        self.udp(t_resp, client.iface, wire.CALICO_HOST_MAC, client.mac, server, client_ip, 53, sport, r_bytes,
                 ttl=63 if local else 62)
        if local:  # the same exchange on CoreDNS's veth, after kube-proxy's DNAT to the pod address
            core = COREDNS_LOCAL
            if not query_lost:
                self.udp(t + 35, core.iface, wire.CALICO_HOST_MAC, core.mac, client_ip, core.ip, sport, 53, q_bytes, ttl=63)
            self.udp(t_resp - 30, core.iface, core.mac, wire.CALICO_HOST_MAC, core.ip, client_ip, 53, sport, r_bytes)
        return t_resp

    def forward_upstream(self, t: int, qname: str, qtype: str) -> int:
        """CoreDNS's own query upstream for a cache miss; returns the delay it adds. Never an event."""
        core = COREDNS_LOCAL
        query = dns_query(self.rng.randrange(1, 65536), qname, qtype)
        rcode, answers, authority, aa = authoritative_answer(qname, qtype)
        sport = ephemeral_port(self.rng)
        delay = self.rng.randrange(1_800, 4_500)
        self.udp(t, core.iface, core.mac, wire.CALICO_HOST_MAC, core.ip, UPSTREAM_RESOLVER, sport, 53, query.pack())
        self.udp(t + delay, core.iface, wire.CALICO_HOST_MAC, core.mac, UPSTREAM_RESOLVER, core.ip, 53, sport,
                 dns_response(query, rcode, answers, authority, aa).pack(), ttl=63)
        return delay + 60

    def lookup(self, t: int, client: Pod, name: str, qtypes=("A", "AAAA"), *, fqdn: bool = False,
               via: str | None = None, server: str = KUBE_DNS_SERVICE, expect: dict | None = None) -> int:
        """A glibc-style getaddrinfo: ndots:5 search list first, A and AAAA in parallel from one socket."""
        for candidate in search_list(name, client.namespace, absolute=fqdn):
            path = via or self.rng.choice(("local", "local", "remote"))  # kube-proxy picks a CoreDNS per socket
            sport = ephemeral_port(self.rng)
            done = t
            for i, qtype in enumerate(qtypes):
                hit = expect if candidate == name else None
                done = max(done, self.transaction(t + 25 * i, client, candidate, qtype, sport, via=path, server=server,
                                                  expect=hit))
            t = done + self.rng.randrange(40, 200)
            rcode = authoritative_answer(candidate, qtypes[0])[0]
            if rcode == RCODE.NOERROR:
                break
        return t

    def tcp_transaction(self, t: int, client: Pod, qname: str, qtype: str, expect: dict) -> None:
        """DNS over TCP through the Service to the local CoreDNS: handshake, the query written as length then
        message (two segments), the response, and the close — on both veths."""
        query = dns_query(self.rng.randrange(1, 65536), qname, qtype)
        rcode, answers, authority, aa = authoritative_answer(qname, qtype)
        response = dns_response(query, rcode, answers, authority, aa).pack()
        q_bytes = query.pack()
        assert naive_matches([q_bytes, response]) == (set(expect["domains"]), set(), set(expect["feeds"]))
        self.record_qname(qname)
        self.declare(client, client.ip, **expect)
        sport = ephemeral_port(self.rng)
        cseq, sseq = self.rng.randrange(2**32), self.rng.randrange(2**32)
        framed_q = wire.dns_over_tcp(q_bytes)
        framed_r = wire.dns_over_tcp(response)
        # CoreDNS has the whole query 180 µs in (on its veth: +35), asks upstream, then answers.
        upstream = self.forward_upstream(t + 180 + 35 + 60, qname, qtype)
        steps = [  # (µs after the previous step, sent by the client?, TCP flags, payload)
            (0, True, wire.TCP_SYN, b""), (90, False, wire.TCP_SYN | wire.TCP_ACK, b""), (40, True, wire.TCP_ACK, b""),
            (30, True, wire.TCP_PSH | wire.TCP_ACK, framed_q[:2]), (20, True, wire.TCP_PSH | wire.TCP_ACK, framed_q[2:]),
            (60, False, wire.TCP_ACK, b""), (upstream + 120, False, wire.TCP_PSH | wire.TCP_ACK, framed_r),
            (50, True, wire.TCP_ACK, b""), (30, True, wire.TCP_FIN | wire.TCP_ACK, b""),
            (70, False, wire.TCP_FIN | wire.TCP_ACK, b""), (40, True, wire.TCP_ACK, b""),
        ]
        core = COREDNS_LOCAL
        c_next, s_next = cseq, sseq
        for delay, from_client, flags, payload in steps:
            t += delay
            syn = flags & wire.TCP_SYN
            seq = (c_next if from_client else s_next)
            ack = 0 if flags == wire.TCP_SYN else (s_next if from_client else c_next)
            advance = len(payload) + (1 if syn or flags & wire.TCP_FIN else 0)
            views = ((client.iface, client.mac, wire.CALICO_HOST_MAC, KUBE_DNS_SERVICE, 0),
                     (core.iface, wire.CALICO_HOST_MAC, core.mac, core.ip, 35))
            for iface, mac_c, mac_s, server_ip, lag in views:
                c_ip, s_ip = wire.ip_bytes(client.ip), wire.ip_bytes(server_ip)
                if from_client:
                    frame = wire.tcp_frame(mac_c, mac_s, c_ip, s_ip, sport, 53, seq, ack, flags, payload,
                                           ident=self.rng.randrange(65536), ttl=64 if lag == 0 else 63)
                    ts = t + lag
                else:
                    frame = wire.tcp_frame(mac_s, mac_c, s_ip, c_ip, 53, sport, seq, ack, flags, payload,
                                           ident=self.rng.randrange(65536), ttl=64 if lag else 63)
                    ts = t + (35 - lag)
                self.emit(ts, iface, frame)
            if from_client:
                c_next += advance
            else:
                s_next += advance


# --- malformed messages ---------------------------------------------------------------------------------

def truncate_mid_answer(message: bytes) -> bytes:
    """Cut a response inside its last record's rdata: the question stays intact."""
    return message[:-3]


def compression_loop(message: bytes) -> bytes:
    """Replace the first answer's owner name by a pointer to itself."""
    record = DNSRecord.parse(message)
    qlen = sum(len(label) + 1 for label in record.q.qname.label) + 1 + 4
    answer_at = 12 + qlen
    # dnslib compresses the owner to a 2-byte pointer to the question (0xC00C); point it at itself instead.
    assert message[answer_at:answer_at + 2] == b"\xc0\x0c"
    return message[:answer_at] + bytes([0xC0 | (answer_at >> 8), answer_at & 0xFF]) + message[answer_at + 2:]


def bogus_answer_count(message: bytes) -> bytes:
    """Claim 200 answers where there is one."""
    return message[:6] + (200).to_bytes(2, "big") + message[8:]


# --- the story --------------------------------------------------------------------------------------------

def _c2(name: str, note: str) -> dict:
    return {"domains": [name], "feeds": ["c2"], "note": note}


def build_capture() -> Capture:
    cap = Capture(random.Random(SEED))
    s = 1_000_000  # one second in µs
    t0 = START_US

    # Background: every pod on the node resolves its dependencies and the internet, as real pods do.
    background = [
        (WEB_A, "api"), (WEB_A, "redis"), (WEB_A, "google.com"), (WEB_A, "cart"), (WEB_A, "api"),
        (WEB_B, "api"), (WEB_B, "cart"), (WEB_B, "hooks.slack.com"), (WEB_B, "redis"),
        (CART, "redis"), (CART, "db.data"), (CART, "api.github.com"), (CART, "api"),
        (DB0, "db-0.db.data.svc.cluster.local"), (DB0, "kubernetes.default.svc.cluster.local"), (DB0, "www.github.com"),
        (EXPORTER, "prometheus.monitoring"), (EXPORTER, "kubernetes.default"),
        (WEB_A, "www.googleapis.com"), (CART, "registry-1.docker.io"), (WEB_B, "google.com"),
    ]
    for i, (pod, name) in enumerate(background):
        start = t0 + int((i + cap.rng.random()) * 20 * s / len(background))
        cap.lookup(start, pod, name)

    # A beacon: web-x2x1 resolves the C2 name every ~3.3 s (absolute name: no search-path expansion).
    for k in range(6):
        cap.lookup(t0 + 800_000 + k * 3_300_000 + cap.rng.randrange(0, 9_000), WEB_A, "evil.example", ("A",),
                   fqdn=True, via="local", expect=_c2("evil.example", "plain entry; both veths; forwarded upstream once"))
    cap.lookup(t0 + 11 * s, WEB_A, "www.evil.example", ("A",), fqdn=True, via="local")
    cap.silent.append(("www.evil.example", "plain entry evil.example covers only itself (no matchSubdomains)"))

    # Wildcard entry *.exfil.example: a tunnel query; the apex itself must not match.
    cap.lookup(t0 + 4 * s + 200_000, WEB_B, "x7f3.tunnel.exfil.example", ("TXT",), fqdn=True, via="local",
               expect={"domains": ["x7f3.tunnel.exfil.example"], "feeds": ["exfil"], "note": "wildcard *.exfil.example"})
    cap.lookup(t0 + 12 * s + 500_000, WEB_B, "exfil.example", ("A",), fqdn=True, via="local")
    cap.silent.append(("exfil.example", "*.exfil.example matches strict subdomains, not the apex"))

    # An answer address in the IPSet feed, for A and for AAAA (two transactions, two matched addresses).
    t = t0 + 7 * s + 100_000
    sport = ephemeral_port(cap.rng)
    cap.transaction(t, WEB_B, "img.cdn-static.test", "A", sport, via="local",
                    expect={"ips": ["192.0.2.9"], "feeds": ["badips"], "note": "A answer inside 192.0.2.0/28"})
    cap.transaction(t + 25, WEB_B, "img.cdn-static.test", "AAAA", sport, via="local",
                    expect={"ips": ["2001:db8:bad::9"], "feeds": ["badips"], "note": "AAAA answer inside 2001:db8:bad::/48"})

    # A CNAME chain whose target is listed; the queried name itself is clean. With search-path expansion.
    cap.lookup(t0 + 5 * s + 600_000, CART, "static.partner-cdn.test", ("A",), via="local",
               expect=_c2("cdn-update.badsite.example", "CNAME target listed (adblock line); running pod wins over completed Job"))
    # matchSubdomains: the plain entry dropzone.test covers a subdomain.
    cap.lookup(t0 + 14 * s + 300_000, CART, "q1w2e3.dropzone.test", ("A",), fqdn=True, via="remote",
               expect={"domains": ["q1w2e3.dropzone.test"], "feeds": ["exfil"], "note": "matchSubdomains: true"})
    # A truncated response whose query was not captured: its question is intact and still checked.
    cap.transaction(t0 + 9 * s + 400_000, CART, "stager.evil-cdn.test", "A", ephemeral_port(cap.rng),
                    via="remote", mangle=truncate_mid_answer, query_lost=True)
    cap.declare(CART, CART.ip, domains=["stager.evil-cdn.test"], feeds=["c2"], note="response only, truncated inside its answer")

    # An IDN entry written in Unicode in the feed, queried in punycode.
    cap.lookup(t0 + 2 * s + 700_000, DB0, IDN_C2_WIRE, ("A",), fqdn=True, via="local",
               expect=_c2(IDN_C2_WIRE, f"feed line in Unicode ({IDN_C2})"))
    # A query over TCP (both veths, the length prefix in its own segment).
    cap.tcp_transaction(t0 + 10 * s + 800_000, DB0, "payload.dropper.test", "TXT",
                        expect=_c2("payload.dropper.test", "DNS over TCP; feed line is a URL"))

    # Over IPv6, straight to a public resolver (bypassing cluster DNS).
    cap.lookup(t0 + 8 * s + 300_000, EXPORTER, "c2-relay.example", ("AAAA",), fqdn=True, via="direct",
               server=PUBLIC_RESOLVER6, expect=_c2("c2-relay.example", "IPv6, straight to a public resolver"))

    # A client that is no pod (seen on its own veth only, CoreDNS on node-2 answers).
    for k in range(2):
        cap.lookup(t0 + 3 * s + k * 9 * s, STRAY, "beacon.malware.test", ("A",), fqdn=True, via="remote",
                   expect=_c2("beacon.malware.test", "client is no pod: reported by address"))

    # Malformed: a compression loop and a bogus count in answers to clean questions, and a runt.
    sport = ephemeral_port(cap.rng)
    cap.transaction(t0 + 6 * s + 500_000, WEB_A, "redis.shop.svc.cluster.local", "A", sport, via="remote",
                    mangle=compression_loop)
    cap.transaction(t0 + 15 * s + 100_000, EXPORTER, "prometheus.monitoring.svc.cluster.local", "A",
                    ephemeral_port(cap.rng), via="remote", mangle=bogus_answer_count)
    cap.udp(t0 + 17 * s + 250_000, WEB_B.iface, WEB_B.mac, wire.CALICO_HOST_MAC, WEB_B.ip, KUBE_DNS_SERVICE,
            ephemeral_port(cap.rng), 53, b"\x13\x37\x01\x00\x00")  # shorter than a DNS header
    cap.malformed += 1
    return cap


# --- the pod list --------------------------------------------------------------------------------------

def _uid(kind: str, namespace: str, name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"dnswatch-demo/{kind}/{namespace}/{name}"))


def pod_object(pod: Pod, index: int) -> dict:
    """A `kubectl get pods -o json` item, trimmed of nothing an agent might read."""
    started = "2026-11-27T08:02:11Z" if pod.phase == "Running" else "2026-11-27T03:00:04Z"
    owner_api = "batch/v1" if pod.owner_kind == "Job" else "apps/v1"
    container = pod.image.rsplit("/", 1)[-1].split(":")[0]
    running = pod.phase == "Running"
    state = ({"running": {"startedAt": started}} if running else
             {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started,
                             "finishedAt": "2026-11-27T03:01:37Z", "containerID": f"containerd://{_uid('c', pod.namespace, pod.name).replace('-', '')}"}})
    pod_ips = [pod.ip] + ([pod.ip6] if pod.ip6 and not pod.host_network else [])
    host_ip = "192.168.10.11" if pod.node == NODE else "192.168.10.12"
    metadata = {
        "name": pod.name,
        "namespace": pod.namespace,
        "uid": _uid("Pod", pod.namespace, pod.name),
        "resourceVersion": str(48_213 + 37 * index),
        "creationTimestamp": started,
        "labels": dict(pod.labels),
        "ownerReferences": [{
            "apiVersion": owner_api, "kind": pod.owner_kind, "name": pod.owner_name,
            "uid": _uid(pod.owner_kind, pod.namespace, pod.owner_name), "controller": True, "blockOwnerDeletion": True,
        }],
    }
    if pod.owner_kind in ("ReplicaSet", "DaemonSet", "Job"):
        metadata["generateName"] = pod.name[: pod.name.rfind("-") + 1]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {
            "containers": [{
                "name": container,
                "image": pod.image,
                "imagePullPolicy": "IfNotPresent",
                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
            }],
            "dnsPolicy": "ClusterFirstWithHostNet" if pod.host_network else ("Default" if pod.labels.get("k8s-app") == "kube-dns" else "ClusterFirst"),
            "enableServiceLinks": True,
            "hostNetwork": pod.host_network,
            "nodeName": pod.node,
            "restartPolicy": "OnFailure" if pod.owner_kind == "Job" else "Always",
            "schedulerName": "default-scheduler",
            "serviceAccountName": "default",
            "terminationGracePeriodSeconds": 30,
        },
        "status": {
            "phase": pod.phase,
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": started},
                {"type": "Initialized", "status": "True", "lastTransitionTime": started},
                {"type": "Ready", "status": "True" if running else "False", "lastTransitionTime": started},
            ],
            "hostIP": host_ip,
            "hostIPs": [{"ip": host_ip}],
            "podIP": pod.ip,
            "podIPs": [{"ip": ip} for ip in pod_ips],
            "startTime": started,
            "containerStatuses": [{
                "name": container, "image": pod.image, "imageID": "", "ready": running, "restartCount": 0,
                "started": running, "state": state,
            }],
            "qosClass": "Burstable",
        },
    }


def pod_list_json() -> str:
    items = [pod_object(pod, i) for i, pod in enumerate(PODS)]
    return json.dumps({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items},
                      indent=2, ensure_ascii=False) + "\n"


# --- writing --------------------------------------------------------------------------------------------

def capture_bytes(cap: Capture) -> bytes:
    out = io.BytesIO()
    writer = wire.PcapngWriter(out, application="dnswatch pcaps.make_demo", os_name="Linux 6.8.0", hardware="x86_64")
    interfaces: dict[str, int] = {}
    describe = {pod.iface: f"{pod.namespace}/{pod.name}" for pod in PODS}
    for ts, _, iface, frame in sorted(cap.packets):
        if iface not in interfaces:
            interfaces[iface] = writer.add_interface(iface, description=describe.get(iface, "unknown pod"))
        writer.write(ts, frame, interfaces[iface])
    return out.getvalue()


def expected_json(cap: Capture) -> str:
    events = []
    for entry in sorted(cap.expected.values(), key=lambda e: (e.pod.namespace, e.pod.name, e.domains, e.ips)):
        pod = entry.pod
        events.append({
            "source_namespace": pod.namespace, "source_name": pod.name, "source_ip": entry.client_ip,
            "source_workload": None if pod.name == "-" else {"kind": _workload(pod)[0], "name": _workload(pod)[1]},
            "suspicious_domains": list(entry.domains), "suspicious_ips": list(entry.ips), "feeds": list(entry.feeds),
            "count": entry.count, "note": entry.note,
        })
    document = {
        "description": "Ground truth for demo.pcapng, written by pcaps/make_demo.py from what it put in.",
        "node": NODE,
        "aggregate_by": "pod",
        "feeds": {"c2": "demo-c2.txt", "exfil": "demo-exfil.txt", "badips": "demo-badips.txt"},
        "events": events,
        "not_alerting": [{"name": name, "why": why} for name, why in cap.silent] + [
            {"name": "(CoreDNS upstream queries)", "why": "the cluster DNS forwarding for its clients raises no event"}],
        "capture": {"packets": len(cap.packets), "first": "2026-11-27T20:11:36Z", "malformed": cap.malformed,
                    "qnames": sorted(cap.qnames)},
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _workload(pod: Pod) -> tuple[str, str]:
    if pod.owner_kind == "ReplicaSet":  # web-7d4b9c -> Deployment web
        return "Deployment", pod.owner_name.rsplit("-", 1)[0]
    return pod.owner_kind, pod.owner_name


def generate(directory: Path) -> list[str]:
    """Write every demo file into `directory`; returns their names."""
    cap = build_capture()
    files = {
        "demo.pcapng": capture_bytes(cap),
        "demo-pods.json": pod_list_json().encode(),
        "demo-c2.txt": C2_FEED.encode(),
        "demo-exfil.txt": EXFIL_FEED.encode(),
        "demo-badips.txt": BADIPS_FEED.encode(),
        "demo-feeds.yaml": FEEDS_YAML.encode(),
        "demo-expected.json": expected_json(cap).encode(),
    }
    assert tuple(files) == OUTPUTS
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return list(files)


def check(directory: Path = HERE) -> list[str]:
    """Names of the committed files that differ from a fresh generation (empty when all match)."""
    return stale_files(generate, directory)


def main(argv: list[str] | None = None) -> int:
    return generator_main(argv, module="make_demo", description=__doc__.splitlines()[0], generate=generate, default=HERE)


if __name__ == "__main__":
    sys.exit(main())
