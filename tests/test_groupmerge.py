"""Objects read from two API groups as one set by name (collector/core/groupmerge.py): ours win a shared
name, Calico's comes back into force when ours goes, and a shadowed object's events change nothing."""

from __future__ import annotations

from collector.core.groupmerge import GroupMerge, Winner

OURS, CALICO = 0, 1


def obj(group: str, name: str, spec: str) -> dict:
    return {"apiVersion": group, "metadata": {"name": name}, "spec": {"selector": spec}}


def test_a_list_of_either_group_gives_every_name_once_ours_first() -> None:
    merge = GroupMerge(2)
    mine = obj("dnswatch.dev/v1", "shared", "a = 1")
    theirs = obj("projectcalico.org/v3", "shared", "b = 2")
    only_theirs = obj("projectcalico.org/v3", "calico-only", "c = 3")
    assert merge.listed(CALICO, {"shared": theirs, "calico-only": only_theirs}) == {
        "shared": theirs, "calico-only": only_theirs}
    assert merge.listed(OURS, {"shared": mine}) == {"shared": mine, "calico-only": only_theirs}
    assert (merge.winner("shared"), merge.winner("calico-only"), merge.winner("nothing")) == (OURS, CALICO, None)


def test_watch_events_say_what_changed_for_the_name_in_force() -> None:
    merge = GroupMerge(2)
    mine = obj("dnswatch.dev/v1", "shared", "a = 1")
    theirs = obj("projectcalico.org/v3", "shared", "b = 2")
    assert merge.applied(CALICO, "shared", theirs) == Winner(CALICO, theirs)
    assert merge.applied(OURS, "shared", mine) == Winner(OURS, mine)  # ours takes the name over
    changed = obj("projectcalico.org/v3", "shared", "b = 3")
    assert merge.applied(CALICO, "shared", changed) is None  # shadowed: nothing changes
    assert merge.applied(OURS, "shared", None) == Winner(CALICO, changed)  # ours gone: Calico's in force
    assert merge.applied(CALICO, "shared", None) == Winner(CALICO, None)  # and now the name is gone
    assert merge.applied(CALICO, "shared", None) is None and merge.merged() == {}
