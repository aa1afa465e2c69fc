"""Security events (docs/event.md) for the Events service and CLI tests (and bench/eventlist.py)."""

from __future__ import annotations

import datetime as dt

T0 = dt.datetime(2026, 11, 27, 20, 0, 0, tzinfo=dt.timezone.utc)


def stamp(moment: dt.datetime) -> str:
    """RFC 3339 with milliseconds and Z, as the agent writes times."""
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def event(number: int, *, count: int = 1, namespace: str = "shop", pod: str | None = None,
          feeds: tuple[str, ...] = ("c2",), domains: tuple[str, ...] | None = None, host: str | None = None,
          type_: str = "gtf_suspicious_dns_query", seconds: float | None = None,
          last_seconds: float | None = None) -> dict:
    """Event `number`: id from the number, time T0 + `number` seconds unless `seconds` says otherwise, last
    seen `count` seconds later unless `last_seconds` says otherwise."""
    first = T0 + dt.timedelta(seconds=number if seconds is None else seconds)
    last = first + dt.timedelta(seconds=count if last_seconds is None else last_seconds)
    pod = pod or f"web-7d4b9c-{number % 5}"
    domains = domains if domains is not None else (f"evil{number % 3}.example",)
    qname = domains[0] if domains else "x.example"
    return {
        "id": f"{number:032x}",
        "time": stamp(first),
        "type": type_,
        "severity": 100,
        "origin": "Suspicious DNS Query",
        "name": "Suspicious DNS Query",
        "description": f"{namespace}/{pod} queried the domain name {qname} from global threat feed(s) "
                       f"{', '.join(feeds)}",
        "host": host or f"node-{number % 2}",
        "source_ip": "10.244.1.10",
        "source_namespace": namespace,
        "source_name": pod,
        "source_name_aggr": pod.rsplit("-", 1)[0] + "-*",
        "source_labels": {"app": "web", "ünï": "cödé"},
        "source_workload": {"kind": "Deployment", "name": "web"},
        "attack_vector": "Network",
        "mitre_ids": ["T1041"],
        "mitre_tactic": "Exfiltration",
        "mitigations": ["Create a global network policy to prevent traffic from this IP address"],
        "record": {"feeds": list(feeds), "feed_labels": {feed: {} for feed in feeds},
                   "suspicious_domains": list(domains), "suspicious_ips": [],
                   "matches": [{"name": qname, "feed": feeds[0] if feeds else "", "entry": qname,
                                "section": "question", "feed_version": "1", "line": None, "line_text": None}],
                   "qname": qname, "qtype": "A", "rcode": "NOERROR", "server_ip": "10.96.0.10",
                   "answers": [f"{qname} A 198.51.100.7"],
                   "count": count, "first_seen": stamp(first), "last_seen": stamp(last)},
    }


def newest_first(events: list[dict]) -> list[str]:
    """The ids in List order: time, then id, both descending."""
    return [e["id"] for e in sorted(events, key=lambda e: (e["time"], e["id"]), reverse=True)]
