"""Pod watch events as address history (docs/detection.md): the pure half of the pod watch.

`PodTracker` turns what the API says about this node's pods — a list, then ADDED / MODIFIED / DELETED — and the
time the watch saw it into `PodDirectory` changes:

- A pod's tenure of an address starts when the pod gets it: when a live pod (Pending, Running, Unknown) first
  lists it in status.podIPs / podIP. The start is the pod's `PodReadyToStartContainers` condition (the kubelet
  sets it, on this node's clock, once the sandbox and its network exist: exactly when the address was
  assigned), or the time the watch saw the address when the condition is missing (older clusters) or later;
  never before the watch last saw the pod without it.
  A claim ends whatever tenure of that address another pod still had: the address has one holder at a time,
  and the old pod's deletion is often seen after the new pod got the address (the kubelet releases it when it
  stops the sandbox, before the pod object goes).
- It ends when the pod is deleted, completes (Succeeded / Failed: the address goes back to the pool while the
  pod object stays), or no longer lists the address (the sandbox was recreated with another one), at the
  time the watch saw it; a relist ends the tenures of pods that vanished while the watch was away at the
  relist's time. Ended tenures stay resolvable for `grace` seconds (late packets, transactions that complete
  later), then `prune` forgets them.
- Only a change of the pod's own listing opens a tenure: an address taken over by another pod is not taken
  back when the old pod is modified again while it terminates.

hostNetwork pods never claim (see attribution.py). Everything here is values in, directory changes out: the
tests drive it with plain dicts and times.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent.core.attribution import PodDirectory, PodInfo, pod_info

__all__ = ["LIVE_PHASES", "PodTracker", "claim_time"]

LIVE_PHASES = frozenset({"Pending", "Running", "Unknown"})
"""Phases in which a pod holds its address; Succeeded and Failed pods keep listing it after giving it back."""

# `PodHasNetwork` is the condition's name before Kubernetes 1.28 (alpha), `PodReadyToStartContainers` after.
_NETWORK_CONDITIONS = ("PodReadyToStartContainers", "PodHasNetwork")


@dataclass(frozen=True, slots=True)
class _Known:
    pod: PodInfo
    addresses: frozenset[str]
    """The addresses the pod listed while live when last seen: the ones it claimed (some may be taken over)."""
    seen: float
    """When the watch last saw the pod: an address it did not list then came after."""


class PodTracker:
    """This node's pods as the watch last saw them, applied to a `PodDirectory`. One thread calls it."""

    def __init__(self, directory: PodDirectory, grace: float = 300.0) -> None:
        self.directory = directory
        self.grace = grace
        """Seconds an ended tenure stays resolvable before `prune` forgets it."""
        self._pods: dict[str, _Known] = {}
        self.skipped = 0
        """Objects that were not usable pods (no name, garbled fields)."""

    def applied(self, obj: dict[str, Any], seen: float) -> str | None:
        """An ADDED or MODIFIED pod (or one item of a list), seen at `seen`; returns the pod's identity (uid)."""
        info = _pod(obj)
        if info is None:
            self.skipped += 1
            return None
        key = _identity(info)
        known = self._pods.get(key)
        live = info.phase in LIVE_PHASES and not info.host_network
        now = info.ips if live else frozenset()
        before = known.addresses if known is not None else frozenset()
        if before - now:
            self.directory.release(info, seen, before - now)
        if before & now:
            self.directory.refresh(info, before & now)
        if now - before:
            since = claim_time(obj, seen)
            if known is not None:
                since = max(since, known.seen)
            self.directory.claim(info, since, now - before)
        self._pods[key] = _Known(info, now, seen)
        return key

    def deleted(self, obj: dict[str, Any], seen: float) -> None:
        """A DELETED pod (or one that left this node's selection), seen at `seen`."""
        info = _pod(obj)
        if info is None:
            self.skipped += 1
            return
        known = self._pods.pop(_identity(info), None)
        if known is not None and known.addresses:
            self.directory.release(known.pod, seen, known.addresses)

    def relisted(self, items: Iterable[dict[str, Any]], seen: float) -> None:
        """A full list at `seen`: apply every item; pods no longer listed were deleted while we were away."""
        listed = {self.applied(obj, seen) for obj in items}
        for key in [key for key in self._pods if key not in listed]:
            known = self._pods.pop(key)
            if known.addresses:
                self.directory.release(known.pod, seen, known.addresses)

    def prune(self, now: float) -> None:
        """Forget tenures that ended more than `grace` seconds before `now`."""
        self.directory.prune(now - self.grace)

    def __len__(self) -> int:
        """How many pods of this node the tracker knows (hostNetwork and completed ones included)."""
        return len(self._pods)


def claim_time(obj: dict[str, Any], seen: float) -> float:
    """When the pod got its address: its network-ready condition's time when that is known and not after
    `seen` (second resolution, the node's clock), else `seen`."""
    status = obj.get("status") if isinstance(obj, dict) else None
    for condition in (status or {}).get("conditions") or ():
        if (
            isinstance(condition, dict)
            and condition.get("type") in _NETWORK_CONDITIONS
            and condition.get("status") == "True"
        ):
            at = _timestamp(condition.get("lastTransitionTime"))
            if at is not None:
                return min(at, seen)
    return seen


def _timestamp(text: object) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        at = datetime.fromisoformat(text).timestamp()  # RFC 3339 as the API writes it; 3.11 reads the `Z`
    except ValueError:
        return None
    return at if math.isfinite(at) else None


def _pod(obj: object) -> PodInfo | None:
    try:
        return pod_info(obj)
    except (AttributeError, TypeError, KeyError):  # garbled fields: count it, never stop the watch
        return None


def _identity(pod: PodInfo) -> str:
    # A pod deleted and created again under its name is another pod, with another uid.
    return pod.uid or f"{pod.namespace}/{pod.name}"
