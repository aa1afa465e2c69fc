"""The HTTP API's alert exception routes against a real collector: an exception created over HTTP is written
to the folder (or the Kubernetes API), read back by the collector and applied to the stored events."""

from __future__ import annotations

import httpx
import pytest
import yaml

from tests.collector.eventdata import event
from tests.collector.httpkit import eventually, ingest, with_http
from tests.collector.kubesetup import kubeconfig
from tests.collector.running import db_url  # noqa: F401
from tests.kubeapi import FakeKubeAPI

pytestmark = pytest.mark.timeout(120)


def exception_manifest(name: str, selector: str, **spec) -> dict:
    return {"apiVersion": "dnswatch.dev/v1", "kind": "AlertException", "metadata": {"name": name},
            "spec": {"description": "made over HTTP", "selector": selector, **spec}}


@pytest.fixture
def api(db_url, tmp_path):  # noqa: F811
    ingest(db_url, [event(1, namespace="ci"), event(2, namespace="shop")])
    folder = tmp_path / "feeds"
    folder.mkdir()
    running, port = with_http(db_url, folder)
    with running, httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=30) as client:
        yield client, folder


def test_an_exception_written_over_http_is_held_applied_updated_and_deleted(api):
    client, folder = api
    created = client.post("/exceptions", json=exception_manifest("ci-scanner", "source_namespace = ci"))
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "ci-scanner" and created.json()["status"]["active"] is True
    assert yaml.safe_load((folder / "alertexception-ci-scanner.yaml").read_text())["spec"]["selector"] == (
        "source_namespace = ci")
    listed = eventually(lambda: (found := client.get("/exceptions").json()["exceptions"])
                        and found[0]["exceptedEvents"] == 1 and found, "the stored event marked")
    assert [found["name"] for found in listed] == ["ci-scanner"]
    assert [item["id"] for item in client.get("/events").json()["events"]] == [event(2)["id"]]
    shown = client.get("/events", params={"include_excepted": True}).json()["events"]
    assert {item["id"]: item["excepted_by"] for item in shown} == {event(1)["id"]: "ci-scanner", event(2)["id"]: ""}

    updated = client.put("/exceptions/ci-scanner", json=exception_manifest("ci-scanner", "source_namespace = shop"))
    assert updated.status_code == 200 and updated.json()["spec"]["selector"] == "source_namespace = shop"
    eventually(lambda: [item["id"] for item in client.get("/events").json()["events"]] == [event(1)["id"]],
               "the events marked again")
    assert client.post("/exceptions", json=exception_manifest("ci-scanner", "host = x")).status_code == 409

    assert client.delete("/exceptions/ci-scanner").status_code == 204
    assert client.get("/exceptions/ci-scanner").status_code == 404
    assert not (folder / "alertexception-ci-scanner.yaml").exists()
    assert client.delete("/exceptions/ci-scanner").status_code == 404


@pytest.mark.parametrize(("manifest", "field"), [
    (exception_manifest("bad", "source_namespace = = ci"), "body.spec.selector"),
    (exception_manifest("Bad_Name", "host = x"), "body.metadata.name"),
    ({**exception_manifest("bad", "host = x"), "kind": "GlobalThreatFeed"}, "body.kind"),
    (exception_manifest("bad", "host = x", period="often"), "body.spec.period"),
])
def test_invalid_exceptions_are_422_and_write_nothing(api, manifest, field):
    client, folder = api
    response = client.post("/exceptions", json=manifest)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid" and response.json()["error"]["message"]
    assert response.json()["error"].get("field") == field
    assert list(folder.iterdir()) == []


def test_kubernetes_mode_writes_alertexceptions_through_the_api(tmp_path, db_url):  # noqa: F811
    with FakeKubeAPI(bookmark_interval=0.2) as server:
        config = kubeconfig(tmp_path / "kubeconfig", server.url)
        running, port = with_http(db_url, None, "--kubeconfig", str(config))
        with running, httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=30) as client:
            created = client.post("/exceptions", json={**exception_manifest("quiet", "host = node-9"),
                                                       "apiVersion": "projectcalico.org/v3"})
            assert created.status_code == 201, created.text
            [stored] = server.objects("alertexceptions")
            assert stored["apiVersion"] == "dnswatch.dev/v1" and stored["spec"]["selector"] == "host = node-9"
            assert client.delete("/exceptions/quiet").status_code == 204
            assert server.objects("alertexceptions") == []
