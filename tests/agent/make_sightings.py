"""Builders for the event-pipeline tests: real DNS messages (packed by dnslib), Sightings, pod objects."""

from __future__ import annotations

import ipaddress

import dnslib

from agent.core.sighting import Match, Sighting

T0 = 1795810296.123  # 2026-11-27T20:11:36.123Z


def ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


CLIENT = ip("10.244.1.10")  # shop/web-7d4b9c-x2x1
SERVICE = ip("10.96.0.10")  # the kube-dns service
COREDNS = ip("10.244.0.5")  # the CoreDNS pod behind it
UPSTREAM = ip("192.0.2.53")


def domain(name: str, feed: str = "c2", entry: str | None = None, section: str = "question") -> Match:
    return Match(name, feed, entry or name, section, "domain")


def address(addr: str, feed: str = "bad-ips", entry: str | None = None) -> Match:
    return Match(addr, feed, entry or addr, "answer", "ip")


def query(name: str, ts: float = T0, *, client: bytes = CLIENT, sport: int = 40000, server: bytes = SERVICE,
          qtype: str = "A", dns_id: int = 0x1234, matches: tuple[Match, ...] | None = None,
          transport: str = "udp") -> Sighting:
    record = dnslib.DNSRecord.question(name, qtype)
    record.header.id = dns_id
    return Sighting(ts, client, sport, server, 53, transport, record.pack(), False, dns_id, name,
                    getattr(dnslib.QTYPE, qtype), (domain(name),) if matches is None else matches)


def response(q: Sighting, ts: float | None = None, *, answers: tuple[dnslib.RR, ...] = (), rcode: int = 0,
             server: bytes | None = None, matches: tuple[Match, ...] | None = None) -> Sighting:
    """The response to `q`, sent by `server` (default: the address the query went to)."""
    record = dnslib.DNSRecord.parse(q.payload).reply()
    record.header.rcode = rcode
    for rr in answers:
        record.add_answer(rr)
    return Sighting(q.ts + 0.01 if ts is None else ts, server or q.dst, q.dport, q.src, q.sport, q.transport,
                    record.pack(), True, q.dns_id, q.qname, q.qtype, q.matches if matches is None else matches)


def a_record(name: str, addr: str) -> dnslib.RR:
    return dnslib.RR(name, dnslib.QTYPE.A, rdata=dnslib.A(addr), ttl=60)


def cname_record(name: str, target: str) -> dnslib.RR:
    return dnslib.RR(name, dnslib.QTYPE.CNAME, rdata=dnslib.CNAME(target), ttl=60)


def pod(name: str, namespace: str = "shop", ip: str | list[str] | None = None, *, phase: str = "Running",
        labels: dict[str, str] | None = None, owner: tuple[str, str] | None = None,
        generate_name: str | None = None, host_network: bool = False, node: str = "node-1",
        uid: str | None = None) -> dict:
    """A pod object as `kubectl get pods -A -o json` lists it (only the fields attribution reads)."""
    ips = [ip] if isinstance(ip, str) else list(ip or [])
    metadata: dict = {"name": name, "namespace": namespace, "uid": uid or f"uid-{namespace}-{name}",
                      "labels": labels or {}}
    if generate_name:
        metadata["generateName"] = generate_name
    if owner:
        metadata["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1],
                                        "uid": "owner-uid", "controller": True, "blockOwnerDeletion": True}]
    status: dict = {"phase": phase}
    if ips:
        status["podIP"] = ips[0]
        status["podIPs"] = [{"ip": a} for a in ips]
    spec = {"nodeName": node, "containers": [{"name": "main", "image": "busybox"}]}
    if host_network:
        spec["hostNetwork"] = True
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec, "status": status}


def pod_list(*pods: dict) -> dict:
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": list(pods)}


WEB = pod("web-7d4b9c-x2x1", ip="10.244.1.10", labels={"app": "web", "pod-template-hash": "7d4b9c"},
          owner=("ReplicaSet", "web-7d4b9c"), generate_name="web-7d4b9c-")
WEB_2 = pod("web-7d4b9c-q8z7m", ip="10.244.1.11", labels={"app": "web", "pod-template-hash": "7d4b9c"},
            owner=("ReplicaSet", "web-7d4b9c"), generate_name="web-7d4b9c-")
COREDNS_POD = pod("coredns-5d78c9869d-abcde", "kube-system", "10.244.0.5",
                  labels={"k8s-app": "kube-dns", "pod-template-hash": "5d78c9869d"},
                  owner=("ReplicaSet", "coredns-5d78c9869d"), generate_name="coredns-5d78c9869d-")
