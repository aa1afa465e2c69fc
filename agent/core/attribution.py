"""Attribution: which pod held a client address at a packet's time (docs/detection.md).

The directory is an address history: for every address, the tenures (from, to, pod) of the pods that held
it. A static pod list (`kubectl get pods -A -o json`) has no times, so every tenure there is open-ended and
ties are broken by phase: a Running pod wins over a Succeeded or Failed one that still lists the address
(completed pods keep `status.podIP` after the address went back to the pool). A pod watch opens
tenures with `claim(pod, since=ts)` (which also cuts the previous holder's tenure: an address has one holder at
a time), closes them with `release(pod, at=ts)`, updates a pod's details with `refresh(pod)` and forgets old
tenures with `prune` (agent/core/podevents.py decides which of these a watch event means).

Threads: the pod watch writes from its own thread while the capture thread looks up. Each address's history is
an immutable tuple that a writer replaces with one dict store, so a reader without a lock sees, per address,
either the history before a change or the one after, never half of it; lookups stay as fast as without threads
(no lock on the hot path). Writers are not serialized here: one thread writes (the watcher), as documented
in agent/shell/podwatch.py.

hostNetwork pods never claim an address: they report the node's address, which many of them share (kube-proxy,
the CNI agent, this agent) and which the kubelet and host processes use too. Choosing one of them would name
the wrong client more often than not, so a client at a node address is reported as no pod, by address — as
Calico and Inspektor Gadget report host-network traffic as the host's.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from dnswatch.errors import BadInput


@dataclass(frozen=True, slots=True)
class Workload:
    """The controller a pod belongs to, resolved as far as the pod itself tells (no API lookups)."""

    kind: str
    """Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, CronJob, ... or `Pod` for a bare pod."""
    name: str


@dataclass(frozen=True, slots=True)
class PodInfo:
    namespace: str
    name: str
    labels: tuple[tuple[str, str], ...]
    """Sorted (key, value) pairs: immutable, hashable and picklable; `dict(pod.labels)` for a mapping."""
    node: str
    workload: Workload
    name_aggr: str
    """The name with the per-replica part replaced by `*`, as Calico's `source_name_aggr`."""
    host_network: bool
    phase: str
    """Pending, Running, Succeeded, Failed or Unknown."""
    ips: frozenset[str]
    """Every address in status.podIPs / status.podIP, as text."""
    uid: str = ""


@dataclass(frozen=True, slots=True)
class Tenure:
    """One pod holding one address from `start` until `end` (capture time; ±inf when unknown)."""

    start: float
    end: float
    pod: PodInfo


# A completed pod's address may already belong to a new pod, so it only answers when nothing live does.
_PHASE_RANK = {"Running": 3, "Pending": 2, "Unknown": 1}

# The CronJob controller names its Jobs `<cronjob>-<scheduled time in minutes since the epoch>`, which has had
# 8 digits since 1989; asking for 8 keeps a user's `migrate-2` a Job.
_CRONJOB_JOB = re.compile(r"(.+)-(\d{8,})")


class PodDirectory:
    """Address → history of the pods that held it."""

    def __init__(self) -> None:
        # Histories are tuples, replaced whole and never changed in place: see "Threads" above.
        self._tenures: dict[bytes, tuple[Tenure, ...]] = {}
        self.skipped = 0
        """Pod list items that were not usable pods (not a Pod, no name, garbled)."""

    @classmethod
    def from_pod_list(cls, obj: object) -> PodDirectory:
        """A directory from the parsed output of `kubectl get pods -A -o json` (a v1 List or PodList)."""
        if not isinstance(obj, dict) or not isinstance(obj.get("items"), list):
            raise BadInput("pod list: expected a v1 List or PodList object with `items` (kubectl get pods -A -o json)")
        directory = cls()
        for item in obj["items"]:
            try:
                pod = pod_info(item)
            except (AttributeError, TypeError, KeyError):  # a hand-edited list may hold anything: skip the item
                pod = None
            if pod is None:
                directory.skipped += 1
            else:
                directory.add(pod)
        return directory

    def add(self, pod: PodInfo, since: float = -math.inf) -> None:
        """Record that `pod` holds its addresses from `since`; a pod already holding one is updated in place."""
        if pod.host_network:
            return
        for key in _keys(pod.ips):
            history = self._tenures.get(key, ())
            for i, tenure in enumerate(history):
                if tenure.end == math.inf and _same_pod(tenure.pod, pod):
                    self._tenures[key] = (*history[:i], replace(tenure, pod=pod), *history[i + 1 :])
                    break
            else:
                self._tenures[key] = (*history, Tenure(since, math.inf, pod))

    def end(self, pod: PodInfo, at: float) -> None:
        """Record that `pod` gave up its addresses at `at` (deleted, or completed)."""
        self.release(pod, at)

    def claim(self, pod: PodInfo, since: float, addresses: Iterable[str | bytes] | None = None) -> None:
        """A live pod took `addresses` (default: all of its own) at `since`.

        Unlike `add`, this knows the time: the address has had one holder at a time, so every other pod's tenure
        of it that reaches past `since` ends there (its deletion may be seen only after the new pod got the
        address, or never, when the watch was away). A pod already holding the address is refreshed instead.
        """
        if pod.host_network:
            return
        for key in _keys(pod.ips if addresses is None else addresses):
            history, kept = self._tenures.get(key, ()), []
            for tenure in history:
                if _same_pod(tenure.pod, pod) and tenure.end == math.inf:
                    kept = None  # already ours: nothing to cut, only the details may have changed
                    break
                kept.append(replace(tenure, end=max(since, tenure.start)) if tenure.end > since else tenure)
            if kept is None:
                self.refresh(pod, (key,))
            else:
                self._tenures[key] = (*kept, Tenure(since, math.inf, pod))

    def release(self, pod: PodInfo, at: float, addresses: Iterable[str | bytes] | None = None) -> None:
        """`pod` gave up `addresses` (default: all of its own) at `at`: deleted, completed, or moved to others."""
        for key in _keys(pod.ips if addresses is None else addresses):
            history = self._tenures.get(key)
            if history and any(t.end == math.inf and _same_pod(t.pod, pod) for t in history):
                self._tenures[key] = tuple(
                    replace(t, end=max(at, t.start)) if t.end == math.inf and _same_pod(t.pod, pod) else t
                    for t in history
                )

    def refresh(self, pod: PodInfo, addresses: Iterable[str | bytes] | None = None) -> None:
        """New details (labels, phase) for `pod` wherever it still holds an address; opens no tenure."""
        for key in _keys(pod.ips if addresses is None else addresses):
            history = self._tenures.get(key)
            if history and any(t.end == math.inf and _same_pod(t.pod, pod) for t in history):
                self._tenures[key] = tuple(
                    replace(t, pod=pod) if t.end == math.inf and _same_pod(t.pod, pod) else t for t in history
                )

    def prune(self, before: float) -> None:
        """Forget tenures that ended before `before` (a watch keeps deleted pods only for a grace period)."""
        for key, history in list(self._tenures.items()):
            kept = tuple(t for t in history if t.end >= before)
            if not kept:
                del self._tenures[key]
            elif len(kept) != len(history):
                self._tenures[key] = kept

    def history(self, addr: bytes | str) -> tuple[Tenure, ...]:
        return self._tenures.get(address_key(addr) or b"", ())

    def lookup(self, addr: bytes | str, ts: float) -> PodInfo | None:
        """The pod that held `addr` at `ts`, or None when no pod did (a node, a host, the outside world)."""
        history = self._tenures.get(addr if type(addr) is bytes else address_key(addr) or b"")
        if not history:
            return None
        if len(history) == 1:  # the common case, once per transaction: one pod ever held the address
            tenure = history[0]
            return tenure.pod if tenure.start <= ts < tenure.end else None
        best = None
        best_rank = (-1, -math.inf)
        for tenure in history:
            if tenure.start <= ts < tenure.end:
                # A live pod beats a completed one; among equals the most recent claim (or the first listed) wins.
                rank = (_PHASE_RANK.get(tenure.pod.phase, 0), tenure.start)
                if rank > best_rank:
                    best, best_rank = tenure.pod, rank
        return best

    def __len__(self) -> int:
        return len(self._tenures)


def _keys(addresses: Iterable[str | bytes]) -> list[bytes]:
    return [key for key in map(address_key, addresses) if key is not None]


def _same_pod(a: PodInfo, b: PodInfo) -> bool:
    return (a.uid, a.namespace, a.name) == (b.uid, b.namespace, b.name)


def address_text(addr: bytes) -> str:
    """`10.244.1.10` / `fd00::a` for a raw 4/16-byte address (anything else as hex, never an exception)."""
    try:
        return str(ipaddress.ip_address(addr))
    except ValueError:
        return addr.hex()


def address_key(addr: bytes | str) -> bytes | None:
    """Raw 4/16-byte form, as packets carry addresses; None for text that is no address."""
    if isinstance(addr, bytes):
        return addr
    try:
        return ipaddress.ip_address(addr).packed
    except ValueError:
        return None


def pod_info(item: object) -> PodInfo | None:
    """A PodInfo from one pod object of the Kubernetes API, or None when it is not a usable pod."""
    if not isinstance(item, dict) or item.get("kind", "Pod") != "Pod":
        return None
    meta = item.get("metadata") or {}
    spec = item.get("spec") or {}
    status = item.get("status") or {}
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        return None
    labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    ips = {entry.get("ip") for entry in status.get("podIPs") or () if isinstance(entry, dict)}
    ips.add(status.get("podIP"))
    workload, name_aggr = resolve_owner(meta, labels)
    return PodInfo(
        namespace=meta.get("namespace") or "default",
        name=name,
        labels=tuple(sorted(labels.items())),
        node=spec.get("nodeName") or "",
        workload=workload,
        name_aggr=name_aggr,
        host_network=bool(spec.get("hostNetwork")),
        phase=status.get("phase") or "Unknown",
        ips=frozenset(ip for ip in ips if isinstance(ip, str) and ip),
        uid=meta.get("uid") or "",
    )


def resolve_owner(meta: Mapping, labels: Mapping[str, str]) -> tuple[Workload, str]:
    """The pod's workload and Calico's aggregated name, from ownerReferences and labels alone.

    Calico's aggregated name is the pod's generateName followed by `*` (`web-7d4b9c-*` for a ReplicaSet's pod,
    `db-*` for a StatefulSet's); a pod without one stands for itself. When a pod list omits generateName, the
    owner's name followed by `-*` is what the controller would have set.
    """
    name = meta["name"]
    refs = [ref for ref in meta.get("ownerReferences") or () if isinstance(ref, dict)]
    owner = next((ref for ref in refs if ref.get("controller")), refs[0] if refs else None)
    if owner is None or owner.get("kind") == "Node":  # a static (mirror) pod is its own workload
        workload = Workload("Pod", name)
    else:
        workload = _workload_of(str(owner.get("kind") or ""), str(owner.get("name") or ""), labels)
    generate_name = meta.get("generateName")
    if generate_name:
        return workload, generate_name + "*"
    if workload.kind == "Pod":
        return workload, name
    return workload, f"{owner['name']}-*"


def _workload_of(kind: str, owner: str, labels: Mapping[str, str]) -> Workload:
    if kind == "ReplicaSet":
        # A Deployment names its ReplicaSets `<deployment>-<pod-template-hash>`; a bare ReplicaSet has no such
        # suffix, and we cannot ask the API here, so the label is the proof.
        template_hash = labels.get("pod-template-hash")
        if template_hash and owner.endswith("-" + template_hash):
            return Workload("Deployment", owner[: -len(template_hash) - 1])
    elif kind == "Job":
        cron = _CRONJOB_JOB.fullmatch(owner)
        if cron:
            return Workload("CronJob", cron.group(1))
    return Workload(kind, owner)


# --- label selectors (`--dns-server-selector`) ----------------------------------------------------------

_KEY = r"[A-Za-z0-9]([A-Za-z0-9._/-]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?)?"
_EQUALITY = re.compile(rf"\s*(?P<key>{_KEY})\s*(?P<op>==|=|!=)\s*(?P<value>{_VALUE})\s*")
_SET = re.compile(rf"\s*(?P<key>{_KEY})\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)\s*")
_EXISTS = re.compile(rf"\s*(?P<op>!?)\s*(?P<key>{_KEY})\s*")


class BadSelector(BadInput, ValueError):
    """A label selector that does not parse; the message quotes the offending requirement."""


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A Kubernetes label selector: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, joined by commas.

    An empty selector selects nothing (unlike the API's, which selects everything): for
    `--dns-server-selector ''` that means "suppress no one", not "every pod is a DNS server".
    """

    requirements: tuple[tuple[str, str, frozenset[str]], ...]
    """(key, operator, values) with operator one of `=`, `!=`, `in`, `notin`, `exists`, `!exists`."""

    @classmethod
    def parse(cls, text: str) -> LabelSelector:
        return cls(tuple(_requirement(part) for part in _split_top_level(text) if part.strip()))

    def matches(self, labels: Mapping[str, str] | Iterable[tuple[str, str]]) -> bool:
        if not self.requirements:
            return False
        labels = labels if isinstance(labels, Mapping) else dict(labels)
        return all(_holds(labels, key, op, values) for key, op, values in self.requirements)


def is_dns_server(pod: PodInfo, selector: LabelSelector | str) -> bool:
    """Does `pod` match `--dns-server-selector` (its forwarded queries are the clients', not its own)?"""
    if isinstance(selector, str):
        selector = LabelSelector.parse(selector)
    return selector.matches(pod.labels)


def _split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _requirement(part: str) -> tuple[str, str, frozenset[str]]:
    if m := _SET.fullmatch(part):
        values = [v.strip() for v in m["values"].split(",")]
        if not all(re.fullmatch(_VALUE, v) for v in values):
            raise BadSelector(f"label selector: bad value in {part.strip()!r}")
        return m["key"], m["op"], frozenset(values)
    if m := _EQUALITY.fullmatch(part):
        return m["key"], "!=" if m["op"] == "!=" else "=", frozenset([m["value"]])
    if m := _EXISTS.fullmatch(part):
        return m["key"], "!exists" if m["op"] else "exists", frozenset()
    raise BadSelector(f"label selector: cannot parse {part.strip()!r} (try `k8s-app=kube-dns`)")


def _holds(labels: Mapping[str, str], key: str, op: str, values: frozenset[str]) -> bool:
    if op == "exists":
        return key in labels
    if op == "!exists":
        return key not in labels
    if op in ("=", "in"):
        return labels.get(key) in values
    return labels.get(key) not in values  # != and notin also hold when the label is absent, as in Kubernetes
