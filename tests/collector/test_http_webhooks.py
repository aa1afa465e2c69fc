"""The HTTP API's SecurityEventWebhook routes (webhooks.py) on a real uvicorn on 127.0.0.1, over a real
WebhookKeeper and a manifests folder: reads with secrets redacted, a test delivery, and writes that land in
the folder and answer once the keeper holds them (the test playing the folder source: it hands the file it
finds to the keeper), or 202 when it does not; and a real collector in folder mode holding what it wrote."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import yaml
from fastapi import FastAPI

from collector.shell.httpapi.auth import Gate
from collector.shell.httpapi.errors import CatchAll, install_error_handlers
from collector.shell.httpapi.resourcewrites import FolderResources
from collector.shell.httpapi.server import HttpServer, bind_http
from collector.shell.httpapi.webhooks import webhooks_router
from collector.shell.webhookkeeper import WebhookKeeper
from tests.collector.httpkit import with_http

pytestmark = [pytest.mark.timeout(60), pytest.mark.anyio]

SECRET = "xoxb-very-secret"


@pytest.fixture
def anyio_backend():
    return "asyncio"


def webhook(name: str, **spec) -> dict:
    return {"apiVersion": "dnswatch.dev/v1", "kind": "SecurityEventWebhook", "metadata": {"name": name},
            "spec": {"consumer": "Slack", "state": "Enabled", "query": "source_namespace = shop",
                     "config": [{"name": "url", "value": f"https://hooks.example/{SECRET}"}], **spec}}


@pytest.fixture
async def served(tmp_path):
    keeper = WebhookKeeper()
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(webhooks_router(keeper, FolderResources(tmp_path), Gate(None), settle_seconds=5),
                       prefix="/api/v1")
    server = HttpServer(CatchAll(app), bind_http("127.0.0.1:0"))
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}/api/v1", timeout=20) as client:
            yield client, keeper, tmp_path
    finally:
        await server.stop()


async def play_the_folder_source(keeper: WebhookKeeper, path, deleted: bool = False) -> None:
    """What the folder source does at its next poll, once the file is written (or gone)."""
    while path.exists() == deleted:
        await asyncio.sleep(0.02)
    if deleted:
        keeper.replace({})
    else:
        manifest = yaml.safe_load(path.read_text())
        keeper.replace({manifest["metadata"]["name"]: manifest})


async def test_reads_redact_secrets_and_a_test_delivery_answers(served):
    client, keeper, _ = served
    keeper.replace({"soc": webhook("soc")})
    listed = await client.get("/webhooks")
    assert [item["name"] for item in listed.json()["webhooks"]] == ["soc"]
    assert SECRET not in listed.text
    one = await client.get("/webhooks/soc")
    assert one.status_code == 200 and one.json()["spec"]["consumer"] == "Slack" and "state" in one.json()["status"]
    tested = await client.post("/webhooks/soc/test")
    assert tested.status_code == 200 and tested.json()["delivered"] is False and tested.json()["error"]
    assert (await client.get("/webhooks/none")).status_code == 404
    assert (await client.post("/webhooks/none/test")).status_code == 404


async def test_writes_land_in_the_folder_and_answer_once_held(served):
    client, keeper, folder = served
    path = folder / "securityeventwebhook-soc.yaml"
    source = asyncio.create_task(play_the_folder_source(keeper, path))
    created = await client.post("/webhooks", json=webhook("soc"))
    await source
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "soc" and SECRET not in created.text
    assert yaml.safe_load(path.read_text())["spec"]["query"] == "source_namespace = shop"

    source = asyncio.create_task(play_the_folder_source(keeper, path, deleted=True))
    assert (await client.delete("/webhooks/soc")).status_code == 204
    await source
    assert not path.exists()


async def test_a_write_the_collector_does_not_read_in_time_is_202(served):
    client, _, folder = served
    response = await client.post("/webhooks", json=webhook("late"))
    assert response.status_code == 202 and response.headers["location"] == "/api/v1/webhooks/late"
    assert (folder / "securityeventwebhook-late.yaml").exists()


@pytest.mark.parametrize(("manifest", "field"), [
    (webhook("bad", consumer="Teams"), "body.spec.consumer"),
    (webhook("bad", query="source_namespace = = x"), "body.spec.query"),
    ({**webhook("bad"), "kind": "AlertException"}, "body.kind"),
    (webhook("Bad_Name"), "body.metadata.name"),
])
async def test_invalid_webhooks_are_422_and_write_nothing(served, manifest, field):
    client, _, folder = served
    response = await client.post("/webhooks", json=manifest)
    assert response.status_code == 422, response.text
    assert response.json()["error"].get("field") == field
    assert list(folder.iterdir()) == []


def test_a_real_collector_holds_a_webhook_written_over_http(tmp_path):
    """Folder mode end to end: the manifest written by the API is read by the collector's folder source and
    held by its keeper before the create answers; the delete likewise."""
    folder = tmp_path / "feeds"
    folder.mkdir()
    running, port = with_http(f"sqlite:///{tmp_path / 'collector.sqlite'}", folder)
    with running, httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=30) as client:
        created = client.post("/webhooks", json=webhook("soc", state="Disabled"))
        assert created.status_code == 201, created.text
        assert created.json()["spec"]["state"] == "Disabled" and SECRET not in created.text
        assert [item["name"] for item in client.get("/webhooks").json()["webhooks"]] == ["soc"]
        assert client.delete("/webhooks/soc").status_code == 204
        assert client.get("/webhooks").json()["webhooks"] == []
