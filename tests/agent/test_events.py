import dataclasses
import json

import dnslib
import pytest

from agent.core.aggregate import Aggregator, Event
from agent.core.attribution import pod_info
from agent.core.events import SecurityEvent, build_event, event_id, rfc3339, schema, type_mnemonic
from agent.core.transactions import TransactionTracker
from tests.agent.make_sightings import (
    T0,
    WEB,
    a_record,
    address,
    cname_record,
    domain,
    ip,
    query,
    response,
)

WEB_POD = pod_info(WEB)


def emitted(*sightings, pod=WEB_POD, aggregate_by="pod") -> Event:
    """The first event the aggregator emits for these sightings (drained like the end of a capture)."""
    tracker, agg = TransactionTracker(), Aggregator(aggregate_by=aggregate_by)
    txs = [tx for s in sightings for tx in tracker.observe(s)] + tracker.drain()
    return [ev for tx in txs for ev in agg.add(tx, pod)][0]


def test_the_spec_example_event_exactly():
    q = query("evil.example")
    r = response(q, T0 + 0.004, answers=(a_record("evil.example", "198.51.100.7"),))
    event = build_event(emitted(q, r), "node-1")
    assert event == {
        "id": "6b09e3f8b26e76686f5d9752c98cd3ab",  # 6b09e3f8: the window start, 2026-11-27T20:11:36Z
        "time": "2026-11-27T20:11:36.123Z",
        "type": "gtf_suspicious_dns_query",
        "severity": 100,
        "origin": "Suspicious DNS Query",
        "name": "Suspicious DNS Query",
        "description": "shop/web-7d4b9c-x2x1 queried the domain name evil.example from global threat feed(s) c2",
        "host": "node-1",
        "source_ip": "10.244.1.10",
        "source_namespace": "shop",
        "source_name": "web-7d4b9c-x2x1",
        "source_name_aggr": "web-7d4b9c-*",
        "source_labels": {"app": "web", "pod-template-hash": "7d4b9c"},
        "source_workload": {"kind": "Deployment", "name": "web"},
        "attack_vector": "Network",
        "mitre_ids": ["T1041"],
        "mitre_tactic": "Exfiltration",
        "mitigations": ["Create a global network policy to prevent traffic from this IP address"],
        "record": {
            "feeds": ["c2"],
            "feed_labels": {"c2": {}},
            "suspicious_domains": ["evil.example"],
            "suspicious_ips": [],
            "matches": [{"name": "evil.example", "feed": "c2", "entry": "evil.example", "section": "question",
                         "feed_version": None, "line": None, "line_text": None}],
            "qname": "evil.example",
            "qtype": "A",
            "rcode": "NOERROR",
            "server_ip": "10.96.0.10",
            "answers": ["evil.example A 198.51.100.7"],
            "count": 1,
            "first_seen": "2026-11-27T20:11:36.123Z",
            "last_seen": "2026-11-27T20:11:36.127Z",
        },
    }
    assert list(event) == [path for path, _ in schema() if "." not in path]  # output order is the schema's
    json.dumps(event)  # plain JSON types only


def test_an_ip_only_match_says_the_client_received_the_address():
    q = query("shop.example", matches=())
    r = response(q, answers=(a_record("shop.example", "198.51.100.7"),),
                 matches=(address("198.51.100.7", "bad-ips", "198.51.100.0/24"),))
    event = build_event(emitted(q, r), "node-1")
    assert event["description"] == (
        "shop/web-7d4b9c-x2x1 received the address(es) 198.51.100.7 from global threat feed(s) bad-ips")
    rec = event["record"]
    assert (rec["suspicious_domains"], rec["suspicious_ips"], rec["feeds"]) == ([], ["198.51.100.7"], ["bad-ips"])
    assert rec["matches"] == [{"name": "198.51.100.7", "feed": "bad-ips", "entry": "198.51.100.0/24",
                               "section": "answer", "feed_version": None, "line": None, "line_text": None}]


def test_the_feeds_context_travels_into_the_event_and_leaves_its_id_alone():
    q = query("www.shop.example", matches=())
    plain = response(q, answers=(cname_record("www.shop.example", "evil.example"),),
                     matches=(domain("evil.example", "c2", section="answer"),
                              domain("evil.example", "phishing", "*.example", section="answer")))
    with_context = response(q, answers=(cname_record("www.shop.example", "evil.example"),), matches=(
        dataclasses.replace(domain("evil.example", "c2", section="answer"), feed_version="7", line=12,
                            line_text="0.0.0.0 Evil.Example", feed_severity=40, feed_labels=(("team", "red"),)),
        dataclasses.replace(domain("evil.example", "phishing", "*.example", section="answer"), feed_version="3",
                            feed_severity=70)))
    bare, event = build_event(emitted(q, plain), "node-1"), build_event(emitted(q, with_context), "node-1")
    assert event["id"] == bare["id"]  # ids are made of node, client, names, feeds and window: not of context
    assert (bare["severity"], event["severity"]) == (100, 70)  # the highest of the feeds that matched
    assert event["record"]["feed_labels"] == {"c2": {"team": "red"}, "phishing": {}}
    assert [(m["feed_version"], m["line"], m["line_text"]) for m in event["record"]["matches"]] == [
        ("7", 12, "0.0.0.0 Evil.Example"), ("3", None, None)]


def test_names_found_in_answers_and_several_feeds():
    q = query("www.shop.example", matches=())
    answers = (cname_record("www.shop.example", "Evil.Example."), a_record("evil.example", "198.51.100.7"))
    r = response(q, answers=answers,
                 matches=(domain("evil.example", "c2", section="answer"),
                          domain("evil.example", "phishing", "*.example", section="answer"),
                          address("198.51.100.7")))
    event = build_event(emitted(q, r), "node-1")
    assert event["description"] == ("shop/web-7d4b9c-x2x1 queried the domain name evil.example and received the "
                                     "address(es) 198.51.100.7 from global threat feed(s) bad-ips, c2, phishing")
    rec = event["record"]
    assert rec["answers"] == ["www.shop.example CNAME evil.example", "evil.example A 198.51.100.7"]
    assert (rec["qname"], rec["feeds"]) == ("www.shop.example", ["bad-ips", "c2", "phishing"])
    assert [m["section"] for m in rec["matches"]] == ["answer", "answer", "answer"]


def test_a_client_that_is_no_pod_is_reported_by_address():
    q = query("evil.example", client=ip("192.168.1.10"))
    event = build_event(emitted(q, response(q), pod=None), "node-1")
    assert {k: event[k] for k in ("description", "source_ip", "source_namespace", "source_name",
                                  "source_name_aggr", "source_labels", "source_workload")} == {
        "description": "192.168.1.10 queried the domain name evil.example from global threat feed(s) c2",
        "source_ip": "192.168.1.10",
        "source_namespace": "-",
        "source_name": "-",
        "source_name_aggr": "-",
        "source_labels": {},
        "source_workload": None,
    }


def test_aggregated_by_workload_the_owner_stands_for_the_pod():
    q = query("evil.example")
    event = build_event(emitted(q, response(q), aggregate_by="workload"), "node-1")
    assert {k: event[k] for k in ("description", "source_ip", "source_namespace", "source_name",
                                  "source_name_aggr", "source_workload")} == {
        "description": "shop/web queried the domain name evil.example from global threat feed(s) c2",
        "source_ip": "-",
        "source_namespace": "shop",
        "source_name": "-",
        "source_name_aggr": "web",
        "source_workload": {"kind": "Deployment", "name": "web"},
    }


def test_without_a_response_rcode_is_null_and_there_are_no_answers():
    rec = build_event(emitted(query("evil.example", qtype="AAAA")), "node-1")["record"]
    assert (rec["qtype"], rec["rcode"], rec["answers"], rec["server_ip"]) == ("AAAA", None, [], "10.96.0.10")


def test_nxdomain():
    q = query("evil.example")
    assert build_event(emitted(q, response(q, rcode=3)), "node-1")["record"]["rcode"] == "NXDOMAIN"


def test_a_response_dnslib_cannot_parse_keeps_what_the_sighting_carries():
    q = query("evil.example")
    r = response(q, answers=(a_record("evil.example", "198.51.100.7"),), rcode=3)
    truncated = dataclasses.replace(r, payload=r.payload[:-3])
    with pytest.raises(dnslib.DNSError):
        dnslib.DNSRecord.parse(truncated.payload)
    rec = build_event(emitted(q, truncated), "node-1")["record"]
    assert (rec["qname"], rec["qtype"], rec["rcode"], rec["answers"]) == ("evil.example", "A", "NXDOMAIN", [])
    runt = dataclasses.replace(r, payload=b"\x12")
    assert build_event(emitted(q, runt), "node-1")["record"]["rcode"] is None


def test_answers_are_capped():
    q = query("evil.example")
    r = response(q, answers=tuple(a_record("evil.example", f"198.51.100.{i}") for i in range(40)))
    assert len(build_event(emitted(q, r), "node-1")["record"]["answers"]) == 32


def test_type_mnemonics():
    assert [type_mnemonic(t) for t in (1, 28, 65, 255, 65534)] == ["A", "AAAA", "HTTPS", "ANY", "TYPE65534"]


def test_the_id_depends_on_node_client_names_feeds_and_window_start_only():
    q = query("evil.example")
    ev = emitted(q, response(q))
    base = event_id("node-1", ev)
    assert event_id("node-1", dataclasses.replace(ev, count=7, last_seen=T0 + 30)) == base
    for changed in (dict(identity="shop/other"), dict(names=("x.example",)), dict(feeds=("c2", "x")),
                    dict(window_start=T0 + 60)):
        assert event_id("node-1", dataclasses.replace(ev, **changed)) != base
    assert event_id("node-2", ev) != base
    assert len(base) == 32 and int(base, 16) >= 0


def test_ids_begin_with_their_window_start_so_they_sort_by_time():
    q = query("evil.example")
    ev = emitted(q, response(q))
    ids = [event_id("node-1", dataclasses.replace(ev, window_start=T0 + offset, identity=f"shop/pod-{offset}"))
           for offset in (0, 0.5, 1, 61, 3600)]
    assert [int(one[:8], 16) for one in ids] == [int(T0), int(T0), int(T0) + 1, int(T0) + 61, int(T0) + 3600]
    assert ids[2:] == sorted(ids[2:]) and len(set(ids)) == 5


@pytest.mark.parametrize("ts, text", [
    (T0, "2026-11-27T20:11:36.123Z"),
    (0.0, "1970-01-01T00:00:00.000Z"),
    (1795810296.9996, "2026-11-27T20:11:37.000Z"),
    (1795810296.0004, "2026-11-27T20:11:36.000Z"),
])
def test_rfc3339(ts, text):
    assert rfc3339(ts) == text


def test_every_field_is_described_once():
    paths = [path for path, _ in schema()]
    assert len(paths) == len(set(paths))
    assert all(doc.strip() for _, doc in schema())
    assert "record.matches.section" in paths and "source_workload.kind" in paths
    constants = {f.name for f in dataclasses.fields(SecurityEvent) if f.default is not dataclasses.MISSING}
    assert constants == {"type", "severity", "origin", "name", "attack_vector", "mitre_tactic"}
