"""SecurityEventWebhookSource against the fake API server (tests/kubeapi.py) with the real kubernetes client:
objects followed into the keeper, their Secret-backed config resolved in the collector's namespace, and their
status written back through the status subresource only when it differs, at most every interval."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import time

import pytest

from collector.core.watchloop import Backoff
from collector.shell.kubesource import GlobalThreatFeedSource, KubeSourceSettings
from collector.shell.webhookkeeper import WebhookKeeper
from collector.shell.webhooksource import SecurityEventWebhookSource, WebhookSourceSettings
from harness.collector import RunningCollector
from tests.collector.kubesetup import kubeconfig, wait_until
from tests.collector.running import db_url  # noqa: F401
from tests.kubeapi import CORE_RESOURCES, FakeKubeAPI

pytestmark = pytest.mark.timeout(60)

SLACK_URL = "https://hooks.slack.example/services/T0/B0/s3cr3t-T0K3N"
INTERVAL = 0.5
FAST = WebhookSourceSettings(watch_timeout_seconds=5, request_timeout_seconds=2,
                             backoff=Backoff(initial=0.01, maximum=0.05), status_interval_seconds=INTERVAL)


def webhook(name: str, **spec) -> dict:
    body = {"consumer": "Slack", "state": "Enabled",
            "config": [{"name": "url", "valueFrom": {"secretKeyRef": {"name": "soc", "key": "slack"}}}], **spec}
    return {"apiVersion": "dnswatch.dev/v1", "kind": "SecurityEventWebhook", "metadata": {"name": name},
            "spec": body}


def secret(url: str) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "soc", "namespace": "dnswatch"},
            "data": {"slack": base64.b64encode(url.encode()).decode()}}


def status_of(api: FakeKubeAPI, name: str) -> dict | None:
    found = [o.get("status") for o in api.objects("securityeventwebhooks") if o["metadata"]["name"] == name]
    return found[0] if found else None


def status_writes(api: FakeKubeAPI, name: str) -> int:
    return sum(1 for method, path in api.requests
               if method == "PATCH" and path.split("?")[0].endswith(f"/securityeventwebhooks/{name}/status"))


async def until(condition, what: str, deadline: float = 10.0):
    end = time.monotonic() + deadline
    while not (result := condition()):
        assert time.monotonic() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)
    return result


@contextlib.asynccontextmanager
async def following(api: FakeKubeAPI):
    """A keeper resolving in the namespace `dnswatch` of `api`, and the source following into it."""
    api_client = api.api_client()
    values = GlobalThreatFeedSource(api_client, KubeSourceSettings(namespace="dnswatch", request_timeout_seconds=2))
    keeper = WebhookKeeper(values.resolve, resolve_ttl_seconds=0.2)
    source = SecurityEventWebhookSource(api_client, keeper, FAST)
    task = asyncio.create_task(source.follow())
    try:
        yield keeper, source
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        api_client.close()


@pytest.fixture
def api():
    with FakeKubeAPI(bookmark_interval=0.2) as server:
        yield server


def test_objects_are_followed_with_their_secret_resolved_and_a_bad_spec_named_in_the_status(api):
    api.put(secret(SLACK_URL))
    api.put(webhook("soc"))
    api.put(webhook("broken", state="Bogus", query="source_namespace ="))

    async def main() -> None:
        async with following(api) as (keeper, _source):
            await until(lambda: [w.name for w in keeper.webhooks] == ["broken", "soc"], "both listed")
            config = await keeper.resolved("soc")
            assert config.complete and config.values == {"url": SLACK_URL}
            broken = await until(lambda: status_of(api, "broken"), "the bad spec's status")
            messages = [c["message"] for c in broken["conditions"]]
            assert messages[0] == "spec.state: 'Bogus' is not one of Enabled, Disabled, Test, Debug"
            assert messages[1].startswith("query: ")
            assert [c["type"] for c in broken["conditions"]] == ["InvalidSpec", "InvalidQuery"]
            soc = await until(lambda: status_of(api, "soc"), "the valid one's status")
            assert soc == {"state": "Enabled", "conditions": [], "pending": 0, "deadLetters": 0}

            # Added, changed and deleted while watched.
            api.put(webhook("jira", consumer="Jira", config=[{"name": "url", "value": "https://jira.example"}]))
            jira = await until(lambda: status_of(api, "jira"), "the added one's status")
            assert {c["message"] for c in jira["conditions"]} >= {
                "spec.config: Jira needs 'project' (needs url, project, issueType, username, apiToken)"}
            api.put(webhook("soc", state="Disabled", query="source_namespace = shop"))
            await until(lambda: keeper.get("soc").state == "Disabled", "the change applied")
            assert keeper.get("soc").query_text == "source_namespace = shop"
            await until(lambda: (status_of(api, "soc") or {}).get("state") == "Disabled", "the changed status")
            api.remove("securityeventwebhooks", "broken")
            await until(lambda: keeper.get("broken") is None, "the deleted one gone")

            # A Secret that is missing is a condition of the status, naming the Secret and the key only.
            api.remove("secrets", "soc", namespace="dnswatch")
            soc = await until(lambda: (status_of(api, "soc") or {}).get("conditions"), "the missing Secret said")
            assert soc == [{"type": "InvalidConfig", "message": "config url: Secret soc key slack does not exist"}]
            api.put(secret(SLACK_URL))
            await until(lambda: (status_of(api, "soc") or {}).get("conditions") == [], "the condition cleared")

    asyncio.run(asyncio.wait_for(main(), 50))
    assert not any(SLACK_URL in str(o.get("status")) for o in api.objects("securityeventwebhooks"))


def test_the_status_is_written_only_when_it_differs_and_at_most_every_interval(api):
    api.put(secret(SLACK_URL))
    api.put(webhook("soc"))
    at = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.timezone.utc)

    async def main() -> None:
        async with following(api) as (keeper, source):
            await until(lambda: status_of(api, "soc"), "the first status")
            assert status_writes(api, "soc") == 1
            # Our own write came back as MODIFIED; another object's arrival makes a round that writes its status
            # and, soc's being as written, nothing of soc's.
            api.put(webhook("other"))
            await until(lambda: status_of(api, "other"), "the other's status")
            assert status_writes(api, "soc") == 1

            await keeper.resolved("soc")  # delivery resolves before it sends: the error is redacted with it
            keeper.record_delivery("soc", at=at, ok=True, pending=3)
            first = await until(lambda: "lastDelivery" in (status_of(api, "soc") or {}) and time.monotonic(),
                                "the delivery written")
            assert status_of(api, "soc")["pending"] == 3
            keeper.record_delivery("soc", at=at + dt.timedelta(seconds=1), ok=False,
                                   error=f"POST {SLACK_URL}: HTTP 503", pending=4, dead_letters=1)
            second = await until(lambda: "lastError" in (status_of(api, "soc") or {}) and time.monotonic(),
                                 "the error written")
            assert second - first >= INTERVAL - 0.1, "written again within the interval"
            written = status_of(api, "soc")
            assert written["lastError"] == "POST [redacted]: HTTP 503" and written["deadLetters"] == 1
            assert written["lastErrorTime"] == "2026-12-04T12:00:01.000Z" and written["pending"] == 4

            # A success clears the error, deleted from the status by the merge patch.
            keeper.record_delivery("soc", at=at + dt.timedelta(seconds=2), ok=True, pending=0)
            await until(lambda: "lastError" not in status_of(api, "soc"), "the error cleared")
            assert status_of(api, "soc")["lastDelivery"] == "2026-12-04T12:00:02.000Z"
            await until(lambda: source.status_writes == status_writes(api, "soc") + status_writes(api, "other"),
                        "the source's count of its writes")

    asyncio.run(asyncio.wait_for(main(), 50))


def test_a_missing_crd_is_retried_with_a_hint(caplog):
    without_crd = tuple(r for r in CORE_RESOURCES if r.plural != "securityeventwebhooks")

    async def main(api: FakeKubeAPI) -> None:
        async with following(api):
            await until(lambda: sum(1 for m, p in api.requests if p.endswith("/securityeventwebhooks")) >= 2,
                        "the list retried")

    with FakeKubeAPI(resources=without_crd) as api, caplog.at_level("WARNING", "collector.shell.webhooksource"):
        asyncio.run(asyncio.wait_for(main(api), 30))
    assert "kubectl apply -f deploy/base/crd-securityeventwebhook.yaml" in caplog.text


def test_a_collector_in_kubernetes_mode_follows_the_webhooks_and_writes_their_status(tmp_path, api, db_url):  # noqa: F811
    api.put(secret(SLACK_URL))
    api.put(webhook("soc"))
    api.put(webhook("nothing", config=[{"name": "url", "valueFrom": {"configMapKeyRef": {"name": "x", "key": "y"}}}]))
    config = kubeconfig(tmp_path / "kubeconfig", api.url)
    with RunningCollector(db_url, None, "--kubeconfig", str(config)) as collector:
        keeper = collector.alerting.webhooks

        async def soc_url() -> str | None:
            resolved = await keeper.resolved("soc")
            return resolved.values.get("url") if resolved else None

        wait_until(lambda: collector.on_loop(soc_url) == SLACK_URL, "the Secret's value resolved")
        status = wait_until(lambda: (status_of(api, "nothing") or {}).get("conditions"), "the missing key said")
        assert status == [{"type": "InvalidConfig", "message": "config url: ConfigMap x key y does not exist"}]
        assert wait_until(lambda: status_of(api, "soc"), "soc's status")["conditions"] == []
