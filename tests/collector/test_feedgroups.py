"""collector.core.feedgroups: ours and Calico's GlobalThreatFeeds as one source, and Calico's part of a status."""

from __future__ import annotations

from collector.core.feedgroups import FeedMerge, calico_status
from collector.core.watchloop import FeedDeleted, FeedInvalid, FeedsSynced, FeedUpserted
from dnswatch.feeds.spec import FeedSpec

OURS, CALICO = 0, 1


def upserted(group: int, name: str, url: str = "https://f.example/list") -> FeedUpserted:
    where = ("dnswatch.dev/v1", "projectcalico.org/v3")[group]
    return FeedUpserted(FeedSpec(name=name, url=url), f"{where} GlobalThreatFeed/{name}")


def names(changes) -> list[tuple[str, str | None, str]]:
    return [(type(c).__name__, c.spec.name if isinstance(c, FeedUpserted) else getattr(c, "name", None),
             getattr(c, "origin", "")) for c in changes]


def test_nothing_is_reported_until_both_groups_have_listed_then_ours_wins_a_shared_name():
    merge = FeedMerge(2)
    assert merge.take(CALICO, upserted(CALICO, "shared")) == []
    assert merge.take(CALICO, upserted(CALICO, "calico-only")) == []
    assert merge.take(CALICO, FeedsSynced(2)) == []  # ours has not listed: nobody knows who wins yet
    assert merge.take(OURS, upserted(OURS, "shared")) == []
    changes = merge.take(OURS, FeedsSynced(1))
    assert names(changes) == [("FeedUpserted", "calico-only", "projectcalico.org/v3 GlobalThreatFeed/calico-only"),
                              ("FeedUpserted", "shared", "dnswatch.dev/v1 GlobalThreatFeed/shared"),
                              ("FeedsSynced", None, "")]
    assert changes[-1] == FeedsSynced(2)
    assert [(r.origin, r.name) for r in merge.shadowed()] == [("projectcalico.org/v3 GlobalThreatFeed/shared", "shared")]
    assert "dnswatch.dev/v1 GlobalThreatFeed/shared of the same name takes precedence" in merge.shadowed()[0].message


def test_a_shadowed_change_is_silent_and_the_shadowed_feed_takes_over_when_ours_is_deleted():
    merge = FeedMerge(2)
    for group in (OURS, CALICO):
        merge.take(group, upserted(group, "shared"))
        merge.take(group, FeedsSynced(1))
    assert merge.take(CALICO, upserted(CALICO, "shared", "https://f.example/v2")) == []
    assert merge.winner("shared") == OURS
    taking_over = merge.take(OURS, FeedDeleted("shared"))
    assert names(taking_over) == [("FeedUpserted", "shared", "projectcalico.org/v3 GlobalThreatFeed/shared")]
    assert taking_over[0].spec.url == "https://f.example/v2" and merge.shadowed() == []
    assert merge.take(CALICO, FeedDeleted("shared")) == [FeedDeleted("shared")]
    assert merge.winner("shared") is None


def test_ours_appearing_later_replaces_calicos_and_a_refusal_of_ours_is_reported():
    merge = FeedMerge(2)
    for group in (OURS, CALICO):
        merge.take(group, FeedsSynced(0))
    assert names(merge.take(CALICO, upserted(CALICO, "c2")))[0][2] == "projectcalico.org/v3 GlobalThreatFeed/c2"
    assert names(merge.take(OURS, upserted(OURS, "c2")))[0][2] == "dnswatch.dev/v1 GlobalThreatFeed/c2"
    refused = FeedInvalid("c2", "spec.pull.period: too short", "dnswatch.dev/v1 GlobalThreatFeed/c2")
    assert merge.take(OURS, refused) == [refused]
    assert merge.take(CALICO, FeedInvalid("c2", "shadowed anyway", "projectcalico.org/v3 GlobalThreatFeed/c2")) == []
    nameless = FeedInvalid(None, "metadata.name: required", "projectcalico.org/v3 GlobalThreatFeed/")
    assert merge.take(CALICO, nameless) == [nameless]


def test_a_calico_object_gets_calicos_status_fields_only():
    status = {"lastSuccessfulSync": "2026-11-27T21:00:00Z", "entries": 3, "version": 2, "sha256": "ab",
              "rejectedLines": 1, "errorConditions": [{"type": "PullFailed", "message": "HTTP 503", "count": 4,
                                                       "lastTime": "2026-11-27T21:50:00Z"}]}
    assert calico_status(status) == {"lastSuccessfulSync": "2026-11-27T21:00:00Z",
                                     "errorConditions": [{"type": "PullFailed", "message": "HTTP 503"}]}
    assert calico_status({"errorConditions": []}) == {"errorConditions": []}
