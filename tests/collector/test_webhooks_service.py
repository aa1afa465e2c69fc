"""The Webhooks service of a real collector (SQLite, 127.0.0.1) with SecurityEventWebhooks and a Secret in its
manifests folder: List and Get show the spec with secrets redacted and the keeper's status, Test answers with
what the keeper's tester gave, and an unknown name is NOT_FOUND."""

from __future__ import annotations

import datetime as dt
import time

import grpc
import httpx
import pytest

from collector.shell.webhookkeeper import TestResult
from dnswatch_pb.v1 import alerting_pb2, alerting_pb2_grpc
from harness.collector import RunningCollector
from harness.feedserver import ERROR, FeedServer
from tests.collector.running import db_url  # noqa: F401
from tests.collector.test_dirsource import write
from tests.collector.test_webhook_folder import SLACK_URL, config_map, secret, webhook

pytestmark = pytest.mark.timeout(60)

JIRA_TOKEN = "jira-api-t0ken-99"


def jira(name: str) -> str:
    return webhook(name, consumer="Jira", description="tickets for the SOC", config=[
        {"name": "url", "value": "https://jira.example/rest"},
        {"name": "project", "valueFrom": {"configMapKeyRef": {"name": "jira", "key": "project"}}},
        {"name": "issueType", "value": "Bug"}, {"name": "username", "value": "soc-bot"},
        {"name": "apiToken", "value": JIRA_TOKEN}])


@pytest.fixture
def collector(db_url, tmp_path):  # noqa: F811
    folder = tmp_path / "manifests"
    folder.mkdir()
    write(folder / "hooks.yaml", "\n---\n".join([
        webhook("soc", query="source_namespace = shop"), jira("tickets"),
        webhook("orphan", config=[{"name": "url", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "url"}}}]),
        secret("soc", {"slack": SLACK_URL}), config_map("jira", {"project": "SOC"})]))
    with RunningCollector(db_url, folder) as running:
        with running.channel() as channel:
            stub = alerting_pb2_grpc.WebhooksStub(channel)
            end = time.monotonic() + 10
            while len(stub.List(alerting_pb2.ListWebhooksRequest(), timeout=5).webhooks) < 3:
                assert time.monotonic() < end, "the folder's webhooks never reached the keeper"
                time.sleep(0.05)
        yield running


def test_list_and_get_show_the_spec_with_secrets_redacted_and_the_status(collector):
    with collector.channel() as channel:
        stub = alerting_pb2_grpc.WebhooksStub(channel)
        listed = stub.List(alerting_pb2.ListWebhooksRequest(), timeout=5)
        assert [w.name for w in listed.webhooks] == ["orphan", "soc", "tickets"]
        soc = stub.Get(alerting_pb2.GetWebhookRequest(name="soc"), timeout=5)
        tickets = stub.Get(alerting_pb2.GetWebhookRequest(name="tickets"), timeout=5)
        orphan = stub.Get(alerting_pb2.GetWebhookRequest(name="orphan"), timeout=5)
    assert (soc.consumer, soc.state, soc.query, soc.api_version) == ("Slack", "Enabled", "source_namespace = shop",
                                                                     "dnswatch.dev/v1")
    assert soc.delivers and list(soc.conditions) == []
    assert [(c.name, c.value, c.value_from_kind, c.value_from_name, c.value_from_key) for c in soc.config] == [
        ("url", "", "Secret", "soc", "slack")]
    assert {c.name: c.value for c in tickets.config} == {
        "url": "[redacted]", "project": "", "issueType": "Bug", "username": "soc-bot", "apiToken": "[redacted]"}
    assert tickets.description == "tickets for the SOC" and tickets.delivers
    assert not orphan.delivers
    assert [(c.type, c.message) for c in orphan.conditions] == [
        ("InvalidConfig", "config url: Secret gone key url does not exist")]
    for message in (listed, soc, tickets, orphan):
        wire = message.SerializeToString()
        assert SLACK_URL.encode() not in wire and JIRA_TOKEN.encode() not in wire
        assert b"jira.example" not in wire  # a url is a secret even when written in place


def test_the_status_shows_what_delivery_reported_with_secrets_redacted(collector):
    keeper = collector.alerting.webhooks
    at = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.timezone.utc)

    async def report() -> None:
        await keeper.resolved("soc")
        keeper.record_delivery("soc", at=at, ok=True)
        keeper.record_delivery("soc", at=at + dt.timedelta(seconds=5), ok=False,
                               error=f"POST {SLACK_URL}: connection refused", pending=2, dead_letters=1)

    collector.on_loop(report)
    with collector.channel() as channel:
        soc = alerting_pb2_grpc.WebhooksStub(channel).Get(alerting_pb2.GetWebhookRequest(name="soc"), timeout=5)
    assert soc.last_delivery == "2026-12-04T12:00:00.000Z" and soc.last_error_time == "2026-12-04T12:00:05.000Z"
    assert soc.last_error == "POST [redacted]: connection refused"
    # The queue's counts are delivery's own, refreshed from the store while the collector runs (0 here):
    # what the servicer makes of reported ones is checked below, on a keeper of its own.
    assert (soc.delivered, soc.failed) == (1, 1)


@pytest.mark.anyio
async def test_the_servicer_shows_the_queue_counts_delivery_reported() -> None:
    from collector.shell.grpc_webhooks import WebhooksServicer
    from collector.shell.webhookkeeper import WebhookKeeper

    keeper = WebhookKeeper()
    keeper.replace({"hook": {"apiVersion": "dnswatch.dev/v1", "kind": "SecurityEventWebhook",
                             "metadata": {"name": "hook"}, "spec": {"consumer": "Generic", "state": "Enabled",
                             "config": [{"name": "url", "value": "https://siem.example/hook"}]}}})
    keeper.record_delivery("hook", at=dt.datetime(2026, 12, 4, tzinfo=dt.timezone.utc), ok=False,
                           error="HTTP 503", pending=2, dead_letters=1)
    shown = await WebhooksServicer(keeper).Get(alerting_pb2.GetWebhookRequest(name="hook"), None)
    assert (shown.pending, shown.dead_letters, shown.failed, shown.last_error) == (2, 1, 1, "HTTP 503")


def test_test_answers_with_what_the_tester_gave_and_unknown_names_are_not_found(collector):
    with collector.channel() as channel:
        stub = alerting_pb2_grpc.WebhooksStub(channel)
        untested = stub.Test(alerting_pb2.TestWebhookRequest(name="soc"), timeout=5)
        # The collector's own tester: the Secret's URL names a host that does not resolve here.
        assert (untested.delivered, untested.error) == (False, "cannot connect: Name or service not known")

        with FeedServer() as receiver:
            receiver.serve("/hook", b"ok")
            receiver.fault("/hook", ERROR, times=1, status=503)

            async def send(webhook) -> TestResult:
                # A stand-in for delivery's tester: one real request to a receiver on 127.0.0.1.
                async with httpx.AsyncClient() as client:
                    answer = await client.get(receiver.url("/hook"), params={"webhook": webhook.name})
                return TestResult(answer.is_success, "" if answer.is_success else f"HTTP {answer.status_code}",
                                  answer.status_code)

            async def install() -> None:
                collector.alerting.webhooks.set_tester(send)

            collector.on_loop(install)
            failed = stub.Test(alerting_pb2.TestWebhookRequest(name="soc"), timeout=5)
            delivered = stub.Test(alerting_pb2.TestWebhookRequest(name="tickets"), timeout=5)
            assert receiver.count("/hook") == 2
        assert (failed.delivered, failed.error, failed.http_status) == (False, "HTTP 503", 503)
        assert (delivered.delivered, delivered.error, delivered.http_status) == (True, "", 200)

        for call, request in ((stub.Get, alerting_pb2.GetWebhookRequest(name="nothing")),
                              (stub.Test, alerting_pb2.TestWebhookRequest(name="nothing"))):
            with pytest.raises(grpc.RpcError) as raised:
                call(request, timeout=5)
            assert raised.value.code() == grpc.StatusCode.NOT_FOUND
            assert raised.value.details() == "no SecurityEventWebhook named 'nothing'"
