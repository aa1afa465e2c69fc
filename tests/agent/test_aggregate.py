import pytest

from agent.core.aggregate import Aggregator
from agent.core.attribution import pod_info
from agent.core.transactions import Transaction, TransactionTracker
from tests.agent.make_sightings import CLIENT, T0, WEB, WEB_2, address, domain, ip, pod, query, response

WEB_POD, WEB_2_POD = pod_info(WEB), pod_info(WEB_2)


def tx(name: str = "evil.example", ts: float = T0, *, client: bytes = CLIENT, feed: str = "c2",
       extra: tuple = ()) -> Transaction:
    """One answered transaction, made the way the pipeline makes them."""
    q = query(name, ts, client=client, matches=(domain(name, feed), *extra))
    tracker = TransactionTracker()
    tracker.observe(q)
    (done,) = tracker.observe(response(q, ts + 0.01))
    return done


def unanswered(ts: float) -> Transaction:
    tracker = TransactionTracker()
    tracker.observe(query("evil.example", ts))
    (done,) = tracker.drain()
    return done


def test_the_first_transaction_is_emitted_at_once():
    agg = Aggregator()
    (ev,) = agg.add(tx(), WEB_POD)
    assert (ev.identity, ev.names, ev.feeds, ev.aggregate_by) == ("shop/web-7d4b9c-x2x1", ("evil.example",), ("c2",),
                                                                  "pod")
    assert (ev.window_start, ev.count, ev.first_seen, ev.last_seen) == (T0, 1, T0, T0 + 0.01)
    assert (ev.client, ev.pod, dict(ev.labels)) == (CLIENT, WEB_POD, dict(WEB_POD.labels))
    assert ev.matches == (domain("evil.example"),)


def test_repeats_fold_and_the_window_end_re_emits_the_cumulative_count_once():
    agg = Aggregator(window=60.0)
    (first,) = agg.add(tx(ts=T0), WEB_POD)
    assert agg.add(tx(ts=T0 + 10), WEB_POD) == []
    assert agg.add(tx(ts=T0 + 59), WEB_POD) == []
    assert agg.expire(T0 + 59.99) == []
    (final,) = agg.expire(T0 + 60)
    assert (final.identity, final.window_start, final.count) == (first.identity, first.window_start, 3)
    assert (final.first_seen, final.last_seen) == (T0, T0 + 59.01)
    assert agg.expire(T0 + 120) == [] and agg.flush() == []


def test_a_key_that_did_not_grow_is_not_emitted_again():
    agg = Aggregator()
    agg.add(tx(), WEB_POD)
    assert agg.expire(T0 + 60) == []
    assert len(agg) == 0


def test_a_transaction_after_the_window_opens_a_new_window():
    agg = Aggregator(window=60.0)
    agg.add(tx(ts=T0), WEB_POD)
    agg.expire(T0 + 60)
    (ev,) = agg.add(tx(ts=T0 + 61), WEB_POD)
    assert (ev.window_start, ev.count) == (T0 + 61, 1)


def test_a_window_not_yet_expired_is_closed_by_the_next_window_of_its_key():
    agg = Aggregator(window=60.0)
    agg.add(tx(ts=T0), WEB_POD)
    agg.add(tx(ts=T0 + 1), WEB_POD)
    closed, opened = agg.add(tx(ts=T0 + 60), WEB_POD)
    assert (closed.window_start, closed.count) == (T0, 2)
    assert (opened.window_start, opened.count) == (T0 + 60, 1)


def test_keys_differ_by_client_names_and_feeds():
    agg = Aggregator()
    emitted = [
        *agg.add(tx(), WEB_POD),
        *agg.add(tx(), WEB_2_POD),
        *agg.add(tx(client=ip("10.0.0.99")), None),
        *agg.add(tx("x.evil.example"), WEB_POD),
        *agg.add(tx(feed="other"), WEB_POD),
        *agg.add(tx(extra=(address("198.51.100.7"),)), WEB_POD),
    ]
    assert [(ev.identity, ev.names, ev.feeds) for ev in emitted] == [
        ("shop/web-7d4b9c-x2x1", ("evil.example",), ("c2",)),
        ("shop/web-7d4b9c-q8z7m", ("evil.example",), ("c2",)),
        ("10.0.0.99", ("evil.example",), ("c2",)),
        ("shop/web-7d4b9c-x2x1", ("x.evil.example",), ("c2",)),
        ("shop/web-7d4b9c-x2x1", ("evil.example",), ("other",)),
        ("shop/web-7d4b9c-x2x1", ("198.51.100.7", "evil.example"), ("bad-ips", "c2")),
    ]
    assert emitted[2].client == ip("10.0.0.99") and emitted[2].pod is None


def test_by_workload_the_replicas_of_one_owner_fold_into_one_event():
    agg = Aggregator(aggregate_by="workload")
    (first,) = agg.add(tx(client=CLIENT), WEB_POD)
    assert agg.add(tx(client=ip("10.244.1.11"), ts=T0 + 1), WEB_2_POD) == []
    # a replica of the next ReplicaSet, mid-rollout: another pod-template-hash
    rolled = pod_info(pod("web-5f6a7b-k2j4n", ip="10.244.1.12", labels={"app": "web", "pod-template-hash": "5f6a7b"},
                          owner=("ReplicaSet", "web-5f6a7b"), generate_name="web-5f6a7b-"))
    assert agg.add(tx(client=ip("10.244.1.12"), ts=T0 + 2), rolled) == []
    (final,) = agg.flush()
    assert (first.identity, first.client) == ("shop/Deployment/web", None)
    assert (final.identity, final.window_start, final.count, final.pod) == ("shop/Deployment/web", T0, 3, rolled)
    assert dict(final.labels) == {"app": "web"}  # what all replicas share


def test_by_workload_a_client_that_is_no_pod_is_still_its_address():
    (ev,) = Aggregator(aggregate_by="workload").add(tx(client=ip("10.0.0.99")), None)
    assert (ev.identity, ev.client) == ("10.0.0.99", ip("10.0.0.99"))


def test_matches_of_a_window_are_unioned_and_details_come_from_the_latest_transaction():
    agg = Aggregator()
    agg.add(tx(), WEB_POD)
    later = tx(ts=T0 + 5, extra=(domain("evil.example", "c2", "*.example"),))
    agg.add(later, WEB_POD)
    (ev,) = agg.flush()
    assert ev.matches == (domain("evil.example"), domain("evil.example", "c2", "*.example"))
    assert ev.transaction == later


def test_an_unanswered_transaction_does_not_replace_an_answered_one_for_the_details():
    agg = Aggregator()
    answered = tx()
    agg.add(answered, WEB_POD)
    agg.add(unanswered(T0 + 1), WEB_POD)
    (ev,) = agg.flush()
    assert (ev.count, ev.transaction, ev.last_seen) == (2, answered, T0 + 1)


def test_flush_emits_every_grown_key_and_closes_all():
    agg = Aggregator()
    agg.add(tx(), WEB_POD)
    agg.add(tx(), WEB_POD)
    agg.add(tx(), WEB_2_POD)
    assert [(ev.identity, ev.count) for ev in agg.flush()] == [("shop/web-7d4b9c-x2x1", 2)]
    assert len(agg) == 0


def test_too_many_open_keys_close_the_oldest_window_early():
    agg = Aggregator(max_keys=2)
    agg.add(tx("a.evil.example"), WEB_POD)
    agg.add(tx("a.evil.example"), WEB_POD)
    agg.add(tx("b.evil.example"), WEB_POD)
    closed, opened = agg.add(tx("c.evil.example"), WEB_POD)
    assert (closed.names, closed.count, opened.names, agg.evicted) == (("a.evil.example",), 2,
                                                                        ("c.evil.example",), 1)


def test_an_unknown_aggregation_is_refused():
    with pytest.raises(ValueError, match="aggregate_by"):
        Aggregator(aggregate_by="namespace")
