"""`dnswatch webhooks list|get|test` as real processes against a real collector (SQLite, 127.0.0.1) with
SecurityEventWebhooks, a Secret and a ConfigMap in its manifests folder. No output ever holds a secret."""

from __future__ import annotations

import json

import httpx
import pytest
import yaml

from collector.shell.webhookkeeper import TestResult
from harness.feedserver import ERROR, FeedServer
from tests.collector.running import db_url  # noqa: F401
from tests.collector.test_events_cli import dnswatch
from tests.collector.test_webhook_folder import SLACK_URL
from tests.collector.test_webhooks_service import JIRA_TOKEN, collector  # noqa: F401

pytestmark = pytest.mark.timeout(120)

SECRETS = (SLACK_URL, "s3cr3t", JIRA_TOKEN, "jira.example")


def run(address: str, *args: str):
    result = dnswatch(address, "webhooks", *args)
    for secret in SECRETS:
        assert secret not in result.stdout and secret not in result.stderr, (args, secret)
    return result


def test_list_as_a_table_json_and_yaml(collector):  # noqa: F811
    table = run(collector.address, "list")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["NAME", "CONSUMER", "STATE", "DELIVERS", "PENDING", "LAST", "DELIVERY", "LAST",
                                "ERROR", "PROBLEM"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["soc"][:5] == ["soc", "Slack", "Enabled", "yes", "0"]
    assert rows["orphan"][3] == "no" and "config url: Secret gone key url does not exist" in table.stdout
    assert rows["tickets"][1] == "Jira"

    as_json = run(collector.address, "list", "-o", "json")
    assert as_json.returncode == 0, as_json.stderr
    records = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [r["name"] for r in records] == ["orphan", "soc", "tickets"]
    soc = records[1]
    assert soc["spec"] == {"consumer": "Slack", "state": "Enabled", "description": "",
                           "query": "source_namespace = shop",
                           "config": [{"name": "url", "valueFrom": {"secretKeyRef": {"name": "soc", "key": "slack"}}}]}
    assert soc["status"] == {"delivers": True, "conditions": [], "pending": 0, "deadLetters": 0, "delivered": 0,
                             "failed": 0}
    assert {c["name"]: c.get("value") for c in records[2]["spec"]["config"]}["apiToken"] == "[redacted]"
    as_yaml = run(collector.address, "list", "-o", "yaml")
    assert yaml.safe_load(as_yaml.stdout) == records


def test_get_describes_one_and_an_unknown_name_is_one_line(collector):  # noqa: F811
    described = run(collector.address, "get", "tickets")
    assert described.returncode == 0, described.stderr
    lines = described.stdout.splitlines()
    assert lines[0].split() == ["Name:", "tickets"] and "Consumer:      Jira" in lines
    assert "  project:     from ConfigMap jira key project" in lines and "  apiToken:    [redacted]" in lines
    assert "  url:         [redacted]" in lines and "Description:   tickets for the SOC" in lines
    orphan = run(collector.address, "get", "orphan").stdout.splitlines()
    assert "  InvalidConfig: config url: Secret gone key url does not exist" in orphan
    as_yaml = yaml.safe_load(run(collector.address, "get", "soc", "-o", "yaml").stdout)
    assert as_yaml["name"] == "soc" and as_yaml["apiVersion"] == "dnswatch.dev/v1"
    assert json.loads(run(collector.address, "get", "soc", "-o", "json").stdout) == as_yaml

    for action in ("get", "test"):
        missing = run(collector.address, action, "nothing")
        assert missing.returncode == 1 and missing.stdout == ""
        assert missing.stderr == "dnswatch: error: no SecurityEventWebhook named 'nothing'\n"


def test_test_says_whether_the_sample_was_delivered(collector):  # noqa: F811
    undelivered = run(collector.address, "test", "soc")
    assert undelivered.returncode == 1 and undelivered.stdout == ""
    assert undelivered.stderr == ("dnswatch: webhook soc: the sample event was not delivered: this collector does "
                                  "not deliver webhooks\n")

    with FeedServer() as receiver:
        receiver.serve("/hook", b"ok")
        receiver.fault("/hook", ERROR, times=1, status=503)

        async def send(webhook) -> TestResult:
            # A stand-in for delivery's tester: one real request to a receiver on 127.0.0.1, failing with
            # a message that quotes the secret URL, as an HTTP client's error would.
            async with httpx.AsyncClient() as client:
                answer = await client.get(receiver.url("/hook"))
            error = "" if answer.is_success else f"POST [redacted]: HTTP {answer.status_code}"
            return TestResult(answer.is_success, error, answer.status_code)

        async def install() -> None:
            collector.alerting.webhooks.set_tester(send)

        collector.on_loop(install)
        failed = run(collector.address, "test", "soc", "-o", "json")
        delivered = run(collector.address, "test", "tickets")
    assert failed.returncode == 1
    assert json.loads(failed.stdout) == {"name": "soc", "delivered": False, "error": "POST [redacted]: HTTP 503",
                                         "httpStatus": 503}
    assert failed.stderr == ("dnswatch: webhook soc: the sample event was not delivered (HTTP 503): "
                             "POST [redacted]: HTTP 503\n")
    assert delivered.returncode == 0, delivered.stderr
    assert delivered.stdout == "webhook tickets: the sample event was delivered (HTTP 200)\n"


def test_none_is_said_on_stderr_and_an_empty_list_in_json_and_yaml(db_url, tmp_path):  # noqa: F811
    from harness.collector import RunningCollector

    with RunningCollector(db_url, tmp_path) as empty:
        table = run(empty.address, "list")
        assert (table.returncode, table.stdout, table.stderr) == (0, "", "dnswatch: no webhooks\n")
        assert run(empty.address, "list", "-o", "json").stdout == ""
        assert run(empty.address, "list", "-o", "yaml").stdout == "[]\n"


def test_no_collector_is_one_line_and_exit_2(tmp_path):
    from harness.collector import free_port

    result = dnswatch(f"127.0.0.1:{free_port()}", "webhooks", "list")
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1
    assert "cannot be reached" in result.stderr
