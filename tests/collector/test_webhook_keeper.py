"""The collector's webhook keeper (collector/shell/webhookkeeper.py): the set by name, configuration read
through a resolver, and delivery's reports turned into the resource's status with secrets redacted."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from collector.shell.webhookkeeper import TestResult, WebhookKeeper
from dnswatch.alerting.webhooks import ValueRef

AT = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.timezone.utc)


def manifest(name: str, **spec) -> dict:
    return {"apiVersion": "dnswatch.dev/v1", "kind": "SecurityEventWebhook", "metadata": {"name": name},
            "spec": {"consumer": "Generic", "state": "Enabled", **spec}}


SECRET_URL = [{"name": "url", "valueFrom": {"secretKeyRef": {"name": "hooks", "key": "generic"}}}]


@pytest.mark.anyio
async def test_configuration_is_read_through_the_resolver_and_missing_keys_are_conditions() -> None:
    values = {ValueRef("Secret", "hooks", "generic"): "https://hooks.example/T0K3N"}
    asked: list[ValueRef] = []

    async def resolve(ref: ValueRef) -> str | None:
        asked.append(ref)
        return values.get(ref)

    keeper = WebhookKeeper(resolve)
    keeper.replace({"soc": manifest("soc", config=SECRET_URL),
                    "gone": manifest("gone", config=[{"name": "url", "valueFrom": {
                        "configMapKeyRef": {"name": "nothing", "key": "url"}}}])})
    config = await keeper.resolved("soc")
    assert config.complete and config.values == {"url": "https://hooks.example/T0K3N"}
    assert config.secrets == ("https://hooks.example/T0K3N",)
    await keeper.resolved("soc")
    assert len(asked) == 1  # reused within the time to live
    missing = await keeper.resolved("gone")
    assert not missing.complete and "ConfigMap nothing key url does not exist" in missing.conditions[0].message
    assert keeper.status("gone")["conditions"][0]["type"] == "InvalidConfig"
    assert await keeper.resolved("nobody") is None and keeper.status("nobody") is None


@pytest.mark.anyio
async def test_a_resolver_failure_is_a_condition_not_an_exception() -> None:
    async def resolve(ref: ValueRef) -> str | None:
        raise LookupError("Secret dnswatch/hooks: HTTP 403 Forbidden")

    keeper = WebhookKeeper(resolve)
    keeper.replace({"soc": manifest("soc", config=SECRET_URL)})
    config = await keeper.resolved("soc")
    assert not config.complete and "HTTP 403" in config.conditions[0].message


@pytest.mark.anyio
async def test_deliveries_make_the_status_with_the_secrets_redacted() -> None:
    async def resolve(ref: ValueRef) -> str | None:
        return "https://hooks.example/T0K3N"

    keeper = WebhookKeeper(resolve)
    keeper.replace({"soc": manifest("soc", config=SECRET_URL)})
    await keeper.resolved("soc")
    keeper.record_delivery("soc", at=AT, ok=False, error="POST https://hooks.example/T0K3N: HTTP 503",
                           pending=3)
    status = keeper.status("soc")
    assert status["lastError"] == "POST [redacted]: HTTP 503" and status["pending"] == 3
    assert status["lastErrorTime"] == "2026-05-01T12:00:00.000Z" and "lastDelivery" not in status
    keeper.record_delivery("soc", at=AT + dt.timedelta(seconds=5), ok=True, pending=0, dead_letters=1)
    status = keeper.status("soc")
    assert status["lastDelivery"] == "2026-05-01T12:00:05.000Z" and "lastError" not in status
    assert (status["pending"], status["deadLetters"], keeper.delivery("soc").delivered) == (0, 1, 1)


@pytest.mark.anyio
async def test_changes_wake_the_waiters_and_test_goes_to_the_installed_tester() -> None:
    keeper = WebhookKeeper()
    keeper.replace({"soc": manifest("soc", config=[{"name": "url", "value": "https://hooks.example/x"}])})
    before = keeper.generation
    waiter = asyncio.ensure_future(keeper.wait_changed(before))
    await asyncio.sleep(0)
    assert not waiter.done()
    keeper.upsert("bad", manifest("bad", consumer="Teams"))
    assert await asyncio.wait_for(waiter, 5) == before + 1
    assert [w.name for w in keeper.webhooks] == ["bad", "soc"] and not keeper.get("bad").valid
    assert (await keeper.test("soc")).error == "this collector does not deliver webhooks"

    async def tester(webhook) -> TestResult:
        return TestResult(True, http_status=204)

    keeper.set_tester(tester)
    assert await keeper.test("soc") == TestResult(True, http_status=204)
    with pytest.raises(KeyError):
        await keeper.test("nobody")
    keeper.delete("bad")
    assert keeper.generation == before + 2 and keeper.get("bad") is None
