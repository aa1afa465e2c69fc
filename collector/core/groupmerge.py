"""Objects of one kind read from several API groups, seen as one set by name (pure): the collector reads
AlertExceptions and SecurityEventWebhooks from `dnswatch.dev/v1` and, when the API server serves it, from
Calico's `projectcalico.org/v3` too. A name both groups hold is the first group's (ours); the other group's
object of that name is shadowed, and comes back into force if ours is deleted.

    merge = GroupMerge(2)
    merge.listed(0, {"ci": ours})             # -> every name's winning object now
    merge.applied(1, "ci", calicos)           # -> None: shadowed by ours, nothing changes
    merge.applied(0, "ci", None)              # -> Winner(1, calicos): ours deleted, Calico's in force
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

__all__ = ["GroupMerge", "Winner"]


class Winner(NamedTuple):
    """What a name now is: the object in force and the index of its group; `obj` None: the name is gone."""

    group: int
    obj: Mapping[str, Any] | None


class GroupMerge:
    """Each group's objects by name, and which one is in force for each name."""

    def __init__(self, groups: int) -> None:
        self._objects: list[dict[str, Mapping[str, Any]]] = [{} for _ in range(groups)]

    def listed(self, group: int, objects: Mapping[str, Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
        """A list of `group` (name -> object) replaces what it held; every name's object in force after it."""
        self._objects[group] = dict(objects)
        return self.merged()

    def merged(self) -> dict[str, Mapping[str, Any]]:
        """Every name's object in force."""
        merged: dict[str, Mapping[str, Any]] = {}
        for objects in reversed(self._objects):  # the first group's last: it wins
            merged.update(objects)
        return merged

    def applied(self, group: int, name: str, obj: Mapping[str, Any] | None) -> Winner | None:
        """A watch event of `group`: `obj` added or modified, or None for deleted. What the name is now, or
        None when the object in force did not change (an event of a shadowed object)."""
        before = self.winner(name)
        if obj is None:
            self._objects[group].pop(name, None)
        else:
            self._objects[group][name] = obj
        after = self.winner(name)
        if after is None:
            return None if before is None else Winner(before, None)
        if after == group or after != before:
            return Winner(after, self._objects[after][name])
        return None

    def winner(self, name: str) -> int | None:
        """The index of the group whose object of that name is in force; None when no group holds it."""
        for index, objects in enumerate(self._objects):
            if name in objects:
                return index
        return None
