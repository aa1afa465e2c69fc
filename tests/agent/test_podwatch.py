"""PodWatcher against the fake API server (tests/kubeapi.py) with the real kubernetes client."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest
from kubernetes import client

from agent.core.attribution import PodDirectory, Workload
from agent.core.eventpipeline import EventPipeline
from dnswatch.kubewatch import Backoff
from dnswatch.errors import BadInput
from agent.shell.podwatch import PodWatcher, PodWatchSettings, pod_directory_from_api
from tests.agent.make_sightings import ip, pod, query, response
from tests.kubeapi import FakeKubeAPI

NODE = "node-1"
FAST = PodWatchSettings(watch_timeout_seconds=5, request_timeout_seconds=2, backoff=Backoff(initial=0.01, maximum=0.05))


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def api() -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI(bookmark_interval=0.2) as server:
        yield server


@contextlib.contextmanager
def watching(api: FakeKubeAPI, settings: PodWatchSettings = FAST) -> Iterator[PodWatcher]:
    watcher = PodWatcher(api.api_client(), NODE, PodDirectory(), settings)
    watcher.start()
    try:
        assert watcher.wait_synced(10)
        # The watch is open (the server has taken it): end_watches() and faults now reach this one.
        wait_for(lambda: watcher.counters()["watches"] >= 1)
        yield watcher
    finally:
        watcher.stop()
        assert not watcher._thread.is_alive()


def name_at(watcher: PodWatcher, addr: str, ts: float | None = None) -> str | None:
    info = watcher.directory.lookup(addr, time.time() if ts is None else ts)
    return None if info is None else info.name


def core(api: FakeKubeAPI) -> client.CoreV1Api:
    return client.CoreV1Api(api.api_client())


def create_running(api: FakeKubeAPI, item: dict) -> None:
    """As the cluster does it: the pod is created without an address, then the kubelet writes its status."""
    status = item.pop("status")
    namespace = item["metadata"]["namespace"]
    core(api).create_namespaced_pod(namespace, item)
    core(api).patch_namespaced_pod_status(item["metadata"]["name"], namespace, {"status": status})


def test_the_first_list_holds_this_nodes_pods_and_only_those(api):
    api.put(pod("web-7d4b9c-x2x1", ip="10.244.1.10"))
    api.put(pod("dual", ip=["10.244.1.11", "fd00:10:244::b"]))
    api.put(pod("elsewhere", ip="10.244.2.10", node="node-2"))
    api.put(pod("kube-proxy-abcde", "kube-system", "192.168.1.10", host_network=True))
    with watching(api) as watcher:
        assert name_at(watcher, "10.244.1.10") == "web-7d4b9c-x2x1"
        assert name_at(watcher, "10.244.1.11") == name_at(watcher, "fd00:10:244::b") == "dual"
        assert name_at(watcher, "10.244.2.10") is None  # another node's pod
        assert name_at(watcher, "192.168.1.10") is None  # hostNetwork never claims the node's address
        counters = watcher.counters()
        assert (counters["lists"], counters["relists"], counters["pods"], counters["addresses"]) == (1, 0, 3, 3)
    assert any("fieldSelector=spec.nodeName%3Dnode-1" in path and "watch=true" in path for _, path in api.requests)


def test_pods_added_later_become_resolvable_and_other_nodes_stay_out(api):
    with watching(api) as watcher:
        create_running(api, pod("later", ip="10.244.1.20"))
        create_running(api, pod("not-ours", ip="10.244.1.21", node="node-2"))
        create_running(api, pod("host-net", "kube-system", "192.168.1.10", host_network=True))
        wait_for(lambda: name_at(watcher, "10.244.1.20") == "later")
        wait_for(lambda: watcher.counters()["pods"] == 2)
        assert name_at(watcher, "10.244.1.21") is None
        assert name_at(watcher, "192.168.1.10") is None


def test_a_deleted_pods_address_reused_by_a_new_pod(api):
    addr = "10.244.1.30"
    api.put(pod("old", ip=addr))
    with watching(api) as watcher:
        while_old = time.time()
        core(api).delete_namespaced_pod("old", "shop")
        wait_for(lambda: name_at(watcher, addr) is None)
        between = time.time()
        create_running(api, pod("new", ip=addr))
        wait_for(lambda: name_at(watcher, addr) == "new")
        while_new = time.time()
        assert name_at(watcher, addr, while_old) == "old"  # packets before the deletion: the old pod
        assert name_at(watcher, addr, between) is None
        assert name_at(watcher, addr, while_new) == "new"  # after the new pod got it: the new one


@pytest.mark.parametrize("gone_as_http", [False, True], ids=["error-event", "http-410"])
def test_410_after_a_compaction_lists_again_and_loses_nothing(api, gone_as_http):
    api.gone_as_http = gone_as_http
    api.put(pod("stays", ip="10.244.1.40"))
    api.put(pod("vanishes", ip="10.244.1.41"))
    with watching(api) as watcher:
        before = time.time()
        # Changes the watch never sees as events: the server compacts them away and drops the watch.
        with api.atomically():
            api.remove("pods", "vanishes", "shop")
            api.put(pod("arrives", ip="10.244.1.42"))
            api.put(pod("stays", ip="10.244.1.40", labels={"v": "2"}))
            api.compact()
            api.end_watches()
        wait_for(lambda: watcher.counters()["relists"] == 1)
        assert name_at(watcher, "10.244.1.42") == "arrives"
        assert name_at(watcher, "10.244.1.41") is None
        assert name_at(watcher, "10.244.1.41", before) == "vanishes"  # ended at the relist, not forgotten
        assert dict(watcher.directory.lookup("10.244.1.40", time.time()).labels) == {"v": "2"}
        # ... and the watch goes on from the new list.
        create_running(api, pod("after", ip="10.244.1.43"))
        wait_for(lambda: name_at(watcher, "10.244.1.43") == "after")
        assert watcher.counters()["lists"] == 2


def test_a_dropped_watch_connection_is_resumed_without_a_relist(api):
    with watching(api) as watcher:
        api.drop_watch_after(1)  # the next watch is cut after one event ...
        api.end_watches()  # ... which is the one the watcher opens now
        wait_for(lambda: watcher.counters()["watches"] >= 2)
        create_running(api, pod("first", ip="10.244.1.50"))
        create_running(api, pod("second", ip="10.244.1.51"))
        wait_for(lambda: name_at(watcher, "10.244.1.51") == "second")
        assert name_at(watcher, "10.244.1.50") == "first"
        counters = watcher.counters()
        assert counters["errors"] >= 1 and counters["lists"] == 1 and counters["watches"] >= 3


def test_server_errors_are_retried_with_backoff(api):
    api.put(pod("web", ip="10.244.1.60"))
    api.fail_next(2, 500)
    with watching(api) as watcher:
        assert name_at(watcher, "10.244.1.60") == "web"
        assert watcher.counters()["errors"] == 2
        assert watcher.last_error == "HTTP 500 Internal Server Error"
        api.fail_next(1, 503)  # the next watch request fails too
        api.end_watches()
        # (An end this quick with nothing in it counts as a failure too: a proxy that ends every watch at
        # once must not make the agent hammer the API server.)
        wait_for(lambda: watcher.counters()["errors"] >= 3 and api.pending_faults == 0)
        create_running(api, pod("more", ip="10.244.1.61"))
        wait_for(lambda: name_at(watcher, "10.244.1.61") == "more")
        assert watcher.counters()["lists"] == 1


def test_workloads_are_resolved_from_owners(api):
    api.put(pod("web-7d4b9c-x2x1", ip="10.244.1.70", labels={"app": "web", "pod-template-hash": "7d4b9c"},
                owner=("ReplicaSet", "web-7d4b9c"), generate_name="web-7d4b9c-"))  # fmt: skip
    api.put(pod("db-0", ip="10.244.1.71", owner=("StatefulSet", "db"), generate_name="db-"))
    api.put(pod("backup-28345678-7xq2c", ip="10.244.1.72", owner=("Job", "backup-28345678")))
    with watching(api) as watcher:
        lookup = watcher.directory.lookup
        now = time.time()
        assert (lookup("10.244.1.70", now).workload, lookup("10.244.1.70", now).name_aggr) == (
            Workload("Deployment", "web"), "web-7d4b9c-*")  # fmt: skip
        assert lookup("10.244.1.71", now).workload == Workload("StatefulSet", "db")
        assert lookup("10.244.1.72", now).workload == Workload("CronJob", "backup")


def test_events_name_the_pod_the_watch_found(api):
    api.put(pod("web-7d4b9c-x2x1", ip="10.244.1.10", labels={"app": "web", "pod-template-hash": "7d4b9c"},
                owner=("ReplicaSet", "web-7d4b9c"), generate_name="web-7d4b9c-"))  # fmt: skip
    with watching(api) as watcher:
        pipeline = EventPipeline(NODE, watcher.directory)
        q = query("evil.example", ts=time.time(), client=ip("10.244.1.10"))
        (event,) = pipeline.observe(q) + pipeline.observe(response(q))
        assert (event["source_namespace"], event["source_name"]) == ("shop", "web-7d4b9c-x2x1")
        assert event["source_workload"] == {"kind": "Deployment", "name": "web"}


def test_stop_ends_a_quiet_watch_at_once(api):
    quiet = PodWatchSettings(watch_timeout_seconds=120, request_timeout_seconds=2)
    with watching(api, quiet) as watcher:
        api.bookmark_interval = 60.0
        api.end_watches()
        wait_for(lambda: watcher.counters()["watches"] >= 2)
    # watching() asserted the thread ended within stop()'s join: the open watch was cut, not waited out.


def test_a_forbidden_list_is_retried_and_says_what_rbac_is_missing(api):
    api.fail_next(100, 403)
    watcher = PodWatcher(api.api_client(), NODE, PodDirectory(), FAST).start()
    try:
        assert not watcher.wait_synced(0.3)
        assert "needs get, list and watch on pods" in watcher.last_error
        api.clear_faults()  # the ClusterRole was fixed
        assert watcher.wait_synced(10)
    finally:
        watcher.stop()


def test_pod_directory_from_a_kubeconfig(api, tmp_path):
    api.put(pod("web", ip="10.244.1.80"))
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: fake\n"
        f"clusters: [{{name: fake, cluster: {{server: '{api.url}'}}}}]\n"
        "users: [{name: me, user: {}}]\n"
        "contexts: [{name: fake, context: {cluster: fake, user: me}}]\n"
    )
    directory, watcher = pod_directory_from_api(kubeconfig, NODE, FAST)
    watcher.start()
    try:
        assert watcher.wait_synced(10)
        assert directory.lookup("10.244.1.80", time.time()).name == "web"
    finally:
        watcher.stop()


def test_pod_directory_from_api_says_what_is_missing_in_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)
    with pytest.raises(BadInput, match="--node"):
        pod_directory_from_api(None, "")
    with pytest.raises(BadInput, match="no such file"):
        pod_directory_from_api(tmp_path / "nope", NODE)
    with pytest.raises(BadInput, match="in-cluster configuration.*--kubeconfig or --pods"):
        pod_directory_from_api(None, NODE)
    garbled = tmp_path / "garbled"
    garbled.write_text("apiVersion: v1\nkind: Config\n")
    with pytest.raises(BadInput, match=f"--kubeconfig {garbled}"):
        pod_directory_from_api(garbled, NODE)
