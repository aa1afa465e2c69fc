"""The fake Kubernetes API server (tests/kubeapi.py), driven by the real `kubernetes` client."""

from __future__ import annotations

import threading
import time

import pytest
import urllib3
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from tests.kubeapi import FakeKubeAPI

GROUP, VERSION, PLURAL = "dnswatch.dev", "v1", "globalthreatfeeds"
MERGE = "application/merge-patch+json"


def feed(name: str, url: str = "https://feeds.example/c2.txt", **spec) -> dict:
    return {"apiVersion": "dnswatch.dev/v1", "kind": "GlobalThreatFeed", "metadata": {"name": name},
            "spec": {"content": "DomainNameSet", "pull": {"http": {"url": url}}, **spec}}  # fmt: skip


def pod(name: str, node: str, labels: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}}  # fmt: skip


@pytest.fixture
def api():
    with FakeKubeAPI(bookmark_interval=0.1) as server:
        yield server


@pytest.fixture
def clients(api):
    with api.api_client() as api_client:
        yield client.CustomObjectsApi(api_client), client.CoreV1Api(api_client)


def watch_events(func, *args, **kwargs) -> list[tuple[str, str]]:
    """(type, name or resourceVersion for bookmarks) of a watch that ends by its timeout."""
    events = []
    for event in watch.Watch().stream(func, *args, **kwargs):
        obj = event["raw_object"]
        label = obj["metadata"]["resourceVersion"] if event["type"] == "BOOKMARK" else obj["metadata"]["name"]
        events.append((event["type"], label))
    return events


def wait_for_a_watch(api: FakeKubeAPI, timeout: float = 10.0) -> None:
    """Until a watch request has reached the server."""
    deadline = time.monotonic() + timeout
    while not any(method == "GET" and "watch=" in path for method, path in list(api.requests)):
        assert time.monotonic() < deadline, f"no watch request within {timeout}s: {api.requests}"
        time.sleep(0.01)


def test_custom_objects_create_get_list_patch_delete(clients):
    custom, _ = clients
    created = custom.create_cluster_custom_object(GROUP, VERSION, PLURAL, feed("c2"))
    assert created["metadata"]["name"] == "c2" and int(created["metadata"]["resourceVersion"]) > 0
    assert custom.get_cluster_custom_object(GROUP, VERSION, PLURAL, "c2")["spec"]["content"] == "DomainNameSet"
    with pytest.raises(ApiException) as error:
        custom.create_cluster_custom_object(GROUP, VERSION, PLURAL, feed("c2"))
    assert error.value.status == 409
    custom.patch_cluster_custom_object(GROUP, VERSION, PLURAL, "c2", {"spec": {"mode": "Disabled"}})
    listed = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)
    assert [item["spec"]["mode"] for item in listed["items"]] == ["Disabled"]
    assert listed["metadata"]["resourceVersion"] == custom.get_cluster_custom_object(
        GROUP, VERSION, PLURAL, "c2")["metadata"]["resourceVersion"]  # fmt: skip
    custom.delete_cluster_custom_object(GROUP, VERSION, PLURAL, "c2")
    with pytest.raises(ApiException) as error:
        custom.get_cluster_custom_object(GROUP, VERSION, PLURAL, "c2")
    assert error.value.status == 404


def test_replace_with_a_stale_resource_version_conflicts(clients):
    custom, _ = clients
    first = custom.create_cluster_custom_object(GROUP, VERSION, PLURAL, feed("c2"))
    custom.patch_cluster_custom_object(GROUP, VERSION, PLURAL, "c2", {"spec": {"description": "x"}})
    with pytest.raises(ApiException) as error:
        custom.replace_cluster_custom_object(GROUP, VERSION, PLURAL, "c2", first)
    assert error.value.status == 409


def test_status_subresource_is_kept_apart_from_spec(clients):
    custom, _ = clients
    created = custom.create_cluster_custom_object(GROUP, VERSION, PLURAL, {**feed("c2"), "status": {"entries": 9}})
    assert "status" not in created  # create ignores status, as with a CRD's status subresource
    custom.patch_cluster_custom_object_status(
        GROUP, VERSION, PLURAL, "c2", {"status": {"entries": 3}, "spec": {"mode": "Disabled"}}
    )
    stored = custom.get_cluster_custom_object(GROUP, VERSION, PLURAL, "c2")
    assert stored["status"] == {"entries": 3} and "mode" not in stored["spec"]
    assert stored["metadata"]["generation"] == 1
    custom.patch_cluster_custom_object(GROUP, VERSION, PLURAL, "c2", {"status": {"entries": 99}, "spec": {"mode": "Disabled"}})
    stored = custom.get_cluster_custom_object(GROUP, VERSION, PLURAL, "c2")
    assert stored["status"] == {"entries": 3} and stored["spec"]["mode"] == "Disabled"
    assert stored["metadata"]["generation"] == 2
    stored["status"] = {"entries": 1000}
    replaced = custom.replace_cluster_custom_object(GROUP, VERSION, PLURAL, "c2", stored)
    assert replaced["status"] == {"entries": 3}
    custom.replace_cluster_custom_object_status(GROUP, VERSION, PLURAL, "c2", {**replaced, "status": {"entries": 4}})
    assert custom.get_cluster_custom_object(GROUP, VERSION, PLURAL, "c2")["status"] == {"entries": 4}


def test_pods_field_and_label_selectors(clients):
    _, core = clients
    core.create_namespaced_pod("default", pod("a", "node-1", {"app": "web", "tier": "front"}))
    core.create_namespaced_pod("default", pod("b", "node-2", {"app": "db"}))
    core.create_namespaced_pod("kube-system", pod("c", "node-1"))

    def names(**kwargs) -> list[str]:
        return sorted(p.metadata.name for p in core.list_pod_for_all_namespaces(**kwargs).items)

    assert names() == ["a", "b", "c"]
    assert names(field_selector="spec.nodeName=node-1") == ["a", "c"]
    assert names(field_selector="spec.nodeName=node-1,metadata.name!=a") == ["c"]
    assert names(field_selector="metadata.name==b") == ["b"]
    assert names(label_selector="app=web") == ["a"]
    assert names(label_selector="app in (web, db),tier!=front") == ["b"]
    assert names(label_selector="!app") == ["c"]
    assert names(label_selector="app notin (web)") == ["b", "c"]
    assert [p.metadata.name for p in core.list_namespaced_pod("kube-system").items] == ["c"]
    patched = core.patch_namespaced_pod("a", "default", {"metadata": {"labels": {"tier": None}}}, _content_type=MERGE)
    assert patched.metadata.labels == {"app": "web"}
    json_patched = core.patch_namespaced_pod("a", "default", [{"op": "add", "path": "/metadata/labels/x", "value": "1"}])
    assert json_patched.metadata.labels == {"app": "web", "x": "1"}


def test_configmaps_and_secrets(clients):
    _, core = clients
    core.create_namespaced_config_map("dnswatch", {"metadata": {"name": "cm"}, "data": {"k": "v"}})
    core.create_namespaced_secret("dnswatch", {"metadata": {"name": "s"}, "data": {"token": "c2VjcmV0"}})
    assert core.read_namespaced_config_map("cm", "dnswatch").data == {"k": "v"}
    assert core.read_namespaced_secret("s", "dnswatch").data == {"token": "c2VjcmV0"}
    with pytest.raises(ApiException) as error:
        core.read_namespaced_secret("s", "other")
    assert error.value.status == 404


def test_watch_from_a_resource_version_streams_changes_and_bookmarks(api, clients):
    custom, _ = clients
    custom.create_cluster_custom_object(GROUP, VERSION, PLURAL, feed("old"))
    start = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)["metadata"]["resourceVersion"]

    def change() -> None:
        wait_for_a_watch(api)  # the changes come while the watch streams
        custom.create_cluster_custom_object(GROUP, VERSION, PLURAL, feed("c2"))
        custom.patch_cluster_custom_object(GROUP, VERSION, PLURAL, "c2", {"spec": {"mode": "Disabled"}})
        custom.delete_cluster_custom_object(GROUP, VERSION, PLURAL, "c2")

    threading.Thread(target=change).start()
    events = watch_events(custom.list_cluster_custom_object, GROUP, VERSION, PLURAL, resource_version=start,
                          timeout_seconds=1, allow_watch_bookmarks=True)  # fmt: skip
    changes = [e for e in events if e[0] != "BOOKMARK"]
    assert changes == [("ADDED", "c2"), ("MODIFIED", "c2"), ("DELETED", "c2")]
    bookmarks = [int(rv) for kind, rv in events if kind == "BOOKMARK"]
    assert bookmarks and bookmarks[-1] == api.resource_version


def test_watch_without_resource_version_starts_with_the_current_state(clients):
    custom, _ = clients
    custom.create_cluster_custom_object(GROUP, VERSION, PLURAL, feed("c2"))
    assert watch_events(custom.list_cluster_custom_object, GROUP, VERSION, PLURAL, timeout_seconds=1) == [
        ("ADDED", "c2")
    ]


def test_watch_with_a_field_selector_sees_objects_leave_and_enter(clients):
    _, core = clients
    core.create_namespaced_pod("default", pod("a", "node-1"))
    start = core.list_pod_for_all_namespaces().metadata.resource_version
    core.create_namespaced_pod("default", pod("b", "node-2"))
    core.patch_namespaced_pod("a", "default", {"metadata": {"labels": {"x": "1"}}}, _content_type=MERGE)
    core.delete_namespaced_pod("a", "default")
    core.create_namespaced_pod("default", pod("a", "node-1"))
    events = watch_events(core.list_pod_for_all_namespaces, field_selector="spec.nodeName=node-1",
                          resource_version=start, timeout_seconds=1)  # fmt: skip
    assert events == [("MODIFIED", "a"), ("DELETED", "a"), ("ADDED", "a")]


def test_compaction_answers_410_gone(api, clients):
    custom, _ = clients
    custom.create_cluster_custom_object(GROUP, VERSION, PLURAL, feed("c2"))
    old = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)["metadata"]["resourceVersion"]
    custom.patch_cluster_custom_object(GROUP, VERSION, PLURAL, "c2", {"spec": {"mode": "Disabled"}})
    api.compact()
    for as_http in (False, True):
        api.gone_as_http = as_http
        with pytest.raises(ApiException) as error:
            watch_events(custom.list_cluster_custom_object, GROUP, VERSION, PLURAL, resource_version=old,
                         timeout_seconds=1)  # fmt: skip
        assert error.value.status == 410
    current = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)["metadata"]["resourceVersion"]
    assert watch_events(custom.list_cluster_custom_object, GROUP, VERSION, PLURAL, resource_version=current,
                        timeout_seconds=1) == []  # fmt: skip


def test_fault_hooks(api, clients):
    custom, _ = clients
    api.fail_next(2, code=503)
    for _ in range(2):
        with pytest.raises(ApiException) as error:
            custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)
        assert error.value.status == 503
    custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)

    api.stall_next(1, seconds=0.3)
    began = time.monotonic()
    custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)
    assert time.monotonic() - began >= 0.3

    custom.create_cluster_custom_object(GROUP, VERSION, PLURAL, feed("a"))
    custom.create_cluster_custom_object(GROUP, VERSION, PLURAL, feed("b"))
    api.drop_watch_after(1)
    received = []
    with pytest.raises((urllib3.exceptions.HTTPError, OSError)):
        for event in watch.Watch().stream(custom.list_cluster_custom_object, GROUP, VERSION, PLURAL,
                                          resource_version="1", timeout_seconds=2):  # fmt: skip
            received.append(event["raw_object"]["metadata"]["name"])
    assert received == ["a"]


def test_stop_ends_open_watches(api, clients):
    custom, _ = clients
    ended = threading.Event()

    def follow() -> None:
        try:
            watch_events(custom.list_cluster_custom_object, GROUP, VERSION, PLURAL, resource_version="1",
                         timeout_seconds=30)  # fmt: skip
        except Exception:  # noqa: BLE001 - an ended stream is all this test wants
            pass
        ended.set()

    threading.Thread(target=follow, daemon=True).start()
    wait_for_a_watch(api)
    api.stop()
    assert ended.wait(3)


def test_pod_status_is_a_subresource_too(clients):
    _, core = clients
    created = core.create_namespaced_pod("default", {**pod("a", "node-1"), "status": {"phase": "Running"}})
    assert created.status is None or created.status.phase is None  # create drops status
    core.patch_namespaced_pod_status("a", "default", {"status": {"phase": "Running", "podIP": "10.0.0.5"}},
                                     _content_type=MERGE)  # fmt: skip
    replaced = core.read_namespaced_pod("a", "default")
    replaced.status.phase = "Failed"
    replaced.metadata.labels = {"app": "web"}
    after = core.replace_namespaced_pod("a", "default", replaced)
    assert after.status.phase == "Running" and after.status.pod_ip == "10.0.0.5"
    assert after.metadata.labels == {"app": "web"}
    assert [p.metadata.name for p in core.list_pod_for_all_namespaces(field_selector="status.phase=Running").items] == ["a"]


def test_watch_with_a_label_selector_and_a_namespace(clients):
    _, core = clients
    start = core.list_namespaced_pod("default").metadata.resource_version
    core.create_namespaced_pod("default", pod("a", "node-1", {"app": "web"}))
    core.create_namespaced_pod("default", pod("b", "node-1", {"app": "db"}))
    core.create_namespaced_pod("other", pod("c", "node-1", {"app": "web"}))
    core.patch_namespaced_pod("b", "default", {"metadata": {"labels": {"app": "web"}}}, _content_type=MERGE)
    events = watch_events(core.list_namespaced_pod, "default", label_selector="app=web", resource_version=start,
                          timeout_seconds=1)  # fmt: skip
    assert events == [("ADDED", "a"), ("ADDED", "b")]
