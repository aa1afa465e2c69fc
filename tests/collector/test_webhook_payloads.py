"""The pure parts of webhook delivery: the payloads (collector/core/webhookpayloads.py) and the retry policy
(collector/core/webhookpolicy.py)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from collector.core.webhookpayloads import idempotency_key, looked_up, sample_event, webhook_request
from collector.core.webhookpolicy import DEAD, DELIVERED, PENDING, RetryPolicy, backoff_seconds, judge, \
    retry_after_seconds
from tests.collector.eventdata import event as make_event

NOW = dt.datetime(2026, 12, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
POLICY = RetryPolicy(base_seconds=1.0, max_backoff_seconds=60.0, max_attempts=5, max_age_seconds=600.0)


def test_retry_after_is_read_as_seconds_or_an_http_date() -> None:
    assert retry_after_seconds("120", NOW) == 120.0
    assert retry_after_seconds("Tue, 01 Dec 2026 12:00:30 GMT", NOW) == 30.0
    assert retry_after_seconds("Tue, 01 Dec 2026 11:00:00 GMT", NOW) == 0.0  # past: at once
    assert retry_after_seconds("soon", NOW) is None and retry_after_seconds(None, NOW) is None


def test_backoff_is_full_jitter_under_a_capped_exponential() -> None:
    assert [backoff_seconds(n, POLICY, lambda: 1.0) for n in (1, 2, 3, 7, 8, 40)] == [1, 2, 4, 60, 60, 60]
    assert backoff_seconds(3, POLICY, lambda: 0.0) == 0.0
    assert backoff_seconds(3, POLICY, lambda: 0.5) == 2.0


@pytest.mark.parametrize("status, error, retry_after, attempts, age, state, delay", [
    (200, "", None, 1, 0, DELIVERED, 0.0),
    (204, "", None, 3, 0, DELIVERED, 0.0),
    (500, "", None, 1, 0, PENDING, 1.0),
    (503, "", 42.0, 2, 0, PENDING, 42.0),
    (429, "", 7.0, 1, 0, PENDING, 7.0),
    (429, "", None, 3, 0, PENDING, 4.0),
    (None, "timed out after 10 s", None, 2, 0, PENDING, 2.0),
    (400, "", None, 1, 0, DEAD, 0.0),
    (401, "", None, 1, 0, DEAD, 0.0),
    (404, "", None, 1, 0, DEAD, 0.0),
    (500, "", None, 5, 0, DEAD, 0.0),  # the attempts' bound
    (500, "", None, 2, 599, DEAD, 0.0),  # the age's bound
])
def test_the_verdict_on_each_outcome(status, error, retry_after, attempts, age, state, delay) -> None:
    verdict = judge(status=status, error=error, retry_after=retry_after, attempts=attempts, age_seconds=age,
                    policy=POLICY, rand=lambda: 1.0)
    assert (verdict.state, verdict.delay) == (state, delay)
    if state != DELIVERED:
        assert verdict.reason.startswith(error or f"HTTP {status}")


def test_a_long_retry_after_is_capped() -> None:
    verdict = judge(status=429, retry_after=10 ** 6, attempts=1, age_seconds=0,
                    policy=RetryPolicy(max_retry_after_seconds=900), rand=lambda: 1.0)
    assert verdict.delay == 900


def test_generic_sends_the_body_as_stored_with_its_key_and_a_bearer_token_only_when_set() -> None:
    body = json.dumps(make_event(1), ensure_ascii=False)
    request = webhook_request("Generic", {"url": "https://h.example/in", "token": "tok"}, body, json.loads(body),
                              key=idempotency_key("g", f"{1:032x}", 1))
    assert request.content == body.encode() and request.url == "https://h.example/in"
    assert dict(request.headers) == {"Content-Type": "application/json", "Idempotency-Key": f"g:{1:032x}:1",
                                     "Authorization": "Bearer tok"}
    bare = webhook_request("Generic", {"url": "https://h.example/in"}, body, json.loads(body), key="k")
    assert "Authorization" not in dict(bare.headers)
    shown = request.redacted(["https://h.example/in", "tok"])
    assert "tok" not in shown.replace("Idempotency-Key", "") and "h.example" not in shown
    assert shown.startswith("POST [redacted] [") and "Authorization: [redacted]" in shown


def test_slack_escapes_its_control_characters_and_names_what_matched_beside_the_question() -> None:
    event = make_event(2, namespace="a<b>", domains=("cdn.example", "bad&co.example"))
    event["record"]["qname"] = "cdn.example"
    message = json.loads(webhook_request("Slack", {"url": "https://hooks.slack.example/x"}, json.dumps(event), event,
                                         key="k").content)
    assert looked_up(event) == "cdn.example (bad&co.example)"
    texts = [field["text"] for field in message["blocks"][1]["fields"]]
    assert "*Looked up*\n`cdn.example (bad&amp;co.example)` A" in texts
    assert "*Namespace*\na&lt;b&gt;" in texts
    assert len(message["blocks"]) == 3  # no UI, no link


def test_a_client_that_is_no_pod_is_named_by_its_address() -> None:
    event = make_event(3)
    event.update(source_namespace="-", source_name="-", source_ip="10.244.1.250")
    issue = json.loads(webhook_request("Jira", {"url": "https://jira.example", "project": "S", "issueType": "Task",
                                                "username": "u", "apiToken": "t"}, json.dumps(event), event,
                                       key="k").content)
    assert issue["fields"]["summary"] == "Suspicious DNS query: 10.244.1.250 looked up evil0.example"


def test_the_sample_event_is_shaped_as_a_real_one() -> None:
    sample = sample_event("soc", NOW)
    real = make_event(0)
    assert set(sample) == set(real) and set(sample["record"]) == set(real["record"])
    assert set(sample["record"]["matches"][0]) == set(real["record"]["matches"][0])
    assert len(sample["id"]) == 32 and sample["time"] == "2026-12-01T12:00:00.000Z"


def test_an_unknown_consumer_has_no_payload() -> None:
    with pytest.raises(ValueError):
        webhook_request("Teams", {"url": "x"}, "{}", {}, key="k")


def test_the_prefilter_refuses_only_what_the_query_cannot_match() -> None:
    from collector.core.webhookprefilter import prefilter
    from collector.store.eventrows import event_row
    from dnswatch.selector import parse_selector

    shop, data = event_row(make_event(1, namespace="shop")), event_row(make_event(2, namespace="data"))
    check = prefilter(parse_selector('record.qname = "x" AND source_namespace IN {shop, ci}'))
    assert check(shop) and not check(data)
    domains = prefilter(parse_selector("record.suspicious_domains = evil1.example"))
    assert domains(shop) and not domains(data)  # evil1 / evil2.example
    for unknown in ("source_namespace = sh*", "source_namespace != shop", "record.qname = x",
                    "source_namespace = shop OR host = node-1", "NOT source_namespace = data"):
        assert prefilter(parse_selector(unknown)) is None, unknown
    assert prefilter(None) is None
