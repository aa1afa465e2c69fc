"""Every rule of docs/detection.md on transactions and clients, attribution and aggregation as a case, end to end."""

import hashlib

import pytest

from agent.core.attribution import BadSelector, PodDirectory
from agent.core.eventpipeline import EventPipeline
from agent.core.events import rfc3339
from tests.agent.make_sightings import (
    COREDNS,
    COREDNS_POD,
    T0,
    UPSTREAM,
    WEB,
    WEB_2,
    a_record,
    address,
    cname_record,
    domain,
    ip,
    pod,
    pod_list,
    query,
    response,
)

PODS = PodDirectory.from_pod_list(pod_list(WEB, WEB_2, COREDNS_POD))


def pipeline(pods=PODS, **kw) -> EventPipeline:
    return EventPipeline("node-1", pods, **kw)


def run(p: EventPipeline, *sightings) -> list[dict]:
    return [ev for s in sightings for ev in p.observe(s)]


def expected_id(client: str, names: str, feeds: str, window_start: float) -> str:
    digest = hashlib.sha256(f"node-1\x1f{client}\x1f{names}\x1f{feeds}\x1f{window_start!r}".encode()).hexdigest()
    return f"{int(window_start):08x}{digest[:24]}"


def match_record(name: str, feed: str, entry: str, section: str = "question") -> dict:
    """A match as a pipeline whose matcher has no feed context records it: no version, no line."""
    return {"name": name, "feed": feed, "entry": entry, "section": section, "feed_version": None, "line": None,
            "line_text": None}


def web_event(*, count=1, first=T0, last=T0 + 0.01, rcode="NOERROR", answers=(), **changes) -> dict:
    """The event shop/web-7d4b9c-x2x1 raises by asking for evil.example (feed c2), changed as a case needs."""
    record = {
        "feeds": ["c2"],
        "feed_labels": {"c2": {}},
        "suspicious_domains": ["evil.example"],
        "suspicious_ips": [],
        "matches": [match_record("evil.example", "c2", "evil.example")],
        "qname": "evil.example", "qtype": "A", "rcode": rcode,
        "server_ip": "10.96.0.10", "answers": list(answers),
        "count": count,
        "first_seen": rfc3339(first), "last_seen": rfc3339(last),
    }
    record.update(changes.pop("record", {}))
    event = {
        "id": expected_id("shop/web-7d4b9c-x2x1", "evil.example", "c2", first),
        "time": rfc3339(first),
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
        "record": record,
    }
    event.update(changes)
    return event


def test_a_query_and_its_response_make_one_event_of_count_one():
    p = pipeline()
    q = query("evil.example")
    events = run(p, q, response(q, answers=(a_record("evil.example", "198.51.100.7"),)))
    assert events == [web_event(answers=["evil.example A 198.51.100.7"])]
    assert p.tick(T0 + 100) == [] and p.finish() == []
    assert p.counters() == {"transactions": 1, "suppressed_dns_server": 0, "events_emitted": 1, "tx_evicted": 0,
                            "tx_duplicates": 0, "aggregates_evicted": 0, "build_errors": 0}


def test_the_same_exchange_on_the_client_and_the_dns_server_interfaces_counts_once():
    p = pipeline()
    q_client, q_server = query("evil.example"), query("evil.example", T0 + 0.0001, server=COREDNS)
    r_server = response(q_server, T0 + 0.003)
    r_client = response(q_client, T0 + 0.0031)
    assert run(p, q_client, q_server, r_server, r_client) == [web_event(last=T0 + 0.003)]
    assert p.finish() == []
    assert (p.transactions, p.counters()["tx_duplicates"]) == (1, 2)


def test_a_response_only_capture_names_its_destination_as_the_client():
    p = pipeline()
    r = response(query("evil.example"), T0)
    assert run(p, r) == [web_event(last=T0)]
    assert p.finish() == []


def test_repeats_fold_and_flush_cumulatively_under_the_same_id_then_a_new_window_gets_a_new_id():
    p = pipeline(window=60.0, tx_timeout=5.0)
    sightings = []
    for i, offset in enumerate((0, 10, 30)):
        q = query("evil.example", T0 + offset, sport=40000 + i, dns_id=i)
        sightings += [q, response(q)]
    first_emission = run(p, *sightings)
    assert first_emission == [web_event()]
    # windows close `tx_timeout` after their end, when no query of theirs can still be pending
    assert [ev for t in range(1, 65) for ev in p.tick(T0 + t)] == []
    assert p.tick(T0 + 65) == [web_event(count=3, last=T0 + 30.01)]
    assert p.tick(T0 + 200) == []
    q = query("evil.example", T0 + 300)
    assert run(p, q, response(q)) == [web_event(first=T0 + 300, last=T0 + 300.01)]
    assert expected_id("shop/web-7d4b9c-x2x1", "evil.example", "c2", T0 + 300) != first_emission[0]["id"]
    assert p.events_emitted == 3


def test_a_query_left_unanswered_just_before_the_window_end_counts_in_its_window():
    p = pipeline(window=60.0, tx_timeout=5.0)
    q1 = query("evil.example", T0, dns_id=1)
    q2 = query("evil.example", T0 + 58, dns_id=2)
    assert run(p, q1, response(q1), q2) == [web_event()]
    assert [ev for t in range(1, 70) for ev in p.tick(T0 + t)] == [web_event(count=2, last=T0 + 58)]


def test_the_end_of_a_capture_flushes_pending_queries_and_grown_windows():
    p = pipeline()
    q1, q2 = query("evil.example", T0, dns_id=1), query("evil.example", T0 + 1, dns_id=2)
    assert run(p, q1, q2) == []
    # the first transaction is a first occurrence, emitted at once; the window then flushes with both
    assert p.finish() == [web_event(last=T0, rcode=None), web_event(count=2, last=T0 + 1, rcode=None)]


def test_by_workload_two_replicas_fold_into_one_event():
    p = pipeline(aggregate_by="workload")
    q1 = query("evil.example")
    q2 = query("evil.example", T0 + 1, client=ip("10.244.1.11"))
    folded = dict(
        id=expected_id("shop/Deployment/web", "evil.example", "c2", T0),
        description="shop/web queried the domain name evil.example from global threat feed(s) c2",
        source_ip="-", source_name="-", source_name_aggr="web",
    )
    assert run(p, q1, response(q1), q2, response(q2)) == [web_event(**folded)]
    assert p.finish() == [web_event(count=2, last=T0 + 1.01, **folded)]


def test_a_client_that_is_no_pod_is_reported_by_address():
    p = pipeline()
    q = query("evil.example", client=ip("192.168.1.10"))
    assert run(p, q, response(q)) == [web_event(
        id=expected_id("192.168.1.10", "evil.example", "c2", T0),
        description="192.168.1.10 queried the domain name evil.example from global threat feed(s) c2",
        source_ip="192.168.1.10", source_namespace="-", source_name="-", source_name_aggr="-",
        source_labels={}, source_workload=None)]


def test_without_a_pod_list_every_client_is_an_address():
    q = query("evil.example")
    (event,) = run(pipeline(pods=None), q, response(q))
    assert (event["source_ip"], event["source_name"], event["source_namespace"]) == ("10.244.1.10", "-", "-")


def test_the_running_pod_is_reported_over_a_completed_one_on_the_same_address():
    done = pod("backup-28345678-7xq2c", "ops", "10.244.1.10", phase="Succeeded",
               owner=("Job", "backup-28345678"), generate_name="backup-28345678-")
    for order in ((done, WEB), (WEB, done)):
        q = query("evil.example")
        assert run(pipeline(PodDirectory.from_pod_list(pod_list(*order))), q, response(q)) == [web_event()]


def test_queries_the_dns_server_forwards_upstream_are_not_its_own():
    p = pipeline()
    q = query("evil.example")
    forwarded = query("evil.example", T0 + 0.001, client=COREDNS, sport=53000, server=UPSTREAM, dns_id=0x7777)
    events = run(p, q, forwarded, response(forwarded, T0 + 0.02), response(q, T0 + 0.021))
    assert events == [web_event(last=T0 + 0.021)]
    assert (p.transactions, p.suppressed_dns_server) == (2, 1)


def test_an_empty_dns_server_selector_suppresses_no_one():
    p = pipeline(dns_server_selector="")
    forwarded = query("evil.example", client=COREDNS, sport=53000, server=UPSTREAM)
    (event,) = run(p, forwarded, response(forwarded))
    assert (event["source_name"], p.suppressed_dns_server) == ("coredns-5d78c9869d-abcde", 0)


def test_a_bad_dns_server_selector_is_refused():
    with pytest.raises(BadSelector):
        pipeline(dns_server_selector="k8s-app in kube-dns")


def test_an_ip_only_match():
    p = pipeline()
    q = query("cdn.shop.example", matches=())
    r = response(q, answers=(a_record("cdn.shop.example", "198.51.100.7"),),
                 matches=(address("198.51.100.7", "bad-ips", "198.51.100.0/24"),))
    assert run(p, q, r) == [web_event(
        id=expected_id("shop/web-7d4b9c-x2x1", "198.51.100.7", "bad-ips", T0),
        description="shop/web-7d4b9c-x2x1 received the address(es) 198.51.100.7 from global threat feed(s) bad-ips",
        record={"feeds": ["bad-ips"], "feed_labels": {"bad-ips": {}}, "suspicious_domains": [],
                "suspicious_ips": ["198.51.100.7"],
                "matches": [match_record("198.51.100.7", "bad-ips", "198.51.100.0/24", "answer")],
                "qname": "cdn.shop.example", "answers": ["cdn.shop.example A 198.51.100.7"]})]


def test_a_name_found_only_in_the_answers():
    p = pipeline()
    q = query("www.shop.example", matches=())
    answers = (cname_record("www.shop.example", "evil.example"), a_record("evil.example", "198.51.100.7"))
    r = response(q, answers=answers,
                 matches=(domain("evil.example", section="answer"),))
    assert run(p, q, r) == [web_event(record={
        "matches": [match_record("evil.example", "c2", "evil.example", "answer")],
        "qname": "www.shop.example",
        "answers": ["www.shop.example CNAME evil.example", "evil.example A 198.51.100.7"]})]


def test_an_ipv6_client_and_server():
    p = pipeline(PodDirectory.from_pod_list(pod_list(pod("v6", ip=["10.244.1.30", "fd00:10:244::1e"]))))
    q = query("evil.example", client=ip("fd00:10:244::1e"), server=ip("fd00:10:96::a"), qtype="AAAA")
    (event,) = run(p, q, response(q))
    assert (event["source_ip"], event["source_name"], event["record"]["server_ip"], event["record"]["qtype"]) == (
        "fd00:10:244::1e", "v6", "fd00:10:96::a", "AAAA")


def test_an_event_that_cannot_be_built_is_counted_and_the_others_still_come_out():
    # A sighting stamped after the year 9999 (a live clock gone wrong, or a capture reader letting one
    # through) cannot become an RFC 3339 time; its event is dropped and counted, the next client's is not.
    p = pipeline(window=60)
    bad = query("evil.example", ts=1e13, client=ip("10.244.1.11"))
    assert run(p, bad, response(bad)) == []
    assert p.build_errors == 1 and "out of range" in p.last_build_error
    good = query("evil.example")
    assert run(p, good, response(good)) == [web_event()]
    assert p.counters()["build_errors"] == 1 and p.counters()["events_emitted"] == 1
