from agent.core.transactions import TransactionTracker
from tests.agent.make_sightings import (
    CLIENT,
    COREDNS,
    SERVICE,
    T0,
    a_record,
    address,
    domain,
    query,
    response,
)


def test_a_query_and_its_response_are_one_transaction_completed_by_the_response():
    tracker = TransactionTracker()
    q = query("evil.example")
    r = response(q, T0 + 0.02, answers=(a_record("evil.example", "198.51.100.7"),),
                 matches=(domain("evil.example"), address("198.51.100.7")))
    assert tracker.observe(q) == []
    (tx,) = tracker.observe(r)
    assert (tx.client, tx.client_port, tx.server, tx.server_port) == (CLIENT, 40000, SERVICE, 53)
    assert (tx.first_ts, tx.last_ts, tx.query, tx.response, tx.message) == (T0, T0 + 0.02, q, r, r)
    assert tx.matches == (domain("evil.example"), address("198.51.100.7"))
    assert tracker.expire(T0 + 100) == [] and tracker.drain() == []


def test_the_same_exchange_sighted_on_both_interfaces_is_one_transaction():
    # client veth: client → service IP; CoreDNS veth: client → CoreDNS pod IP (kube-proxy DNAT), and back.
    tracker = TransactionTracker()
    q_client_side = query("evil.example")
    q_server_side = query("evil.example", T0 + 0.0001, server=COREDNS)
    r_server_side = response(q_server_side, T0 + 0.003)
    r_client_side = response(q_client_side, T0 + 0.0031)
    out = [tx for s in (q_client_side, q_server_side, r_server_side, r_client_side) for tx in tracker.observe(s)]
    assert len(out) == 1
    assert out[0].server == SERVICE  # as the client addressed it
    assert (out[0].query, out[0].response) == (q_client_side, r_server_side)
    assert out[0].matches == (domain("evil.example"),)
    assert tracker.duplicates == 2
    assert tracker.expire(T0 + 100) == [] and tracker.drain() == []


def test_a_response_without_its_query_is_a_transaction_whose_client_is_its_destination():
    tracker = TransactionTracker()
    r = response(query("evil.example"))
    (tx,) = tracker.observe(r)
    assert (tx.client, tx.client_port, tx.server, tx.server_port) == (CLIENT, 40000, SERVICE, 53)
    assert (tx.query, tx.response, tx.first_ts, tx.last_ts) == (None, r, r.ts, r.ts)
    # ...and its copy on the DNS server's interface is not a second one
    assert tracker.observe(response(query("evil.example"), r.ts + 0.001, server=COREDNS)) == []


def test_a_response_sighted_before_its_query_still_counts_once():
    tracker = TransactionTracker()
    q = query("evil.example")
    assert len(tracker.observe(response(q, T0 - 0.001))) == 1
    assert tracker.observe(q) == []
    assert tracker.drain() == []


def test_an_unanswered_query_is_a_transaction_when_it_times_out():
    tracker = TransactionTracker(timeout=5.0)
    q = query("evil.example")
    tracker.observe(q)
    assert tracker.expire(T0 + 4.9) == []
    (tx,) = tracker.expire(T0 + 5.0)
    assert (tx.query, tx.response, tx.client, tx.server) == (q, None, CLIENT, SERVICE)
    # a response arriving just after the timeout belongs to the transaction already reported
    assert tracker.observe(response(q, T0 + 5.5)) == []
    assert len(tracker) == 0


def test_drain_reports_every_pending_query():
    tracker = TransactionTracker()
    tracker.observe(query("a.evil.example", dns_id=1))
    tracker.observe(query("b.evil.example", dns_id=2))
    assert [tx.query.qname for tx in tracker.drain()] == ["a.evil.example", "b.evil.example"]
    assert tracker.drain() == []


def test_queries_differing_in_port_id_name_type_or_transport_are_separate():
    tracker = TransactionTracker()
    base = query("evil.example")
    variants = [base, query("evil.example", sport=40001), query("evil.example", dns_id=0x4321),
                query("x.evil.example"), query("evil.example", qtype="AAAA"),
                query("evil.example", transport="tcp")]
    for q in variants:
        assert tracker.observe(q) == []
    assert len(tracker) == len(variants)
    assert [tx.response for q in variants for tx in tracker.observe(response(q))] == [
        response(q) for q in variants]


def test_a_full_table_evicts_the_oldest_query_as_a_transaction():
    tracker = TransactionTracker(max_pending=2)
    q1, q2, q3 = (query("evil.example", T0 + i, dns_id=i) for i in range(3))
    assert tracker.observe(q1) == [] and tracker.observe(q2) == []
    (evicted,) = tracker.observe(q3)
    assert (evicted.query, evicted.response, tracker.evicted, len(tracker)) == (q1, None, 1, 2)
    # its late response is not counted again
    assert tracker.observe(response(q1)) == []
    assert len(tracker.observe(response(q2))) == 1


def test_the_memory_of_completed_transactions_is_short_lived_and_bounded():
    tracker = TransactionTracker(timeout=5.0, max_pending=2)
    q = query("evil.example")
    tracker.observe(q)
    tracker.observe(response(q))
    tracker.expire(T0 + 6.0)
    # the same key long after is a new exchange (a client reusing its port and id)
    q_again = query("evil.example", T0 + 7.0)
    assert tracker.observe(q_again) == []
    assert len(tracker.observe(response(q_again))) == 1
    for i in range(3):  # pushes the oldest remembered key out
        tracker.observe(response(query("evil.example", T0 + 8, dns_id=100 + i)))
    assert len(tracker.observe(response(q_again, T0 + 8.5))) == 1


def test_matches_are_the_union_of_all_sightings_in_first_seen_order():
    tracker = TransactionTracker()
    q = query("www.shop.example", matches=())
    q_dup = query("www.shop.example", T0 + 0.001, server=COREDNS, matches=(domain("www.shop.example"),))
    r = response(q, answers=(a_record("www.shop.example", "198.51.100.7"),),
                 matches=(address("198.51.100.7"), domain("www.shop.example")))
    tracker.observe(q)
    tracker.observe(q_dup)
    (tx,) = tracker.observe(r)
    assert tx.matches == (domain("www.shop.example"), address("198.51.100.7"))
    assert tx.last_ts == r.ts
