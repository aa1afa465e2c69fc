"""Webhook delivery (collector/shell/webhookdelivery.py and its parts) against real HTTP receivers on 127.0.0.1
playing Slack, Jira and a generic endpoint, with faults: 500, 429 with Retry-After, a stall past the timeout, a
connection reset, TLS with a private CA; the queue on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import email.utils
import logging
import time
from pathlib import Path

import pytest
import trustme
from prometheus_client import CollectorRegistry

from collector.core.webhookpolicy import RetryPolicy
from collector.shell.eventbell import EventBell
from collector.shell.webhookdelivery import DeliverySettings, WebhookDelivery
from collector.shell.webhookdispatch import DispatchSettings
from collector.shell.webhookkeeper import WebhookKeeper
from collector.shell.webhookmetrics import WebhookMetrics
from collector.shell.webhooksender import SenderSettings
from collector.store.webhookqueue import DEAD, DELIVERED
from dnswatch.alerting.webhooks import ValueRef
from harness.webhookreceiver import RESET, STALL, FaultReply, WebhookReceiver
from tests.collector.eventdata import event as make_event

pytestmark = pytest.mark.anyio

FAST_RETRY = RetryPolicy(base_seconds=0.05, max_backoff_seconds=0.2, max_attempts=5)


def settings(**sender) -> DeliverySettings:
    return DeliverySettings(
        ui_url="https://dnswatch.example/ui",
        sender=SenderSettings(**{"timeout_seconds": 1.0, "poll_seconds": 0.1, "config_retry_seconds": 0.1,
                                 "retry": FAST_RETRY, **sender}),
        dispatch=DispatchSettings(poll_seconds=0.05, read_interval_seconds=0.0, save_interval_seconds=0.0),
        counts_interval_seconds=0.05)


def manifest(name: str, consumer: str, config: dict, *, state: str = "Enabled", query: str = "") -> dict:
    items = [{"name": key, "value": value} if not isinstance(value, dict) else {"name": key, "valueFrom": value}
             for key, value in config.items()]
    return {"apiVersion": "dnswatch.dev/v1", "kind": "SecurityEventWebhook", "metadata": {"name": name},
            "spec": {"consumer": consumer, "state": state, "query": query, "config": items}}


class Running:
    """Delivery over a store, with a keeper and a bell, as serve() assembles it."""

    def __init__(self, store, keeper: WebhookKeeper, delivery_settings: DeliverySettings) -> None:
        self.store = store
        self.keeper = keeper
        self.bell = EventBell()
        self.registry = CollectorRegistry()
        self.delivery = WebhookDelivery(keeper, store, self.bell, WebhookMetrics(self.registry), delivery_settings)

    async def __aenter__(self) -> "Running":
        self.delivery.start()
        await until(lambda: all(name in self.delivery.dispatcher.cursors for name in
                                (w.name for w in self.keeper.webhooks)), "the dispatch cursors")
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.delivery.close()

    async def ingest(self, events: list[dict]) -> None:
        await self.store.ingest_events(events)
        self.bell.ring()

    def sample(self, name: str, **labels) -> float | None:
        return self.registry.get_sample_value(name, labels)


async def until(condition, what: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def states(store, name: str) -> dict[tuple[str, int], tuple[str, str]]:
    return {(row.event_id, row.count): (state, error) for row, state, error in await store.webhook_deliveries(name)}


@pytest.fixture
def receiver():
    with WebhookReceiver(stall_seconds=5.0) as running:
        yield running


async def test_generic_gets_each_event_as_stored_with_its_key_and_token_through_500s(store, receiver) -> None:
    keeper = WebhookKeeper()
    keeper.replace({"soc": manifest("soc", "Generic", {"url": receiver.url("/in"), "token": "s3cr3t-t0ken"})})
    receiver.fail_next(500, 502)
    async with Running(store, keeper, settings(concurrency=1)) as running:
        events = [make_event(n) for n in range(4)]
        await running.ingest(events)
        await running.ingest([make_event(1, count=3)])
        await until(lambda: len(receiver.acknowledged()) == 5, "every emission acknowledged")
        await until(lambda: running.sample("dnswatch_collector_webhook_pending", webhook="soc") == 0,
                    "the pending gauge back at 0")
        status = keeper.status("soc")
    assert receiver.acknowledged() == [f"soc:{n:032x}:1" for n in range(4)] + [f"soc:{1:032x}:3"]
    first = receiver.received[0]
    assert [one.status for one in receiver.received[:3]] == [500, 502, 200]  # one row, tried again in order
    assert first.path == "/in" and first.headers["authorization"] == "Bearer s3cr3t-t0ken"
    assert first.headers["content-type"] == "application/json"
    stored = {row.event_id: row.body for row, _, _ in await store.webhook_deliveries("soc")}
    assert receiver.received[2].body.decode() == stored[f"{0:032x}"]  # the event's JSON exactly as stored
    assert all(state == DELIVERED for state, _ in (await states(store, "soc")).values())
    assert running.sample("dnswatch_collector_webhook_deliveries_total", webhook="soc", outcome="retried") == 2
    assert running.sample("dnswatch_collector_webhook_deliveries_total", webhook="soc", outcome="delivered") == 5
    assert running.sample("dnswatch_collector_webhook_delivery_latency_seconds_count", webhook="soc") == 5
    assert status["lastDelivery"] and status["pending"] == 0 and "lastError" not in status


async def test_429_waits_for_retry_after_in_seconds_and_as_an_http_date(store, receiver) -> None:
    keeper = WebhookKeeper()
    keeper.replace({"soc": manifest("soc", "Generic", {"url": receiver.url()})})
    in_4_seconds = email.utils.format_datetime(dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=4),
                                              usegmt=True)
    receiver.fail_next(FaultReply(429, retry_after="1"), FaultReply(429, retry_after=in_4_seconds))
    async with Running(store, keeper, settings(concurrency=1)) as running:
        await running.ingest([make_event(0)])
        await until(lambda: len(receiver.acknowledged()) == 1, "the delivery after the 429s", seconds=30)
    tries = receiver.received
    assert [one.status for one in tries] == [429, 429, 200]
    # The backoff alone would have tried again within 0.2 s: the waits are the receiver's.
    assert tries[1].at - tries[0].at >= 0.9
    assert tries[2].at - tries[1].at >= 1.5  # the date is to the second, sent a second after it was written


async def test_a_stall_past_the_timeout_and_a_reset_are_tried_again(store, receiver) -> None:
    keeper = WebhookKeeper()
    keeper.replace({"soc": manifest("soc", "Generic", {"url": receiver.url()})})
    receiver.fail_next(STALL, RESET)
    async with Running(store, keeper, settings(concurrency=1, timeout_seconds=0.5)) as running:
        await running.ingest([make_event(0), make_event(1)])
        await until(lambda: len(receiver.acknowledged()) == 2, "both delivered")
        errors = [row for row in keeper.status("soc").values()]
    assert receiver.acknowledged() == [f"soc:{0:032x}:1", f"soc:{1:032x}:1"]
    assert [one.status for one in receiver.received] == [0, 0, 200, 200]
    assert running.sample("dnswatch_collector_webhook_deliveries_total", webhook="soc", outcome="retried") == 2
    assert errors


async def test_a_4xx_is_a_dead_letter_at_once_and_endless_5xx_one_after_the_bound(store, receiver) -> None:
    keeper = WebhookKeeper()
    keeper.replace({"soc": manifest("soc", "Generic", {"url": receiver.url()})})
    receiver.fail_next(400, *[503] * FAST_RETRY.max_attempts)
    async with Running(store, keeper, settings(concurrency=1)) as running:
        await running.ingest([make_event(0), make_event(1), make_event(2)])
        await until(lambda: len(receiver.acknowledged()) == 1, "the third delivered")
        await until(lambda: keeper.status("soc")["deadLetters"] == 2, "the dead letters counted")
    assert len(receiver.received) == 1 + FAST_RETRY.max_attempts + 1
    rows = await states(store, "soc")
    assert rows[(f"{0:032x}", 1)][0] == DEAD and "HTTP 400: not retried" in rows[(f"{0:032x}", 1)][1]
    assert rows[(f"{1:032x}", 1)] == (DEAD, f"HTTP 503: given up after {FAST_RETRY.max_attempts} attempts")
    assert rows[(f"{2:032x}", 1)][0] == DELIVERED
    assert running.sample("dnswatch_collector_webhook_dead_letters", webhook="soc") == 2
    assert running.sample("dnswatch_collector_webhook_deliveries_total", webhook="soc", outcome="dead") == 2


async def test_slack_gets_block_kit_over_tls_with_a_private_ca(store, tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    with WebhookReceiver(tls=(cert_file, key_file)) as slack:
        keeper = WebhookKeeper()
        keeper.replace({"soc-slack": manifest("soc-slack", "Slack", {"url": slack.url("/services/T0/B0/XyZ"),
                                                                     "caCert": ca.cert_pem.bytes().decode()}),
                        "untrusting": manifest("untrusting", "Slack", {"url": slack.url("/services/T1")})})
        async with Running(store, keeper, settings(concurrency=1)) as running:
            await running.ingest([make_event(4, namespace="shop", pod="web-1", domains=("evil.example",))])
            await until(lambda: len(slack.acknowledged()) == 1, "the Slack message")
            await until(lambda: "lastError" in keeper.status("untrusting"), "the untrusting webhook's failure")
    message = slack.received[-1].json()
    assert slack.received[-1].path == "/services/T0/B0/XyZ"
    assert message["text"].startswith("Suspicious DNS query: shop/web-1 looked up evil.example")
    header, facts, context, link = message["blocks"]
    assert header["text"]["text"] == "Suspicious DNS query: evil.example"
    fields = {item["text"].split("\n")[0].strip("*"): item["text"].split("\n", 1)[1] for item in facts["fields"]}
    assert fields["Looked up"] == "`evil.example` A" and fields["Pod"] == "shop/web-1"
    assert fields["Namespace"] == "shop" and fields["Feeds"] == "c2" and fields["Node"] == "node-0"
    assert f"event {4:032x}" in context["elements"][0]["text"]
    assert link["text"]["text"] == f"<https://dnswatch.example/ui/events/{4:032x}|Open the event>"
    # Without the private CA the receiver's certificate is not trusted: a failure said in our words.
    assert "certificate verify failed" in keeper.status("untrusting")["lastError"].lower()


async def test_jira_gets_an_issue_with_basic_authentication(store, receiver) -> None:
    keeper = WebhookKeeper()
    keeper.replace({"soc-jira": manifest("soc-jira", "Jira", {
        "url": receiver.url("/jira/"), "project": "SEC", "issueType": "Bug", "username": "bot@example.com",
        "apiToken": "j1ra-t0ken"})})
    async with Running(store, keeper, settings()) as running:
        await running.ingest([make_event(3, namespace="data", pod="db-0", domains=("payload.dropper.test",))])
        await until(lambda: len(receiver.acknowledged()) == 1, "the Jira issue")
    request = receiver.received[0]
    assert request.path == "/jira/rest/api/2/issue"
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"bot@example.com:j1ra-t0ken").decode()
    fields = request.json()["fields"]
    assert fields["project"] == {"key": "SEC"} and fields["issuetype"] == {"name": "Bug"}
    assert fields["summary"] == "Suspicious DNS query: data/db-0 looked up payload.dropper.test"
    assert "* Node: node-1" in fields["description"] and "* Feeds: c2" in fields["description"]
    assert f"* Link: https://dnswatch.example/ui/events/{3:032x}" in fields["description"]


async def test_an_incomplete_config_delivers_nothing_until_its_secret_exists(store, receiver) -> None:
    secrets: dict[ValueRef, str] = {}

    async def resolve(ref: ValueRef) -> str | None:
        return secrets.get(ref)

    keeper = WebhookKeeper(resolve, resolve_ttl_seconds=0.0)
    keeper.replace({"soc": manifest("soc", "Generic", {"url": {"secretKeyRef": {"name": "hooks", "key": "url"}}})})
    async with Running(store, keeper, settings()) as running:
        await running.ingest([make_event(0)])
        await until(lambda: keeper.status("soc")["pending"] == 1, "the delivery queued")
        await until(lambda: keeper.status("soc")["conditions"], "the missing Secret said")
        assert receiver.received == []
        secrets[ValueRef("Secret", "hooks", "url")] = receiver.url("/late")
        keeper.values_changed()
        await until(lambda: len(receiver.acknowledged()) == 1, "the delivery once the Secret exists")
    assert receiver.received[0].path == "/late"


async def test_debug_logs_each_payload_and_no_log_line_holds_a_secret(store, receiver, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    token, path_secret = "T0K3N-debug-never-logged", "/hooks/P4TH-secret"
    keeper = WebhookKeeper()
    keeper.replace({"soc": manifest("soc", "Generic", {"url": receiver.url(path_secret), "token": token},
                                    state="Debug")})
    receiver.fail_next(500, RESET, 401)
    async with Running(store, keeper, settings(concurrency=1)) as running:
        await running.ingest([make_event(0), make_event(1)])
        await until(lambda: len(receiver.acknowledged()) == 1 and keeper.status("soc")["deadLetters"] == 1,
                    "one delivered, one dead")
        result = await keeper.test("soc")
    assert result.delivered and result.http_status == 200
    debug_lines = [r.getMessage() for r in caplog.records if "(Debug)" in r.getMessage()]
    assert len(debug_lines) == 4 and all("[redacted]" in line for line in debug_lines)
    assert f'"id":"{0:032x}"' in debug_lines[0].replace(" ", "")
    assert token not in caplog.text and path_secret not in caplog.text
    assert "P4TH" not in caplog.text and "T0K3N" not in caplog.text


async def test_test_state_sends_one_sample_per_spec_and_the_tester_sends_one_now(store, receiver) -> None:
    keeper = WebhookKeeper()
    keeper.replace({"soc": manifest("soc", "Generic", {"url": receiver.url("/t1")}, state="Test")})
    async with Running(store, keeper, settings()) as running:
        await until(lambda: len(receiver.acknowledged()) == 1, "the sample event")
        await until(lambda: "lastDelivery" in keeper.status("soc"), "the result in the status")
        await running.ingest([make_event(0)])  # Test delivers no real event
        keeper.values_changed()  # the set changed, the spec did not: no second sample
        keeper.replace({"soc": manifest("soc", "Generic", {"url": receiver.url("/t2")}, state="Test")})
        await until(lambda: len(receiver.acknowledged()) == 2, "a sample for the new spec")
        receiver.fail_next(503)
        result = await keeper.test("soc")
        assert not result.delivered and result.http_status == 503 and result.error == "HTTP 503"
        assert keeper.status("soc")["lastError"] == "HTTP 503"
    paths = [one.path for one in receiver.received]
    assert paths == ["/t1", "/t2", "/t2"]
    sample = receiver.received[0].json()
    assert sample["description"].startswith("a test of the SecurityEventWebhook soc")
    assert await store.webhook_deliveries("soc") == []


async def test_a_request_that_cannot_be_made_is_a_dead_letter_and_the_queue_goes_on(store, receiver) -> None:
    keeper = WebhookKeeper()
    keeper.replace({"bad": manifest("bad", "Generic", {"url": receiver.url("/bad"), "token": "tökén"}),
                    "good": manifest("good", "Generic", {"url": receiver.url("/good")})})
    async with Running(store, keeper, settings()) as running:
        await running.ingest([make_event(0), make_event(1)])
        await until(lambda: keeper.status("bad")["deadLetters"] == 2, "both dead for the token")
        await until(lambda: len(receiver.acknowledged()) == 2, "the other webhook's deliveries")
    assert {one.path for one in receiver.received} == {"/good"}
    assert {error for state, error in (await states(store, "bad")).values()} == {
        "the request cannot be made: UnicodeEncodeError"}
