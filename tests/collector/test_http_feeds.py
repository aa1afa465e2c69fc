"""The HTTP API's feed routes against a real collector: reads as `dnswatch feeds get` shows them, sync now,
the manifest as YAML, and writes that land where the feeds live, in a folder (files written atomically,
picked up by the folder source) or in the Kubernetes API (tests/kubeapi.py), each answered once the
collector holds the change; validation as the CRD's, the field named."""

from __future__ import annotations

import httpx
import pytest
import yaml

from harness.collector import manifest, pulled
from tests.collector.httpkit import eventually, with_http
from tests.collector.kubesetup import kubeconfig
from tests.collector.running import db_url, feed_server, feeds_dir  # noqa: F401
from tests.kubeapi import FakeKubeAPI

pytestmark = pytest.mark.timeout(120)


def feed_manifest(name: str, url: str, **spec) -> dict:
    return {"apiVersion": "dnswatch.dev/v1", "kind": "GlobalThreatFeed", "metadata": {"name": name},
            "spec": {"content": "DomainNameSet", "mode": "Enabled", "pull": {"period": "1h", "http": {"url": url}},
                     **spec}}


@pytest.fixture
def folder_api(db_url, feeds_dir):  # noqa: F811
    running, port = with_http(db_url, feeds_dir)
    with running, httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=30) as client:
        running.wait_for(pulled("c2", "ips"), "c2 and ips pulled")
        yield client, running


def test_list_and_get_show_status_and_rejected_samples(folder_api):
    client, _ = folder_api
    listed = client.get("/feeds").json()
    assert [feed["name"] for feed in listed["feeds"]] == ["c2", "ips"] and listed["refused"] == []
    c2 = client.get("/feeds/c2").json()
    assert c2["entries"] == 2002 and c2["version"] == 1 and c2["content"] == "DomainNameSet"
    assert c2["rejectedLines"] == 1 and c2["rejectedSamples"][0]["text"] == "not a name"
    assert c2["rejectedSamples"][0]["reason"]
    missing = client.get("/feeds/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_sync_now_pulls_and_says_what_happened(folder_api, feed_server):  # noqa: F811
    client, _ = folder_api
    before = len(feed_server.requests)
    synced = client.post("/feeds/c2/sync")
    assert synced.status_code == 200 and synced.json()["outcome"] and synced.json()["feed"]["name"] == "c2"
    assert len(feed_server.requests) > before
    assert client.post("/feeds/nope/sync").status_code == 404


def test_manifest_download_is_the_file_as_yaml(folder_api, feed_server):  # noqa: F811
    client, _ = folder_api
    response = client.get("/feeds/c2/manifest")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/yaml")
    assert yaml.safe_load(response.text) == yaml.safe_load(manifest("c2", feed_server.url("/c2.txt")))


def test_create_update_disable_enable_delete_write_the_folder_and_answer_once_held(folder_api, feed_server,
                                                                                     feeds_dir):  # noqa: F811
    client, running = folder_api
    created = client.post("/feeds", json=feed_manifest("extra", feed_server.url("/c2.txt"),
                                                       description="made over HTTP"))
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "extra" and created.json()["description"] == "made over HTTP"
    written = feeds_dir / "globalthreatfeed-extra.yaml"
    assert yaml.safe_load(written.read_text())["spec"]["description"] == "made over HTTP"
    assert not [path for path in feeds_dir.iterdir() if path.name.startswith(".")]  # no temporary left
    running.wait_for(pulled("extra"), "extra pulled")
    assert client.post("/feeds", json=feed_manifest("extra", feed_server.url("/c2.txt"))).status_code == 409

    updated = client.put("/feeds/extra", json=feed_manifest("extra", feed_server.url("/c2.txt"),
                                                            description="changed"))
    assert updated.status_code == 200 and updated.json()["description"] == "changed"
    disabled = client.post("/feeds/extra/disable")
    assert disabled.status_code == 200 and disabled.json()["mode"] == "Disabled"
    assert yaml.safe_load(written.read_text())["spec"]["mode"] == "Disabled"
    assert client.post("/feeds/extra/sync").status_code == 409  # a Disabled feed is not pulled
    assert client.post("/feeds/extra/enable").json()["mode"] == "Enabled"

    # The feeds the folder held before are edited in their own files.
    assert client.post("/feeds/c2/disable").json()["mode"] == "Disabled"
    assert yaml.safe_load((feeds_dir / "c2.yaml").read_text())["spec"]["mode"] == "Disabled"

    assert client.delete("/feeds/extra").status_code == 204
    assert not written.exists() and "extra" not in running.feeds()
    assert client.delete("/feeds/extra").status_code == 404


def test_a_feed_among_other_documents_is_not_rewritten(folder_api, feed_server, feeds_dir):  # noqa: F811
    client, running = folder_api
    both = (manifest("one", feed_server.url("/c2.txt")) + "---\n" + manifest("two", feed_server.url("/c2.txt")))
    (feeds_dir / "pair.yaml").write_text(both)
    running.wait_for(pulled("one", "two"), "one and two pulled")
    refused = client.post("/feeds/one/disable")
    assert refused.status_code == 409 and "pair.yaml" in refused.json()["error"]["message"]
    assert (feeds_dir / "pair.yaml").read_text() == both


@pytest.mark.parametrize(("change", "field"), [
    ({"kind": "ConfigMap"}, "body.kind"),
    ({"apiVersion": "v1"}, "body.apiVersion"),
    ({"metadata": {"name": "Bad_Name"}}, "body.metadata.name"),
    ({"spec": {"content": "Words", "pull": {"http": {"url": "https://x.example/"}}}}, "body.spec.content"),
    ({"spec": {"pull": {"period": "1m", "http": {"url": "https://x.example/"}}}}, "body.spec.pull.period"),
    ({"spec": {"pull": {"http": {"url": "ftp://x.example/"}}}}, "body.spec.pull.http.url"),
    ({"spec": {"description": "x" * 300, "pull": {"http": {"url": "https://x.example/"}}}}, "body.spec.description"),
    ({"spec": {"mode": "Sometimes", "pull": {"http": {"url": "https://x.example/"}}}}, "body.spec.mode"),
])
def test_invalid_manifests_are_422_naming_the_field_and_write_nothing(folder_api, feeds_dir, change,
                                                                       field):  # noqa: F811
    client, _ = folder_api
    before = sorted(path.name for path in feeds_dir.iterdir())
    response = client.post("/feeds", json={**feed_manifest("bad", "https://x.example/"), **change})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert sorted(path.name for path in feeds_dir.iterdir()) == before


def test_a_manifest_for_another_name_is_refused_on_update(folder_api, feed_server):  # noqa: F811
    client, _ = folder_api
    response = client.put("/feeds/c2", json=feed_manifest("other", feed_server.url("/c2.txt")))
    assert response.status_code == 422 and response.json()["error"]["field"] == "body.metadata.name"


# ---------------------------------------------------------------------------------------------- Kubernetes


@pytest.fixture
def kube_api(tmp_path, db_url):  # noqa: F811
    with FakeKubeAPI(bookmark_interval=0.2) as server:
        config = kubeconfig(tmp_path / "kubeconfig", server.url)
        running, port = with_http(db_url, None, "--kubeconfig", str(config))
        with running, httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=30) as client:
            yield client, running, server


def test_kubernetes_mode_writes_globalthreatfeeds_through_the_api(kube_api, feed_server):  # noqa: F811
    client, running, server = kube_api
    created = client.post("/feeds", json=feed_manifest("c2", feed_server.url("/c2.txt")))
    assert created.status_code == 201, created.text
    [stored] = server.objects("globalthreatfeeds")
    assert stored["metadata"]["name"] == "c2" and stored["spec"]["pull"]["http"]["url"] == feed_server.url("/c2.txt")
    running.wait_for(pulled("c2"), "c2 pulled")

    assert client.post("/feeds/c2/disable").json()["mode"] == "Disabled"
    assert server.objects("globalthreatfeeds")[0]["spec"]["mode"] == "Disabled"
    downloaded = yaml.safe_load(client.get("/feeds/c2/manifest").text)
    assert downloaded["spec"]["mode"] == "Disabled" and "status" not in downloaded
    assert set(downloaded["metadata"]) == {"name"}

    assert client.post("/feeds", json=feed_manifest("c2", feed_server.url("/c2.txt"))).status_code == 409
    assert client.delete("/feeds/c2").status_code == 204
    assert server.objects("globalthreatfeeds") == []
    eventually(lambda: "c2" not in running.feeds(), "c2 gone")
    assert client.delete("/feeds/c2").status_code == 404


def test_kubernetes_api_failures_are_json_errors(kube_api, feed_server):  # noqa: F811
    client, _, server = kube_api
    server.fail_next(5, code=500)
    response = client.post("/feeds", json=feed_manifest("c2", feed_server.url("/c2.txt")))
    assert response.status_code == 503 and "HTTP 500" in response.json()["error"]["message"]
