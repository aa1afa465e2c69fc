import math

import pytest

from agent.core.attribution import (
    BadSelector,
    LabelSelector,
    PodDirectory,
    Workload,
    address_text,
    is_dns_server,
    pod_info,
)
from dnswatch.errors import BadInput
from tests.agent.make_sightings import COREDNS_POD, WEB, ip, pod, pod_list

T = 1795824696.0


def directory(*pods: dict) -> PodDirectory:
    return PodDirectory.from_pod_list(pod_list(*pods))


def test_a_pod_list_gives_every_field_of_a_pod():
    info = directory(WEB).lookup("10.244.1.10", T)
    assert info is not None
    assert (info.namespace, info.name, info.node, info.phase) == ("shop", "web-7d4b9c-x2x1", "node-1", "Running")
    assert dict(info.labels) == {"app": "web", "pod-template-hash": "7d4b9c"}
    assert info.workload == Workload("Deployment", "web")
    assert info.name_aggr == "web-7d4b9c-*"
    assert info.ips == frozenset({"10.244.1.10"})
    assert info.host_network is False
    assert info.uid == "uid-shop-web-7d4b9c-x2x1"


def test_lookup_takes_raw_bytes_and_text_for_ipv4_and_ipv6():
    pods = directory(pod("dual", ip=["10.244.1.20", "fd00:10:244::14"]))
    for addr in ("10.244.1.20", ip("10.244.1.20"), "fd00:10:244::14", ip("fd00:10:244::14")):
        assert pods.lookup(addr, T).name == "dual"
    assert pods.lookup("10.244.1.21", T) is None
    assert pods.lookup("not an address", T) is None


def test_a_podlist_from_the_api_has_items_without_kind():
    item = pod("bare", ip="10.244.1.30")
    del item["kind"], item["apiVersion"]
    assert PodDirectory.from_pod_list({"kind": "PodList", "items": [item]}).lookup("10.244.1.30", T).name == "bare"


def test_podip_alone_is_enough():
    item = pod("old-style", ip="10.244.1.31")
    del item["status"]["podIPs"]
    assert directory(item).lookup("10.244.1.31", T).name == "old-style"


@pytest.mark.parametrize("completed", ["Succeeded", "Failed"])
def test_a_running_pod_wins_over_a_completed_one_on_the_same_address(completed):
    done = pod("backup-28345678-abcde", ip="10.244.1.40", phase=completed)
    running = pod("web-7d4b9c-new", ip="10.244.1.40")
    for order in ((done, running), (running, done)):
        assert directory(*order).lookup("10.244.1.40", T).name == "web-7d4b9c-new"


def test_a_completed_pod_alone_still_answers_for_its_address():
    assert directory(pod("job-x", ip="10.244.1.41", phase="Succeeded")).lookup("10.244.1.41", T).name == "job-x"


def test_host_network_pods_never_claim_the_node_address():
    node_ip = "192.168.1.10"
    pods = directory(pod("kube-proxy-abcde", "kube-system", node_ip, host_network=True,
                         owner=("DaemonSet", "kube-proxy"), generate_name="kube-proxy-"),
                     pod("calico-node-xyz", "calico-system", node_ip, host_network=True))
    assert pods.lookup(node_ip, T) is None
    assert len(pods) == 0


def test_pods_without_an_address_and_items_that_are_no_pods_are_skipped():
    garbled = pod("garbled", ip="10.244.1.60")
    garbled["metadata"]["labels"] = ["not", "a", "map"]
    pods = directory(pod("pending"), {"kind": "Service", "metadata": {"name": "x"}}, {"metadata": {}}, "junk", garbled)
    assert len(pods) == 0
    assert pods.skipped == 4


@pytest.mark.parametrize("bad", [[], {"kind": "List"}, {"items": "nope"}, None])
def test_something_that_is_no_pod_list_is_bad_input(bad):
    with pytest.raises(BadInput, match="pod list"):
        PodDirectory.from_pod_list(bad)


# --- owners ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "item, workload, name_aggr",
    [
        (WEB, ("Deployment", "web"), "web-7d4b9c-*"),
        # generateName missing from a hand-written list: the owner's name stands in for it
        (pod("web-7d4b9c-x2x1", labels={"pod-template-hash": "7d4b9c"}, owner=("ReplicaSet", "web-7d4b9c")),
         ("Deployment", "web"), "web-7d4b9c-*"),
        # a ReplicaSet of its own: its name does not end in the pod-template-hash
        (pod("frontend-b2zdv", owner=("ReplicaSet", "frontend"), generate_name="frontend-"),
         ("ReplicaSet", "frontend"), "frontend-*"),
        (pod("db-0", owner=("StatefulSet", "db"), generate_name="db-"), ("StatefulSet", "db"), "db-*"),
        (pod("db-1", owner=("StatefulSet", "db")), ("StatefulSet", "db"), "db-*"),
        (pod("fluentd-x7k2p", owner=("DaemonSet", "fluentd"), generate_name="fluentd-"),
         ("DaemonSet", "fluentd"), "fluentd-*"),
        (pod("migrate-2-hz8kq", owner=("Job", "migrate-2"), generate_name="migrate-2-"),
         ("Job", "migrate-2"), "migrate-2-*"),
        (pod("backup-28345678-7xq2c", owner=("Job", "backup-28345678"), generate_name="backup-28345678-"),
         ("CronJob", "backup"), "backup-28345678-*"),
        (pod("debug"), ("Pod", "debug"), "debug"),
        # a static pod's mirror is owned by its Node: it is its own workload
        (pod("kube-apiserver-node-1", "kube-system", owner=("Node", "node-1")),
         ("Pod", "kube-apiserver-node-1"), "kube-apiserver-node-1"),
        (pod("rollout-abc-xyz", owner=("Rollout", "rollout-abc"), generate_name="rollout-abc-"),
         ("Rollout", "rollout-abc"), "rollout-abc-*"),
    ],
)
def test_owner_resolution(item, workload, name_aggr):
    info = pod_info(item)
    assert info.workload == Workload(*workload)
    assert info.name_aggr == name_aggr


def test_the_controller_reference_wins_over_other_owners():
    item = pod("db-0", owner=("StatefulSet", "db"))
    item["metadata"]["ownerReferences"].insert(0, {"kind": "ConfigMap", "name": "x", "controller": False})
    assert pod_info(item).workload == Workload("StatefulSet", "db")


# --- address history (what the API pod watch drives) -----------------------------------------


def test_a_reused_address_belongs_to_the_pod_that_held_it_at_the_time():
    old, new = pod_info(pod("old", ip="10.244.1.50")), pod_info(pod("new", ip="10.244.1.50"))
    pods = PodDirectory()
    pods.add(old, since=100.0)
    pods.end(old, at=200.0)
    pods.add(new, since=210.0)
    assert pods.lookup("10.244.1.50", 99.0) is None
    assert pods.lookup("10.244.1.50", 150.0).name == "old"
    assert pods.lookup("10.244.1.50", 205.0) is None
    assert pods.lookup("10.244.1.50", 300.0).name == "new"
    assert [(t.start, t.end, t.pod.name) for t in pods.history("10.244.1.50")] == [
        (100.0, 200.0, "old"), (210.0, math.inf, "new")]


def test_adding_a_pod_again_updates_it_in_place():
    pods = PodDirectory()
    pods.add(pod_info(pod("web", ip="10.244.1.51", labels={"v": "1"})), since=100.0)
    pods.add(pod_info(pod("web", ip="10.244.1.51", labels={"v": "2"})), since=150.0)
    (tenure,) = pods.history("10.244.1.51")
    assert (tenure.start, dict(tenure.pod.labels)) == (100.0, {"v": "2"})


def test_prune_forgets_tenures_that_ended_long_ago():
    gone, live = pod_info(pod("gone", ip="10.244.1.52")), pod_info(pod("live", ip="10.244.1.53"))
    pods = PodDirectory()
    pods.add(gone, since=0.0)
    pods.add(live, since=0.0)
    pods.end(gone, at=10.0)
    pods.prune(before=10.0)
    assert pods.lookup("10.244.1.52", 5.0).name == "gone"
    pods.prune(before=11.0)
    assert pods.history("10.244.1.52") == ()
    assert pods.lookup("10.244.1.53", 5.0).name == "live"


def test_address_text():
    assert address_text(ip("10.244.1.10")) == "10.244.1.10"
    assert address_text(ip("fd00::a")) == "fd00::a"
    assert address_text(b"\x01\x02") == "0102"


# --- label selectors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "selector, labels, expected",
    [
        ("k8s-app=kube-dns", {"k8s-app": "kube-dns"}, True),
        ("k8s-app==kube-dns", {"k8s-app": "kube-dns"}, True),
        ("k8s-app=kube-dns", {"k8s-app": "web"}, False),
        ("k8s-app=kube-dns", {}, False),
        ("k8s-app=kube-dns,tier=control", {"k8s-app": "kube-dns", "tier": "control"}, True),
        ("k8s-app=kube-dns, tier=control", {"k8s-app": "kube-dns"}, False),
        ("tier!=web", {"tier": "dns"}, True),
        ("tier!=web", {}, True),
        ("tier!=web", {"tier": "web"}, False),
        ("k8s-app in (kube-dns, coredns)", {"k8s-app": "coredns"}, True),
        ("k8s-app in (kube-dns,coredns)", {"k8s-app": "web"}, False),
        ("k8s-app notin (kube-dns)", {"k8s-app": "web"}, True),
        ("k8s-app notin (kube-dns)", {"k8s-app": "kube-dns"}, False),
        ("app.kubernetes.io/name", {"app.kubernetes.io/name": "x"}, True),
        ("app.kubernetes.io/name", {}, False),
        ("!canary", {}, True),
        ("!canary", {"canary": "1"}, False),
        ("k8s-app in (kube-dns,node-local-dns),!canary", {"k8s-app": "node-local-dns"}, True),
        ("", {"k8s-app": "kube-dns"}, False),  # an empty selector suppresses no one
    ],
)
def test_label_selector(selector, labels, expected):
    assert LabelSelector.parse(selector).matches(labels) is expected


@pytest.mark.parametrize("bad", ["k8s-app=kube dns", "=x", "a in x", "a in (x y)", "a=b=c", "a>1"])
def test_a_bad_selector_is_refused_with_its_text(bad):
    with pytest.raises(BadSelector, match="label selector"):
        LabelSelector.parse(bad)


def test_is_dns_server_takes_a_selector_or_its_text():
    coredns, web = pod_info(COREDNS_POD), pod_info(WEB)
    assert is_dns_server(coredns, "k8s-app=kube-dns")
    assert is_dns_server(coredns, LabelSelector.parse("k8s-app in (kube-dns)"))
    assert not is_dns_server(web, "k8s-app=kube-dns")
