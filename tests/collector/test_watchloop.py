"""collector.core.watchloop: feed changes from listings and events, backoff, the InvalidSpec status patch."""

from __future__ import annotations

import random

from collector.core.watchloop import (
    INVALID_SPEC,
    Backoff,
    FeedInvalid,
    FeedDeleted,
    FeedsSynced,
    FeedTracker,
    FeedUpserted,
    deliver,
    invalid_spec_status_patch,
)


def feed(name: str, url: str = "https://f.example/c2", **extra) -> dict:
    return {"apiVersion": "dnswatch.dev/v1", "kind": "GlobalThreatFeed", "metadata": {"name": name, **extra},
            "spec": {"content": "DomainNameSet", "pull": {"http": {"url": url}}}}  # fmt: skip


def listing(*manifests: dict) -> list[tuple[str, dict, str]]:
    return [(m["metadata"]["name"], m, f"GlobalThreatFeed/{m['metadata']['name']}") for m in manifests]


def kinds(changes) -> list[tuple]:
    return [(type(c).__name__, getattr(c, "name", None) or getattr(getattr(c, "spec", None), "name", None)) for c in changes]


def test_relist_reports_only_differences_and_ends_synced():
    tracker = FeedTracker()
    first = tracker.relisted(listing(feed("b"), feed("a")))
    assert kinds(first) == [("FeedUpserted", "a"), ("FeedUpserted", "b"), ("FeedsSynced", None)]
    assert first[0].origin == "GlobalThreatFeed/a"
    again = tracker.relisted(listing(feed("a", resourceVersion="9"), feed("b", url="https://f.example/b2"), feed("c")))
    assert kinds(again) == [("FeedUpserted", "b"), ("FeedUpserted", "c"), ("FeedsSynced", None)]
    gone = tracker.relisted(listing(feed("c")))
    assert kinds(gone) == [("FeedDeleted", "a"), ("FeedDeleted", "b"), ("FeedsSynced", None)]
    assert gone[-1] == FeedsSynced(1) and tracker.names == {"c"}


def test_events_ignore_status_and_metadata_changes():
    tracker = FeedTracker()
    assert kinds(tracker.applied("a", feed("a"), "o")) == [("FeedUpserted", "a")]
    assert tracker.applied("a", {**feed("a", generation=2), "status": {"entries": 5}}, "o") == []
    assert tracker.deleted("a") == [FeedDeleted("a")]
    assert tracker.deleted("a") == []


def test_an_invalid_manifest_is_reported_once_and_keeps_the_feed():
    tracker = FeedTracker()
    tracker.applied("a", feed("a"), "o")
    bad = feed("a", url="ftp://f.example/a")
    [invalid] = tracker.applied("a", bad, "o")
    assert isinstance(invalid, FeedInvalid) and "spec.pull.http.url" in invalid.message
    assert tracker.problem("a") == invalid.message and tracker.names == {"a"}
    assert tracker.applied("a", bad, "o") == []
    assert kinds(tracker.applied("a", feed("a"), "o")) == [("FeedUpserted", "a")]
    assert tracker.problem("a") is None


def test_file_urls_only_when_allowed():
    manifest = feed("a", url="file:///srv/a.txt")
    assert isinstance(FeedTracker().applied("a", manifest, "o")[0], FeedInvalid)
    assert isinstance(FeedTracker(allow_file_urls=True).applied("a", manifest, "o")[0], FeedUpserted)


def test_backoff_grows_to_its_maximum_with_jitter_below_the_base():
    backoff = Backoff(initial=1.0, maximum=10.0, factor=2.0, jitter=0.5)
    rng = random.Random(7)
    delays = [backoff.delay(n, rng) for n in range(1, 8)]
    bases = [1, 2, 4, 8, 10, 10, 10]
    assert all(base / 2 <= delay <= base for delay, base in zip(delays, bases))
    same_seed = random.Random(7)
    assert delays == [backoff.delay(n, same_seed) for n in range(1, 8)]
    assert Backoff(jitter=0.0).delay(1, random.Random()) == Backoff().initial


def test_invalid_spec_status_patch_keeps_other_conditions():
    pull = {"type": "PullFailed", "message": "HTTP 500"}
    obj = {"status": {"errorConditions": [pull]}}
    patch = invalid_spec_status_patch(obj, "spec.mode: bad")
    assert patch == {"errorConditions": [pull, {"type": INVALID_SPEC, "message": "spec.mode: bad"}]}
    assert invalid_spec_status_patch({"status": patch}, "spec.mode: bad") is None
    assert invalid_spec_status_patch({"status": patch}, None) == {"errorConditions": [pull]}
    assert invalid_spec_status_patch({}, None) is None
    full = {"status": {"errorConditions": [{"type": f"T{i}", "message": ""} for i in range(10)]}}
    assert len(invalid_spec_status_patch(full, "x")["errorConditions"]) == 10


def test_deliver_calls_the_sink():
    calls = []

    class Sink:
        def upserted(self, spec):
            calls.append(("upserted", spec.name))

        def removed(self, name):
            calls.append(("removed", name))

        def invalid(self, name, message):
            calls.append(("invalid", name, message))

    [upserted] = FeedTracker().applied("a", feed("a"), "o")
    for change in (upserted, FeedDeleted("a"), FeedInvalid(None, "m", "o"), FeedsSynced(0)):
        deliver(change, Sink())
    assert calls == [("upserted", "a"), ("removed", "a"), ("invalid", None, "m")]
