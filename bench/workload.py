"""The benchmark workload (docs/architecture.md): a realistic 200,000-packet node capture and a 1,000,000-domain feed.

`python -m bench.workload [--packets N] [--domains N] [--force]` writes them under bench/.cache/ (kept
between runs: a directory per parameter set, complete once its meta.json exists); `ensure_workload()` does
the same from Python and returns where they are and what is in them.

The capture is what a busy cluster's DNS looks like from a node: ~300 pods in two dozen namespaces;
cluster-internal names dominate, most of them reached through the ndots:5 search list (NXDOMAINs carrying
the cluster SOA before the hit); external names with 1–3 CNAME hops through CDNs; A and AAAA asked in
parallel with 1–4 addresses; Zipf-like popularity (a few names are most of the traffic, a long tail is seen
once, some of it random-looking subdomains); PTR and SRV lookups; some clients with EDNS; CoreDNS on the
node, so half the transactions are seen on both veths plus its upstream queries; ~5 % IPv6 and a little TCP.
About 0.1 % of lookups name a feed entry (exact, wildcard, as a CNAME target, in mixed case).

The feed is newline-delimited names of assorted shapes (DGA-like, word combinations, dynamic-DNS and
free-hosting subdomains, deeper names, `*.` wildcards), none of which covers a benign name of the capture by
construction, so every match in the capture is one this module planted and counted (`Workload.hit_messages`).

Deterministic (one seeded `random.Random`, no set iteration) and fast: DNS messages are packed once per
distinct (name, type) with dnslib and reused with the id patched in; frames are built by `pcaps.wire`,
and what the cluster's DNS has in common with the demo's comes from `pcaps.synth`.
"""

from __future__ import annotations

import argparse
import json
import random
import struct
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from dnslib import EDNS0, PTR, QTYPE, RCODE, RR, SRV, TXT, DNSRecord

from pcaps import wire
from pcaps.synth import (CLUSTER_SOA, KUBE_DNS_SERVICE, ROOT_SOA, START_US, UPSTREAM_RESOLVER, chain_answers,
                         dns_query, dns_response, ephemeral_port, search_list, service_answer, soa)

GENERATOR_VERSION = 3  # bump when the output changes, so cached workloads are regenerated
CACHE_DIR = Path(__file__).resolve().parent / ".cache"


@dataclass(frozen=True)
class WorkloadSpec:
    """What to generate; every field is part of the cache key."""

    packets: int = 200_000
    """Packets in the capture, exactly."""
    domains: int = 1_000_000
    """Entries in the feed file, exactly (the planted ones included)."""
    pods: int = 300
    """Pods in the simulated cluster."""
    seed: int = 20261127
    """Seed of the one random generator."""
    hit_rate: float = 0.001
    """Share of lookups that name a feed entry."""
    ipv6_share: float = 0.05
    """Share of transactions carried over IPv6."""
    tcp_share: float = 0.002
    """Share of lookups made over TCP (each is a whole connection: about ten packets)."""

    def key(self) -> str:
        return (f"p{self.packets}-d{self.domains}-n{self.pods}-s{self.seed}-h{self.hit_rate}"
                f"-v6{self.ipv6_share}-t{self.tcp_share}-g{GENERATOR_VERSION}")


@dataclass(frozen=True)
class Workload:
    """A generated (or cached) workload and the ground truth about it."""

    capture: Path
    feed: Path
    spec: WorkloadSpec
    planted: tuple[str, ...]
    """Feed entries the capture hits."""
    hit_lookups: int
    """Lookups that named a planted entry (each one transaction, two to six packets)."""
    hit_messages: int
    """DNS messages (packets) in the capture naming at least one feed entry; a correct matcher counts these."""
    dns_messages: int
    """Packets carrying a whole DNS message (TCP handshakes and bare ACKs do not)."""
    capture_seconds: float
    """Time generating the capture took (when it was generated)."""
    feed_seconds: float
    """Time generating the feed took (when it was generated)."""
    cached: bool = False
    """True when taken from the cache rather than generated now."""


# --- the cluster --------------------------------------------------------------------------------------

NAMESPACES = ("shop", "payments", "checkout", "catalog", "search", "auth", "users", "orders", "inventory",
              "shipping", "notifications", "analytics", "ml", "data", "monitoring", "logging", "ingress-nginx",
              "cert-manager", "argocd", "kube-system", "istio-system", "vault", "kafka", "batch", "reporting")
SERVICE_NAMES = ("api", "web", "frontend", "backend", "worker", "db", "postgres", "redis", "cache", "kafka",
                 "zookeeper", "grpc-gateway", "auth", "users", "orders", "payments", "search", "elasticsearch",
                 "prometheus", "grafana", "loki", "alertmanager", "rabbitmq", "memcached", "mongo", "minio",
                 "vault", "consul", "jaeger-collector", "otel-collector", "scheduler", "ledger", "pricing",
                 "recommendations", "images", "thumbnails", "mailer", "webhooks", "session", "config")
# Registrable domains the cluster talks to, and the CDNs their CNAMEs lead through: the feed avoids them.
EXTERNAL_BASES = ("google.com", "googleapis.com", "gstatic.com", "amazonaws.com", "github.com", "githubusercontent.com",
                  "docker.io", "docker.com", "quay.io", "gcr.io", "k8s.io", "pypi.org", "pythonhosted.org", "npmjs.org",
                  "cloudflare.com", "slack.com", "stripe.com", "twilio.com", "sendgrid.net", "datadoghq.com",
                  "sentry.io", "newrelic.com", "okta.com", "auth0.com", "microsoft.com", "azure.com", "windows.net",
                  "office.com", "apple.com", "mozilla.org", "ubuntu.com", "debian.org", "letsencrypt.org",
                  "digicert.com", "pagerduty.com", "atlassian.net", "salesforce.com", "shopify.com", "paypal.com",
                  "segment.io", "mixpanel.com", "intercom.io", "zendesk.com", "hubspot.com", "mongodb.net",
                  "elastic.co", "confluent.cloud", "snowflakecomputing.com", "openai.com", "grafana.net")
CDN_BASES = ("cloudfront.net", "akamaiedge.net", "edgekey.net", "akamai.net", "fastly.net", "cloudflare.net",
             "azureedge.net", "trafficmanager.net", "elb.amazonaws.com", "l.google.com", "ghs.googlehosted.com")
PREFIXES = ("api", "www", "cdn", "static", "auth", "login", "s3", "sts", "ec2", "logs", "hooks", "events",
            "ingest", "o", "registry", "index", "download", "objects", "uploads", "app", "console", "graph",
            "oauth2", "accounts", "storage", "pubsub", "sqs", "sns", "dynamodb", "ecr", "mail", "smtp", "metrics")
LONG_TAIL = ("{h}.s3.us-east-1.amazonaws.com", "{h}.ingest.sentry.io", "{h}.cloudfront.net", "{h}.execute-api.eu-west-1.amazonaws.com",
             "{h}.blob.core.windows.net", "{h}-{h}.a.run.app.googleapis.com", "x-{h}.api.datadoghq.com", "{h}.mongodb.net")
KUBE_DNS = (wire.ip_bytes(KUBE_DNS_SERVICE), wire.ip_bytes("fd00:10:96::a"))
COREDNS = (wire.ip_bytes("10.244.0.5"), wire.ip_bytes("fd00:10:244::5"))
COREDNS_MAC = bytes.fromhex("2a51a9c0e305")
UPSTREAM = wire.ip_bytes(UPSTREAM_RESOLVER)
HOST_MAC = wire.CALICO_HOST_MAC
NOT_DNS, DNS, HIT = 0, 1, 2

# Planted feed hits: (feed entry, the name a pod looks up, qtype, kind)
PLANTED = (
    ("api.telemetry-sync.xyz", "api.telemetry-sync.xyz", "A", "exact"),
    ("dl.mirror-secure.top", "dl.mirror-secure.top", "AAAA", "exact"),
    ("*.t.dnsrelay-cdn.net", "{h}.t.dnsrelay-cdn.net", "TXT", "wildcard"),
    ("edge.malvertising-cdn.biz", "assets.shopfront-cdn.com", "A", "cname target"),
    ("update.flash-player-secure.ru", "uPdAtE.fLaSh-PlAyEr-SeCuRe.Ru", "A", "mixed case"),
)


def _hex(rng: random.Random, n: int) -> str:
    return rng.randbytes((n + 1) // 2).hex()[:n]


@dataclass
class _Pod:
    ns: str
    ip4: bytes
    ip6: bytes
    mac: bytes
    edns: bool
    deps: list  # cluster services the pod's code asks for, as written in its config
    weights: list
    externals: list  # names outside the cluster it uses
    external_weights: list


class _Answers:
    """What the simulated DNS answers, packed once per (name, type) and reused with a fresh id."""

    def __init__(self, rng: random.Random, services: dict, external: dict) -> None:
        self.rng = rng
        self.services = services  # FQDN -> list of IPv4 strings
        self.external = external  # name -> (chain, v4, v6)
        self.templates: dict = {}  # (qname, qtype, edns) -> (query, response, noerror)
        self.ptr: dict = {}
        self.aged: dict = {}  # (qname, qtype, edns, age) -> response with TTLs counted down

    def messages(self, qname: str, qtype: str, edns: bool) -> tuple[bytes, bytes, bool]:
        key = (qname, qtype, edns)
        found = self.templates.get(key)
        if found is None:
            found = self.templates[key] = self._build(qname, qtype, edns)
        return found

    def aged_response(self, qname: str, qtype: str, edns: bool, age: int) -> bytes:
        """The response as CoreDNS's cache serves it `age` seconds after it was stored: TTLs counted down.

        Cluster names are answered by the kubernetes plugin with fixed TTLs, but external answers come from
        the cache, so the same answer differs from second to second; the benchmark must see that.
        """
        key = (qname, qtype, edns, age)
        found = self.aged.get(key)
        if found is None:
            record = DNSRecord.parse(self.messages(qname, qtype, edns)[1])
            for rr in record.rr + record.auth:
                rr.ttl = max(rr.ttl - age, 0)
            found = self.aged[key] = bytes(record.pack())
        return found

    def _build(self, qname: str, qtype: str, edns: bool) -> tuple[bytes, bytes, bool]:
        q = dns_query(0, qname, qtype)
        if edns:
            q.add_ar(EDNS0(udp_len=1232))
        rcode, answers, authority, aa = self._resolve(qname.lower(), qtype)
        r = dns_response(q, rcode, answers, authority, aa)
        if edns:
            r.add_ar(EDNS0(udp_len=1232))
        return q.pack(), r.pack(), rcode == RCODE.NOERROR

    def _resolve(self, name: str, qtype: str):
        cluster = name.endswith(".cluster.local")
        if cluster or name.endswith(".in-addr.arpa"):
            return self._cluster(name, qtype)
        entry = self.external.get(name)
        if entry is None:
            return RCODE.NXDOMAIN, [], [soa(ROOT_SOA)], False
        chain, v4, v6, base = entry
        answers, owner = chain_answers(name, chain, qtype, v4, v6, cname_ttl=300, address_ttl=60)
        if qtype == "TXT":
            answers.append(RR(owner, QTYPE.TXT, ttl=30, rdata=TXT(_hex(self.rng, 48))))
        authority = []
        if len(answers) == len(chain):  # no data of that type: the zone's SOA says for how long
            authority = [soa((base, f"ns1.{base}", f"hostmaster.{base}", (2026112001, 7200, 3600, 1209600, 300)))]
        return RCODE.NOERROR, answers, authority, False

    def _cluster(self, name: str, qtype: str):
        if qtype == "PTR":
            target = self.ptr.get(name)
            if target is None:
                return RCODE.NXDOMAIN, [], [soa(CLUSTER_SOA)], True
            return RCODE.NOERROR, [RR(name, QTYPE.PTR, ttl=5, rdata=PTR(target))], [], True
        if qtype == "SRV":
            service = name.split(".", 2)[2]  # _grpc._tcp.<svc>.<ns>.svc.cluster.local
            if service not in self.services:
                return RCODE.NXDOMAIN, [], [soa(CLUSTER_SOA)], True
            return RCODE.NOERROR, [RR(name, QTYPE.SRV, ttl=5, rdata=SRV(0, 100, 9090, service))], [], True
        return service_answer(self.services, name, qtype)


def _zipf_weights(n: int, s: float = 1.1) -> list[float]:
    return [1.0 / (i + 1) ** s for i in range(n)]


def _cumulative(weights: list[float]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out


def _build_cluster(rng: random.Random, spec: WorkloadSpec):
    services: dict[str, list[str]] = {}
    by_ns: dict[str, list[str]] = {}
    for ns in NAMESPACES:
        names = rng.sample(SERVICE_NAMES, rng.randrange(3, 11))
        by_ns[ns] = names
        for svc in names:
            fqdn = f"{svc}.{ns}.svc.cluster.local"
            if rng.random() < 0.2:  # headless: the endpoints' pod addresses
                services[fqdn] = [f"10.244.{rng.randrange(0, 8)}.{rng.randrange(2, 250)}" for _ in range(rng.randrange(1, 5))]
            else:
                services[fqdn] = [f"10.96.{rng.randrange(1, 255)}.{rng.randrange(1, 255)}"]
    services["kubernetes.default.svc.cluster.local"] = ["10.96.0.1"]

    external: dict[str, tuple] = {}
    catalog: list[str] = []
    for _ in range(4000):
        base = rng.choice(EXTERNAL_BASES)
        name = base if rng.random() < 0.12 else f"{rng.choice(PREFIXES)}.{base}"
        if name in external:
            continue
        external[name] = _external_answer(rng, name, base)
        catalog.append(name)

    catalog_cum = _cumulative(_zipf_weights(len(catalog), 1.0))
    pods: list[_Pod] = []
    ns_weights = _zipf_weights(len(NAMESPACES), 0.6)
    cum_ns = _cumulative(ns_weights)
    for i in range(spec.pods):
        ns = rng.choices(NAMESPACES, cum_weights=cum_ns)[0]
        node_block, host = divmod(i, 250)
        ip4 = bytes((10, 244, 1 + node_block, 2 + host))
        ip6 = wire.ip_bytes(f"fd00:10:244:{1 + node_block:x}::{2 + host:x}")
        deps: list[str] = []
        for svc in rng.sample(by_ns[ns], min(len(by_ns[ns]), rng.randrange(1, 6))):
            deps.append(rng.choice((svc, svc, svc, f"{svc}.{ns}", f"{svc}.{ns}.svc.cluster.local",
                                    f"{svc}.{ns}.svc.cluster.local.")))
        for _ in range(rng.randrange(0, 4)):  # cross-namespace dependencies
            other = rng.choice(NAMESPACES)
            svc = rng.choice(by_ns[other])
            deps.append(rng.choice((f"{svc}.{other}", f"{svc}.{other}.svc", f"{svc}.{other}.svc.cluster.local")))
        externals = rng.choices(catalog, cum_weights=catalog_cum, k=rng.randrange(2, 12))
        pods.append(_Pod(ns, ip4, ip6, bytes([0x02]) + rng.randbytes(5), rng.random() < 0.3,
                         deps, _cumulative(_zipf_weights(len(deps), 1.1)),
                         externals, _cumulative(_zipf_weights(len(externals), 1.0))))
    return services, external, catalog, pods


def _external_answer(rng: random.Random, name: str, base: str) -> tuple:
    chain: list[str] = []
    shape = rng.random()
    if shape < 0.55:
        hops = rng.choice((1, 2, 2, 2, 3))
        label = name.replace(".", "-")
        for hop in range(hops):
            cdn = rng.choice(CDN_BASES)
            chain.append(f"{label}.{cdn}" if hop == 0 else f"e{rng.randrange(1000, 99999)}.{rng.choice('abcdefg')}.{cdn}")
    v4 = [f"{rng.choice((13, 18, 34, 52, 104, 142, 151, 172, 185))}.{rng.randrange(256)}.{rng.randrange(256)}."
          f"{rng.randrange(1, 255)}" for _ in range(rng.choice((1, 1, 2, 2, 3, 4)))]
    v6 = [f"2a00:1450:{rng.randrange(0x4000, 0x4fff):x}:{rng.randrange(0x800, 0x8ff):x}::{rng.randrange(1, 0xffff):x}"
          for _ in range(rng.choice((1, 1, 2, 4)))] if rng.random() < 0.6 else []
    return chain, v4, v6, base


# --- the capture --------------------------------------------------------------------------------------

class _Capture:
    """Accumulates packets as (ts, seq, frame, mark) and builds the frames of both veths.

    mark: NOT_DNS (TCP control segments), DNS (a whole DNS message), HIT (a message naming a feed entry).
    """

    def __init__(self, rng: random.Random, spec: WorkloadSpec, answers: _Answers) -> None:
        self.rng = rng
        self.spec = spec
        self.answers = answers
        self.packets: list[tuple[int, int, bytes, int]] = []
        self.coredns_cache: dict = {}
        self.hit_lookups = 0
        self.client_queries = 0

    def _udp(self, ts: int, src_mac: bytes, dst_mac: bytes, src: bytes, dst: bytes, sport: int, dport: int,
             payload: bytes, hit: bool, ttl: int = 64) -> None:
        frame = wire.udp_frame(src_mac, dst_mac, src, dst, sport, dport, payload, ident=self.rng.getrandbits(16), ttl=ttl)
        self.packets.append((ts, len(self.packets), frame, HIT if hit else DNS))

    def udp_transaction(self, t: int, pod: _Pod, qname: str, qtype: str, sport: int, local: bool, v6: bool,
                        hit_query: bool, hit_response: bool) -> tuple[int, bool]:
        """One query/response; returns (response time, NOERROR?)."""
        query, response, noerror = self.answers.messages(qname, qtype, pod.edns)
        qid = struct.pack("!H", self.rng.getrandbits(16))
        query, response = qid + query[2:], qid + response[2:]
        self.client_queries += 1
        client = pod.ip6 if v6 else pod.ip4
        service, core = KUBE_DNS[v6], COREDNS[v6]
        delay = self.rng.randrange(120, 600)
        if not qname.endswith((".cluster.local", ".arpa")):
            key = (qname, qtype)
            cached_at = self.coredns_cache.get(key)
            if cached_at is None:
                if local:
                    delay += self._forward(t + 80, qname, qtype, hit_query, hit_response)
                self.coredns_cache[key] = cached_at = t
            age = (t - cached_at) // 1_000_000
            if age:
                response = qid + self.answers.aged_response(qname, qtype, pod.edns, age)[2:]
        t_resp = t + delay
        self._udp(t, pod.mac, HOST_MAC, client, service, sport, 53, query, hit_query)
        self._udp(t_resp, HOST_MAC, pod.mac, service, client, 53, sport, response, hit_response, ttl=63)
        if local:
            self._udp(t + 30, HOST_MAC, COREDNS_MAC, client, core, sport, 53, query, hit_query, ttl=63)
            self._udp(t_resp - 30, COREDNS_MAC, HOST_MAC, core, client, 53, sport, response, hit_response)
        return t_resp, noerror

    def _forward(self, t: int, qname: str, qtype: str, hit_query: bool, hit_response: bool) -> int:
        query, response, _ = self.answers.messages(qname, qtype, True)
        qid = struct.pack("!H", self.rng.getrandbits(16))
        sport = ephemeral_port(self.rng)
        rtt = self.rng.randrange(1_500, 40_000)
        core = COREDNS[0]
        self._udp(t, COREDNS_MAC, HOST_MAC, core, UPSTREAM, sport, 53, qid + query[2:], hit_query)
        self._udp(t + rtt, HOST_MAC, COREDNS_MAC, UPSTREAM, core, 53, sport, qid + response[2:], hit_response, ttl=63)
        return rtt + 60

    def tcp_transaction(self, t: int, pod: _Pod, qname: str, qtype: str) -> None:
        """A whole DNS-over-TCP connection on the client's veth: handshake, query, response, close."""
        query, response, _ = self.answers.messages(qname, qtype, pod.edns)
        qid = struct.pack("!H", self.rng.getrandbits(16))
        self.client_queries += 1
        q, r = wire.dns_over_tcp(qid + query[2:]), wire.dns_over_tcp(qid + response[2:])
        client, server = pod.ip4, KUBE_DNS[0]
        sport = ephemeral_port(self.rng)
        c, s = self.rng.getrandbits(32), self.rng.getrandbits(32)
        syn, ack, psh, fin = wire.TCP_SYN, wire.TCP_ACK, wire.TCP_PSH | wire.TCP_ACK, wire.TCP_FIN | wire.TCP_ACK
        steps = ((0, 1, syn, c, 0, b""), (80, 0, syn | ack, s, c + 1, b""), (40, 1, ack, c + 1, s + 1, b""),
                 (20, 1, psh, c + 1, s + 1, q), (400, 0, psh, s + 1, c + 1 + len(q), r),
                 (40, 1, ack, c + 1 + len(q), s + 1 + len(r), b""), (30, 1, fin, c + 1 + len(q), s + 1 + len(r), b""),
                 (60, 0, fin, s + 1 + len(r), c + 2 + len(q), b""), (40, 1, ack, c + 2 + len(q), s + 2 + len(r), b""))
        for delay, from_client, flags, seq, acked, payload in steps:
            t += delay
            if from_client:
                frame = wire.tcp_frame(pod.mac, HOST_MAC, client, server, sport, 53, seq, acked, flags, payload,
                                       ident=self.rng.getrandbits(16))
            else:
                frame = wire.tcp_frame(HOST_MAC, pod.mac, server, client, 53, sport, seq, acked, flags, payload,
                                       ident=self.rng.getrandbits(16), ttl=63)
            self.packets.append((t, len(self.packets), frame, DNS if payload else NOT_DNS))

    def lookup(self, t: int, pod: _Pod, name: str, qtypes: tuple, hit: tuple[bool, bool] = (False, False),
               tcp: bool = False) -> None:
        """getaddrinfo as glibc does it: ndots:5 search list unless the name is absolute, A+AAAA in parallel."""
        absolute = name.endswith(".")
        name = name.rstrip(".")
        candidates = search_list(name, pod.ns, absolute)
        rng = self.rng
        for candidate in candidates:
            final = candidate == name
            if tcp:
                self.tcp_transaction(t, pod, candidate, qtypes[0])
                t += rng.randrange(800, 1500)
                if self.answers.messages(candidate, qtypes[0], pod.edns)[2]:
                    return
                continue
            local = rng.random() < 0.5
            v6 = rng.random() < self.spec.ipv6_share
            sport = ephemeral_port(rng)
            done, ok = t, False
            for i, qtype in enumerate(qtypes):
                hq, hr = hit if final else (False, False)
                t_resp, noerror = self.udp_transaction(t + 20 * i, pod, candidate, qtype, sport, local, v6, hq, hr)
                done = max(done, t_resp)
                ok = ok or (i == 0 and noerror)
            t = done + rng.randrange(30, 150)
            if ok:
                return


def write_capture(path: Path, spec: WorkloadSpec) -> dict:
    """Write the capture; returns its ground truth (hit lookups, hit messages, DNS messages)."""
    rng = random.Random(spec.seed)
    services, external, catalog, pods = _build_cluster(rng, spec)
    answers = _Answers(rng, services, external)
    for pod in pods:
        reverse = ".".join(str(b) for b in reversed(pod.ip4)) + ".in-addr.arpa"
        answers.ptr[reverse] = f"{pod.ip4[0]}-{pod.ip4[1]}-{pod.ip4[2]}-{pod.ip4[3]}.{pod.ns}.pod.cluster.local"
    external["assets.shopfront-cdn.com"] = (["edge.malvertising-cdn.biz"], ["203.0.113.61", "203.0.113.62"], [], "shopfront-cdn.com")
    for entry, asked, _, _ in PLANTED:
        if entry.startswith("*.") or asked.startswith("assets."):
            continue
        external[entry] = ([], [f"198.51.100.{rng.randrange(1, 255)}"], ["2001:db8:77::1"], entry.split(".", 1)[1])
    cap = _Capture(rng, spec, answers)
    pod_cum = _cumulative(_zipf_weights(len(pods), 0.6))
    mean_gap = 700  # µs between lookups (~15 packets each): ~20k packets/s, a busy node
    t = START_US
    choices, random_ = rng.choices, rng.random
    while len(cap.packets) < spec.packets:
        t += rng.randrange(0, 2 * mean_gap)
        pod = choices(pods, cum_weights=pod_cum)[0]
        if cap.hit_lookups < spec.hit_rate * cap.client_queries:  # spread evenly: one hit per 1/hit_rate queries
            entry, asked, qtype, kind = PLANTED[rng.randrange(len(PLANTED))]
            if kind == "wildcard":
                asked = asked.format(h=_hex(rng, 20))
                external[asked] = ([], [], [], asked.split(".", 1)[1])
            cap.hit_lookups += 1
            cap.lookup(t, pod, asked + ".", (qtype,), hit=(kind != "cname target", True))
            continue
        draw = random_()
        if draw < 0.62:
            name = choices(pod.deps, cum_weights=pod.weights)[0]
            tcp = random_() < spec.tcp_share
            cap.lookup(t, pod, name, ("A",) if tcp else ("A", "AAAA"), tcp=tcp)
        elif draw < 0.90:
            name = choices(pod.externals, cum_weights=pod.external_weights)[0]
            cap.lookup(t, pod, name + "." if random_() < 0.1 else name, ("A", "AAAA"))
        elif draw < 0.92:  # reverse lookups of peers (logging, access checks)
            peer = pods[rng.randrange(len(pods))]
            cap.lookup(t, pod, ".".join(str(b) for b in reversed(peer.ip4)) + ".in-addr.arpa.", ("PTR",))
        elif draw < 0.93:
            svc = rng.choice([n for n in pod.deps if n.count(".") < 2] or ["api"])
            cap.lookup(t, pod, f"_grpc._tcp.{svc.split('.')[0]}.{pod.ns}.svc.cluster.local", ("SRV",))
        else:  # the long tail: random-looking names, each seen once
            name = rng.choice(LONG_TAIL).format(h=_hex(rng, rng.randrange(8, 17)))
            external[name] = _external_answer(rng, name, name.split(".", 1)[1])
            cap.lookup(t, pod, name, ("A", "AAAA"))
    cap.packets.sort()
    kept = cap.packets[: spec.packets]
    with open(path, "wb") as stream:
        writer = wire.PcapWriter(stream)
        for ts, _, frame, _ in kept:
            writer.write(ts, frame)
        writer.flush()
    hit_messages = sum(1 for p in kept if p[3] == HIT)
    dns_messages = sum(1 for p in kept if p[3] != NOT_DNS)
    return {"hit_lookups": cap.hit_lookups, "hit_messages": hit_messages, "dns_messages": dns_messages}


# --- the feed -------------------------------------------------------------------------------------------

FEED_TLDS = ("com", "com", "com", "net", "net", "org", "info", "biz", "ru", "ru", "cn", "xyz", "xyz", "top", "top",
             "online", "site", "club", "tk", "ml", "ga", "cf", "pw", "cc", "su", "io", "co", "me", "live", "shop",
             "icu", "buzz", "work", "link", "click", "de", "uk", "in", "br", "vip", "app", "win", "bid", "loan")
DYNAMIC_BASES = ("duckdns.org", "ddns.net", "hopto.org", "zapto.org", "sytes.net", "no-ip.biz", "serveftp.com",
                 "000webhostapp.com", "herokuapp.com", "azurewebsites.net", "pages.dev", "workers.dev", "web.app",
                 "firebaseapp.com", "blogspot.com", "weebly.com", "wixsite.com", "ngrok-free.app", "r2.dev", "glitch.me")
WORDS = ("secure", "login", "account", "verify", "update", "bank", "wallet", "crypto", "support", "service", "online",
         "mail", "cloud", "drive", "docs", "office", "signin", "auth", "billing", "invoice", "payment", "pay", "track",
         "delivery", "parcel", "post", "alert", "security", "center", "help", "desk", "portal", "web", "my", "id",
         "apple", "micro", "soft", "amazon", "netflix", "paypal", "chase", "wells", "coin", "base", "binance", "meta",
         "free", "gift", "prize", "win", "bonus", "promo", "deal", "shop", "store", "cdn", "static", "api", "app",
         "sync", "telemetry", "stats", "analytics", "tracker", "ads", "click", "redirect", "link", "go", "get",
         "download", "install", "setup", "flash", "player", "video", "stream", "live", "news", "info", "data",
         "files", "share", "transfer", "box", "vault", "key", "pass", "token", "node", "relay", "proxy", "gate",
         "panel", "admin", "control", "cmd", "task", "job", "bot", "net", "host", "server", "edge", "zone", "hub")
_LETTERS = b"abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyzaeiouaeiou"
_MAP = bytes(_LETTERS[b % len(_LETTERS)] for b in range(256))


def _benign_registrable() -> dict:
    bases = {}
    for base in EXTERNAL_BASES + CDN_BASES + ("cluster.local", "in-addr.arpa", "shopfront-cdn.com",
                                              "root-servers.net", "verisign-grs.com"):
        labels = base.split(".")
        for i in range(len(labels) - 1):
            bases[".".join(labels[i:])] = True
    return bases


def write_feed(path: Path, spec: WorkloadSpec) -> int:
    """Write `spec.domains` distinct entries, the planted ones among them; returns the count written."""
    rng = random.Random(spec.seed ^ 0x5EED)
    benign = _benign_registrable()
    planted = [entry for entry, _, _, _ in PLANTED]
    wanted = spec.domains - len(planted)
    names: dict[str, None] = {}
    # Random alphanumerics in bulk (slicing one long string beats a random call per character), and
    # int(random() * n) rather than randrange: this loop runs a million times.
    pool = rng.randbytes(24 * max(wanted, 1000)).translate(_MAP).decode()
    limit = len(pool) - 64
    cursor = 0
    random_ = rng.random
    tlds, n_tlds = FEED_TLDS, len(FEED_TLDS)
    words, n_words = WORDS, len(WORDS)
    dynamic, n_dynamic = DYNAMIC_BASES, len(DYNAMIC_BASES)
    while len(names) < wanted:
        shape = random_()
        tld = tlds[int(random_() * n_tlds)]
        if shape < 0.35:  # DGA-like
            n = 8 + int(random_() * 17)
            name = f"{pool[cursor:cursor + n]}.{tld}"
        elif shape < 0.60:  # word combinations, sometimes with a number
            first, second = words[int(random_() * n_words)], words[int(random_() * n_words)]
            r = random_()
            if r < 0.35:
                name = f"{first}-{second}.{tld}"
            elif r < 0.6:
                name = f"{first}{second}.{tld}"
            elif r < 0.8:
                name = f"{first}-{second}-{words[int(random_() * n_words)]}.{tld}"
            else:
                name = f"{first}{second}{int(random_() * 1000)}.{tld}"
            n = 0
        elif shape < 0.80:  # dynamic DNS and free hosting
            n = 4 + int(random_() * 12)
            name = f"{pool[cursor:cursor + n]}.{dynamic[int(random_() * n_dynamic)]}"
        elif shape < 0.95:  # deeper names: 3 to 5 labels
            n = 5 + int(random_() * 9)
            sub = words[int(random_() * n_words)] if random_() < 0.5 else pool[cursor + 40:cursor + 42 + int(random_() * 8)]
            name = f"{sub}.{words[int(random_() * n_words)]}-{pool[cursor:cursor + n]}.{tld}"
            if random_() < 0.3:
                name = f"{pool[cursor + 20:cursor + 22 + int(random_() * 10)]}.{name}"
            n += 50
        else:  # wildcards
            n = 6 + int(random_() * 12)
            name = f"*.{pool[cursor:cursor + n]}.{tld}"
        cursor += n
        if cursor > limit:
            cursor = int(random_() * 64)
        parts = name.rsplit(".", 3)
        if ".".join(parts[-2:]) in benign or ".".join(parts[-3:]) in benign:
            continue
        names[name] = None
    for entry in planted:
        names.pop(entry, None)
    ordered = list(names)[:wanted]
    for k, entry in enumerate(planted):  # spread through the file, as real feeds are unsorted
        ordered.insert((k * 2 + 1) * len(ordered) // (2 * len(planted)), entry)
    with open(path, "w", encoding="ascii", newline="\n") as stream:
        stream.write("\n".join(ordered))
        stream.write("\n")
    return len(ordered)


# --- cache ----------------------------------------------------------------------------------------------

def ensure_workload(spec: WorkloadSpec = WorkloadSpec(), cache_dir: Path = CACHE_DIR, force: bool = False) -> Workload:
    """The workload for `spec`, generated now unless a complete copy is in `cache_dir`."""
    directory = cache_dir / spec.key()
    meta_path = directory / "meta.json"
    capture, feed = directory / "capture.pcap", directory / "feed.txt"
    if not force and meta_path.is_file() and capture.is_file() and feed.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("spec") == asdict(spec):
            return _workload(capture, feed, spec, meta, cached=True)
    directory.mkdir(parents=True, exist_ok=True)
    meta_path.unlink(missing_ok=True)
    started = time.perf_counter()
    truth = write_capture(capture, spec)
    capture_seconds = time.perf_counter() - started
    started = time.perf_counter()
    write_feed(feed, spec)
    feed_seconds = time.perf_counter() - started
    meta = dict(truth, spec=asdict(spec), planted=[p[0] for p in PLANTED],
                capture_seconds=round(capture_seconds, 3), feed_seconds=round(feed_seconds, 3))
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")  # written last: marks the directory complete
    return _workload(capture, feed, spec, meta, cached=False)


def _workload(capture: Path, feed: Path, spec: WorkloadSpec, meta: dict, cached: bool) -> Workload:
    return Workload(capture, feed, spec, tuple(meta["planted"]), meta["hit_lookups"], meta["hit_messages"],
                    meta["dns_messages"], meta["capture_seconds"], meta["feed_seconds"], cached)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.workload", description=__doc__.splitlines()[0])
    defaults = WorkloadSpec()
    parser.add_argument("--packets", type=int, default=defaults.packets)
    parser.add_argument("--domains", type=int, default=defaults.domains)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--force", action="store_true", help="regenerate even when cached")
    args = parser.parse_args(argv)
    spec = WorkloadSpec(packets=args.packets, domains=args.domains, seed=args.seed)
    work = ensure_workload(spec, force=args.force)
    state = "cached" if work.cached else "generated"
    print(f"capture  {work.capture}  {spec.packets} packets, {work.dns_messages} DNS messages, "
          f"{work.hit_messages} naming a feed entry ({work.hit_lookups} lookups)  [{state}, {work.capture_seconds:.2f} s]")
    print(f"feed     {work.feed}  {spec.domains} domains  [{state}, {work.feed_seconds:.2f} s]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
