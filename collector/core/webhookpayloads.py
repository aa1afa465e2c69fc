"""What a SecurityEventWebhook sends for one event (pure; docs/webhooks.md, "Delivery").

    request = webhook_request("Slack", values, body, event, key="soc-slack:6b09...:6", ui_url=None)
    request.url, request.headers, request.content   # one POST

- **Slack**: a Block Kit message to the incoming-webhook `url`: what was looked up (and what matched, when that
  was a CNAME target or an answer address), the pod and namespace, the feeds, the node, the count and the times,
  and a link to the event when the collector knows its UI (`--ui-url`).
- **Jira**: an issue, `POST {url}/rest/api/2/issue` with basic authentication (`username:apiToken`), in project
  `project` with issue type `issueType`, a one-line summary and a description holding the same facts.
- **Generic**: the event's JSON exactly as stored, with `Authorization: Bearer {token}` when `token` is set.

Every request carries `Idempotency-Key`, one per (webhook, event id, count): a receiver that must not act twice
on a delivery sent again (delivery is at least once) drops a key it has seen.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dnswatch.alerting.webhooks import REDACTED, redact

__all__ = ["WebhookRequest", "idempotency_key", "sample_event", "webhook_request"]

_SLACK_HEADER_MAX = 150  # Block Kit: a header's plain_text
_SLACK_FIELD_MAX = 2000  # Block Kit: a section field's text
_JIRA_SUMMARY_MAX = 255
_SECRET_HEADERS = ("authorization",)


@dataclass(frozen=True)
class WebhookRequest:
    """One HTTP POST."""

    url: str
    headers: tuple[tuple[str, str], ...]
    content: bytes

    def redacted(self, secrets: Iterable[str]) -> str:
        """The request as Debug logs it: URL, headers and body with every secret taken out, and the
        Authorization header's value whatever it holds."""
        secrets = tuple(secrets)
        headers = ", ".join(f"{name}: {REDACTED if name.lower() in _SECRET_HEADERS else redact(value, secrets)}"
                            for name, value in self.headers)
        body = redact(self.content.decode("utf-8", errors="replace"), secrets)
        return f"POST {redact(self.url, secrets)} [{headers}] {body}"


def idempotency_key(webhook: str, event_id: str, count: int) -> str:
    """Unique per delivery: the webhook, the event and the emission (a grown event is a new delivery)."""
    return f"{webhook}:{event_id}:{count}"


def webhook_request(consumer: str, values: Mapping[str, str], body: str, event: Mapping[str, Any], *,
                    key: str, ui_url: str | None = None) -> WebhookRequest:
    """The POST that delivers `event` (parsed from `body`, its JSON as stored) to a webhook of `consumer` with
    the resolved config `values`. ValueError for a consumer this collector does not know."""
    headers: list[tuple[str, str]] = [("Content-Type", "application/json"), ("Idempotency-Key", key)]
    link = event_link(ui_url, event)
    if consumer == "Slack":
        return WebhookRequest(values["url"], tuple(headers), _json(slack_message(event, link)))
    if consumer == "Jira":
        credentials = base64.b64encode(f"{values['username']}:{values['apiToken']}".encode()).decode("ascii")
        headers.append(("Authorization", f"Basic {credentials}"))
        return WebhookRequest(values["url"].rstrip("/") + "/rest/api/2/issue", tuple(headers),
                              _json(jira_issue(event, values["project"], values["issueType"], link)))
    if consumer == "Generic":
        if values.get("token"):
            headers.append(("Authorization", f"Bearer {values['token']}"))
        return WebhookRequest(values["url"], tuple(headers), body.encode("utf-8"))
    raise ValueError(f"no payload for consumer {consumer!r}")


def event_link(ui_url: str | None, event: Mapping[str, Any]) -> str | None:
    """`{ui_url}/events/{id}`, or None without a UI."""
    if not ui_url or not isinstance(event.get("id"), str):
        return None
    return f"{ui_url.rstrip('/')}/events/{event['id']}"


# -- the facts of an event, as people read them ------------------------------------------------------------


def looked_up(event: Mapping[str, Any]) -> str:
    """The question, and what matched in parentheses when it was not the question itself (a CNAME target or an
    answer address), as `dnswatch events list` shows it."""
    record = _record(event)
    qname = _text(record.get("qname"))
    matched = [m for m in _texts(record.get("suspicious_domains")) + _texts(record.get("suspicious_ips"))
               if m != qname]
    if qname == "-" and matched:
        qname, matched = matched[0], matched[1:]
    return qname + (f" ({', '.join(matched)})" if matched else "")


def _source(event: Mapping[str, Any]) -> str:
    namespace, name = _text(event.get("source_namespace")), _text(event.get("source_name"))
    if namespace == "-" and name == "-":
        return _text(event.get("source_ip"))
    if name == "-":
        return f"{namespace}/{_text(event.get('source_name_aggr'))}"
    return f"{namespace}/{name}"


def slack_message(event: Mapping[str, Any], link: str | None) -> dict[str, Any]:
    """A Block Kit message: a header naming what was looked up, the facts as fields, the times, the link."""
    record = _record(event)
    what = looked_up(event)
    feeds = ", ".join(_texts(record.get("feeds"))) or "-"
    facts = [("Looked up", f"`{_mrkdwn(what)}` {_mrkdwn(_text(record.get('qtype')))}".rstrip()),
             ("Pod", _mrkdwn(_source(event))), ("Namespace", _mrkdwn(_text(event.get("source_namespace")))),
             ("Feeds", _mrkdwn(feeds)), ("Node", _mrkdwn(_text(event.get("host")))),
             ("Client", _mrkdwn(_text(event.get("source_ip")))), ("Count", _text(record.get("count")))]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(f"Suspicious DNS query: {what}",
                                                                         _SLACK_HEADER_MAX)}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": _cut(f"*{name}*\n{value}", _SLACK_FIELD_MAX)}
                                       for name, value in facts]},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _mrkdwn(
            f"first seen {_text(record.get('first_seen'))}, last seen {_text(record.get('last_seen'))}; "
            f"event {_text(event.get('id'))}")}]},
    ]
    if link:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"<{link}|Open the event>"}})
    fallback = f"Suspicious DNS query: {_source(event)} looked up {what} (feeds {feeds}) on {_text(event.get('host'))}"
    return {"text": fallback, "blocks": blocks}


def jira_issue(event: Mapping[str, Any], project: str, issue_type: str, link: str | None) -> dict[str, Any]:
    """The issue's fields: project key, issue type name, summary, description (Jira's wiki text)."""
    record = _record(event)
    feeds = ", ".join(_texts(record.get("feeds"))) or "-"
    summary = _cut(f"Suspicious DNS query: {_source(event)} looked up {looked_up(event)}", _JIRA_SUMMARY_MAX)
    lines = [_text(event.get("description")), "",
             f"* Looked up: {looked_up(event)} {_text(record.get('qtype'))}".rstrip(),
             f"* Pod: {_source(event)}", f"* Namespace: {_text(event.get('source_namespace'))}",
             f"* Feeds: {feeds}", f"* Node: {_text(event.get('host'))}",
             f"* Client: {_text(event.get('source_ip'))}", f"* Count: {_text(record.get('count'))}",
             f"* First seen: {_text(record.get('first_seen'))}", f"* Last seen: {_text(record.get('last_seen'))}",
             f"* Event: {_text(event.get('id'))}"]
    if link:
        lines.append(f"* Link: {link}")
    return {"fields": {"project": {"key": project}, "issuetype": {"name": issue_type}, "summary": summary,
                       "description": "\n".join(lines)}}


def sample_event(webhook: str, now: dt.datetime) -> dict[str, Any]:
    """The event a Test sends: shaped as a real one (docs/event.md), saying it is a test."""
    stamp = now.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    return {
        "id": f"{int(now.timestamp()):08x}" + "0" * 24,
        "time": stamp, "type": "gtf_suspicious_dns_query", "severity": 100, "origin": "Suspicious DNS Query",
        "name": "Suspicious DNS Query",
        "description": f"a test of the SecurityEventWebhook {webhook}: shop/web-7d4b9c-x2x1 queried the domain "
                       "name evil.example from global threat feed(s) c2",
        "host": "node-1", "source_ip": "10.244.1.10", "source_namespace": "shop", "source_name": "web-7d4b9c-x2x1",
        "source_name_aggr": "web-7d4b9c-*", "source_labels": {"app": "web"},
        "source_workload": {"kind": "Deployment", "name": "web"}, "attack_vector": "Network",
        "mitre_ids": ["T1041"], "mitre_tactic": "Exfiltration",
        "mitigations": ["Create a global network policy to prevent traffic from this IP address"],
        "record": {"feeds": ["c2"], "feed_labels": {"c2": {}}, "suspicious_domains": ["evil.example"],
                   "suspicious_ips": [],
                   "matches": [{"name": "evil.example", "feed": "c2", "entry": "evil.example",
                                "section": "question", "feed_version": "1", "line": 1, "line_text": None}],
                   "qname": "evil.example", "qtype": "A", "rcode": "NOERROR", "server_ip": "10.96.0.10",
                   "answers": ["evil.example A 198.51.100.7"], "count": 1, "first_seen": stamp, "last_seen": stamp},
    }


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _record(event: Mapping[str, Any]) -> Mapping[str, Any]:
    record = event.get("record")
    return record if isinstance(record, Mapping) else {}


def _text(value: Any) -> str:
    if value is None or value == "":
        return "-"
    return str(value)


def _texts(values: Any) -> list[str]:
    return [str(value) for value in values] if isinstance(values, list) else []


def _mrkdwn(text: str) -> str:
    """Slack's three control characters escaped (its mrkdwn reads <...> as links and mentions)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"
