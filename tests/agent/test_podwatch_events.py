"""The pure half of the pod watch: PodTracker (events + times → address history), claim_time, and kubewatch."""

from __future__ import annotations

import json
import math
import random
import threading
import time

import pytest

from agent.core.attribution import PodDirectory, pod_info
from dnswatch.kubewatch import Backoff, WatchError, WatchExpired, WatchPosition, decode_watch_line
from agent.core.podevents import PodTracker, claim_time
from tests.agent.make_sightings import pod

ADDR = "10.244.1.50"


def tracked(*items: dict, seen: float = 100.0, grace: float = 300.0) -> PodTracker:
    tracker = PodTracker(PodDirectory(), grace=grace)
    tracker.relisted(items, seen)
    return tracker


def holder(tracker: PodTracker, ts: float, addr: str = ADDR) -> str | None:
    info = tracker.directory.lookup(addr, ts)
    return None if info is None else info.name


def network_ready(item: dict, at: str, status: str = "True", kind: str = "PodReadyToStartContainers") -> dict:
    item["status"].setdefault("conditions", []).append({"type": kind, "status": status, "lastTransitionTime": at})
    return item


# --- claim_time --------------------------------------------------------------------------------------

AT_90 = "1970-01-01T00:01:30Z"  # 90.0 in epoch seconds


@pytest.mark.parametrize("kind", ["PodReadyToStartContainers", "PodHasNetwork"])
def test_a_pod_got_its_address_when_its_network_became_ready(kind):
    assert claim_time(network_ready(pod("p", ip=ADDR), AT_90, kind=kind), seen=100.0) == 90.0


@pytest.mark.parametrize(
    "item",
    [
        pod("no-conditions", ip=ADDR),
        network_ready(pod("not-ready", ip=ADDR), AT_90, status="False"),
        network_ready(pod("garbled-time", ip=ADDR), "yesterday"),
        network_ready(pod("other-condition", ip=ADDR), AT_90, kind="Ready"),
        {"status": {"conditions": ["junk"]}},
    ],
)
def test_otherwise_when_the_watch_saw_it(item):
    assert claim_time(item, seen=100.0) == 100.0


def test_a_claim_never_starts_after_it_was_seen():
    assert claim_time(network_ready(pod("p", ip=ADDR), "1970-01-01T00:03:20Z"), seen=100.0) == 100.0


# --- tenures from events -----------------------------------------------------------------------------


def test_a_listed_pod_holds_its_address_from_its_network_time():
    tracker = tracked(network_ready(pod("web", ip=ADDR), AT_90))
    assert holder(tracker, 89.0) is None
    assert holder(tracker, 90.0) == "web"
    assert holder(tracker, 1e12) == "web"


def test_a_pod_added_later_holds_its_address_from_when_it_got_it():
    tracker = tracked()
    tracker.applied(pod("web"), 150.0)  # created, still without an address
    assert len(tracker.directory) == 0
    tracker.applied(pod("web", ip=ADDR), 160.0)
    assert (holder(tracker, 159.0), holder(tracker, 160.0)) == (None, "web")


def test_an_address_came_after_the_pod_was_last_seen_without_it():
    tracker = tracked(pod("web"))  # listed at 100 without an address
    tracker.applied(network_ready(pod("web"), AT_90), 150.0)  # a stale condition, still no address
    tracker.applied(network_ready(pod("web", ip=ADDR), AT_90), 160.0)
    assert (holder(tracker, 149.0), holder(tracker, 150.0)) == (None, "web")


def test_a_deleted_pod_answers_for_packets_before_its_deletion_until_pruned():
    tracker = tracked(pod("web", ip=ADDR), grace=60.0)
    tracker.deleted(pod("web", ip=ADDR), 200.0)
    assert (holder(tracker, 199.0), holder(tracker, 200.0)) == ("web", None)
    tracker.prune(259.0)
    assert holder(tracker, 199.0) == "web"
    tracker.prune(261.0)
    assert holder(tracker, 199.0) is None
    assert len(tracker.directory) == 0 and len(tracker) == 0


def test_a_reused_address_belongs_to_the_pod_holding_it_at_the_packets_time():
    tracker = tracked(pod("old", ip=ADDR, uid="u-old"))
    tracker.deleted(pod("old", ip=ADDR, uid="u-old"), 200.0)
    tracker.applied(pod("new", uid="u-new"), 205.0)
    tracker.applied(pod("new", ip=ADDR, uid="u-new"), 210.0)
    assert [holder(tracker, ts) for ts in (150.0, 205.0, 210.0, 1e12)] == ["old", None, "new", "new"]


def test_a_new_holder_seen_before_the_old_pods_deletion_takes_over_from_its_network_time():
    # The kubelet frees the address when it stops the old sandbox, before the old pod object goes; the new pod,
    # still Pending, must win over the old Running one from the moment its network came up.
    tracker = tracked(pod("old", ip=ADDR, uid="u-old"))
    tracker.applied(network_ready(pod("new", ip=ADDR, uid="u-new", phase="Pending"), "1970-01-01T00:03:23Z"), 205.0)
    assert [holder(tracker, ts) for ts in (202.0, 203.0, 206.0)] == ["old", "new", "new"]
    # The old pod terminating (still listing the address) and its deletion change none of that.
    tracker.applied(pod("old", ip=ADDR, uid="u-old"), 206.0)
    tracker.deleted(pod("old", ip=ADDR, uid="u-old"), 207.0)
    assert [holder(tracker, ts) for ts in (202.0, 203.0, 206.0, 1e12)] == ["old", "new", "new", "new"]
    assert [(t.start, t.end, t.pod.name) for t in tracker.directory.history(ADDR)] == [
        (100.0, 203.0, "old"), (203.0, math.inf, "new")]  # fmt: skip


def test_a_pod_recreated_under_its_name_is_another_pod():
    tracker = tracked(pod("db-0", ip=ADDR, uid="first", labels={"gen": "1"}))
    tracker.deleted(pod("db-0", ip=ADDR, uid="first"), 200.0)
    tracker.applied(pod("db-0", ip=ADDR, uid="second", labels={"gen": "2"}), 210.0)
    assert dict(tracker.directory.lookup(ADDR, 150.0).labels) == {"gen": "1"}
    assert tracker.directory.lookup(ADDR, 205.0) is None
    assert dict(tracker.directory.lookup(ADDR, 210.0).labels) == {"gen": "2"}


@pytest.mark.parametrize("phase", ["Succeeded", "Failed"])
def test_a_completed_pod_gives_its_address_back_when_it_completes(phase):
    tracker = tracked(pod("job-x", ip=ADDR))
    tracker.applied(pod("job-x", ip=ADDR, phase=phase), 200.0)  # the object stays, still listing the address
    assert (holder(tracker, 199.0), holder(tracker, 200.0)) == ("job-x", None)
    tracker.deleted(pod("job-x", ip=ADDR, phase=phase), 500.0)
    assert (holder(tracker, 199.0), holder(tracker, 300.0)) == ("job-x", None)


def test_a_pod_listed_already_completed_claims_nothing():
    tracker = tracked(pod("job-x", ip=ADDR, phase="Succeeded"), pod("web", ip=ADDR))
    assert holder(tracker, 1e12) == "web"
    assert [t.pod.name for t in tracker.directory.history(ADDR)] == ["web"]


def test_a_pod_whose_address_changes_gives_the_old_one_up():
    tracker = tracked(pod("web", ip=ADDR))
    tracker.applied(pod("web", ip="10.244.1.51"), 200.0)
    assert (holder(tracker, 199.0), holder(tracker, 200.0)) == ("web", None)
    assert (holder(tracker, 199.0, "10.244.1.51"), holder(tracker, 200.0, "10.244.1.51")) == (None, "web")


def test_new_details_update_the_tenure_in_place():
    tracker = tracked(pod("web", ip=ADDR, labels={"v": "1"}))
    tracker.applied(pod("web", ip=ADDR, labels={"v": "2"}), 200.0)
    (tenure,) = tracker.directory.history(ADDR)
    assert (tenure.start, tenure.end, dict(tenure.pod.labels)) == (100.0, math.inf, {"v": "2"})


def test_dual_stack_pods_hold_both_addresses():
    tracker = tracked(pod("dual", ip=[ADDR, "fd00:10:244::32"]))
    assert holder(tracker, 150.0, "fd00:10:244::32") == holder(tracker, 150.0) == "dual"
    tracker.deleted(pod("dual", ip=[ADDR, "fd00:10:244::32"]), 200.0)
    assert holder(tracker, 250.0, "fd00:10:244::32") is holder(tracker, 250.0) is None


def test_host_network_pods_never_claim_the_node_address():
    tracker = tracked(pod("kube-proxy-x", "kube-system", "192.168.1.10", host_network=True))
    assert holder(tracker, 150.0, "192.168.1.10") is None
    assert len(tracker) == 1 and len(tracker.directory) == 0


def test_a_relist_ends_pods_that_vanished_while_the_watch_was_away_at_the_relist():
    tracker = tracked(pod("stays", ip="10.244.1.51"), pod("vanished", ip=ADDR))
    tracker.relisted([pod("stays", ip="10.244.1.51", labels={"v": "2"}), pod("arrived", ip="10.244.1.52")], 300.0)
    assert (holder(tracker, 299.0), holder(tracker, 300.0)) == ("vanished", None)
    assert holder(tracker, 300.0, "10.244.1.52") == "arrived"
    (stays,) = tracker.directory.history("10.244.1.51")  # not a new tenure: the same one, refreshed
    assert (stays.start, dict(stays.pod.labels)) == (100.0, {"v": "2"})
    assert len(tracker) == 2


def test_a_relist_where_a_new_pod_took_a_vanished_pods_address():
    tracker = tracked(pod("old", ip=ADDR, uid="u-old"))
    tracker.relisted([network_ready(pod("new", ip=ADDR, uid="u-new"), "1970-01-01T00:04:10Z")], 300.0)
    assert [holder(tracker, ts) for ts in (249.0, 250.0, 300.0)] == ["old", "new", "new"]


def test_objects_that_are_no_usable_pods_are_counted_and_skipped():
    tracker = tracked({"metadata": {}}, {"kind": "Pod", "metadata": {"name": "x", "labels": ["junk"]}})
    tracker.deleted({"metadata": {"name": None}}, 200.0)
    assert tracker.skipped == 3 and len(tracker) == 0


def test_a_reader_in_another_thread_never_sees_an_address_without_its_holder():
    # Two pods take the address from each other over and over; a reader looking at "now" must always find
    # one of them (each change is one swap of the address's history, never an end without the new claim).
    directory = PodDirectory()
    pods = [pod_info(pod(name, ip=ADDR, uid=name)) for name in ("a", "b")]
    directory.claim(pods[0], 0.0)
    stop, misses, reads = threading.Event(), [], [0]

    def reader() -> None:
        while not stop.is_set():
            if directory.lookup(ADDR, 1e12) is None:
                misses.append(1)
            reads[0] += 1

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(1, 3000):
            directory.claim(pods[i % 2], float(i))
            directory.release(pods[(i + 1) % 2], float(i))
            if i % 100 == 0:
                directory.prune(float(i))
                time.sleep(0)  # let the reader in between changes as well as within them
    finally:
        stop.set()
        thread.join()
    assert misses == [] and reads[0] > 0


# --- kubewatch ---------------------------------------------------------------------------------------


def line(type_: str, obj: dict) -> str:
    return json.dumps({"type": type_, "object": obj})


def test_watch_lines():
    assert decode_watch_line("") is None and decode_watch_line(b"  ") is None
    event = decode_watch_line(line("ADDED", {"kind": "Pod", "metadata": {"name": "a", "resourceVersion": "7"}}))
    assert (event.type, event.resource_version) == ("ADDED", "7")
    bookmark = decode_watch_line(line("BOOKMARK", {"kind": "Pod", "metadata": {"resourceVersion": "9"}}))
    assert (bookmark.type, bookmark.resource_version) == ("BOOKMARK", "9")


def test_an_error_event_with_410_means_list_again_and_others_mean_retry():
    gone = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old resource version: 3 (9)"}
    with pytest.raises(WatchExpired, match="too old"):
        decode_watch_line(line("ERROR", gone))
    with pytest.raises(WatchError, match="500") as error:
        decode_watch_line(line("ERROR", {"kind": "Status", "code": 500, "message": "etcd is sad"}))
    assert not isinstance(error.value, WatchExpired)


@pytest.mark.parametrize("junk", ["<html>", "[1, 2]", '{"type": "ADDED"}', '{"type": 1, "object": {}}'])
def test_a_line_that_is_no_watch_event_is_a_value_error(junk):
    with pytest.raises(ValueError):
        decode_watch_line(junk)


def test_the_position_moves_with_lists_events_and_bookmarks_and_410_forgets_it():
    position = WatchPosition()
    assert position.must_list
    position.listed({"kind": "PodList", "metadata": {"resourceVersion": "5"}, "items": []})
    assert (position.must_list, position.resource_version) == (False, "5")
    position.handled(decode_watch_line(line("MODIFIED", {"metadata": {"resourceVersion": "8"}})))
    position.handled(decode_watch_line(line("BOOKMARK", {"metadata": {"resourceVersion": "12"}})))
    position.handled(decode_watch_line(line("ADDED", {"metadata": {}})))  # no version: keep the last one
    assert position.resource_version == "12"
    position.expired()
    assert position.must_list
    with pytest.raises(ValueError):
        position.listed({"items": []})


def test_backoff_grows_to_its_maximum_with_jitter_below_the_nominal_delay():
    backoff, rng = Backoff(initial=0.5, maximum=30.0, jitter=0.25), random.Random(7)
    delays = [backoff.delay(n, rng) for n in range(1, 12)]
    assert 0.375 <= delays[0] <= 0.5
    assert all(0.75 * min(30.0, 0.5 * 2 ** i) <= d <= min(30.0, 0.5 * 2 ** i) for i, d in enumerate(delays))
    assert delays[-1] >= 22.5
