"""SecurityEventWebhook manifests read and validated (dnswatch/alerting/webhooks.py): never an error raised,
the problems are conditions naming the field, config values resolved from Secrets and ConfigMaps, and secrets
taken out of text."""

from __future__ import annotations

import pytest

from dnswatch.alerting.webhooks import ValueRef, read_security_event_webhook, redact, resolve_config

SLACK_URL = "https://hooks.slack.example/services/T000/B000/XXXXSECRET"


def manifest(api_version: str = "dnswatch.dev/v1", name: str = "soc", **spec) -> dict:
    spec = {"consumer": "Slack", "config": [{"name": "url", "value": SLACK_URL}], **spec}
    return {"apiVersion": api_version, "kind": "SecurityEventWebhook", "metadata": {"name": name}, "spec": spec}


@pytest.mark.parametrize("api_version", ["dnswatch.dev/v1", "projectcalico.org/v3"])
def test_both_api_versions_are_read_and_state_defaults_to_enabled(api_version):
    webhook = read_security_event_webhook(manifest(api_version, query="source_namespace = shop"))
    assert webhook.valid and webhook.api_version == api_version and webhook.state == "Enabled"
    assert webhook.delivers
    assert webhook.wants({"source_namespace": "shop"}) and not webhook.wants({"source_namespace": "ci"})


def test_an_empty_query_wants_every_event():
    assert read_security_event_webhook(manifest()).wants({"source_namespace": "anything"})


@pytest.mark.parametrize("state, delivers", [("Enabled", True), ("Debug", True), ("Test", False),
                                             ("Disabled", False)])
def test_only_enabled_and_debug_take_events_from_the_store(state, delivers):
    assert read_security_event_webhook(manifest(state=state)).delivers is delivers


@pytest.mark.parametrize("spec, message", [
    ({"consumer": "Teams"}, "spec.consumer: 'Teams' is not one of Slack, Jira, Generic"),
    ({"state": "On"}, "spec.state: 'On' is not one of Enabled, Disabled, Test, Debug"),
    ({"query": "source_namespace = "}, "query: position"),
    ({"config": []}, "spec.config: Slack needs 'url'"),
    ({"config": [{"name": "url", "value": "ftp://x"}]}, "spec.config url: must be an absolute http"),
    ({"config": [{"name": "url"}]}, "spec.config[0]: give value or valueFrom, exactly one"),
    ({"config": [{"name": "url", "valueFrom": {"secretKeyRef": {"name": "s"}}}]},
     "spec.config[0].valueFrom.secretKeyRef: needs name and key"),
    ({"config": [{"name": "url", "value": SLACK_URL}, {"name": "project", "value": "SEC"}]},
     "spec.config: 'project' is not a Slack setting"),
    ({"colour": "red"}, "spec.colour: unknown field"),
])
def test_a_bad_spec_is_a_condition_naming_the_field_and_delivers_nothing(spec, message):
    webhook = read_security_event_webhook(manifest(**spec))
    assert not webhook.valid and not webhook.delivers and not webhook.wants({})
    assert any(condition.message.startswith(message) for condition in webhook.conditions), webhook.conditions


def test_jira_needs_its_project_issue_type_and_credentials():
    webhook = read_security_event_webhook(manifest(consumer="Jira", config=[
        {"name": "url", "value": "https://jira.example"}, {"name": "project", "value": "SEC"}]))
    missing = {condition.message.split("'")[1] for condition in webhook.conditions}
    assert missing == {"issueType", "username", "apiToken"}


def test_config_resolves_from_secrets_and_configmaps_and_names_what_is_missing():
    webhook = read_security_event_webhook(manifest(consumer="Jira", config=[
        {"name": "url", "valueFrom": {"configMapKeyRef": {"name": "jira", "key": "url"}}},
        {"name": "project", "value": "SEC"},
        {"name": "issueType", "value": "Bug"},
        {"name": "username", "valueFrom": {"configMapKeyRef": {"name": "jira", "key": "user"}}},
        {"name": "apiToken", "valueFrom": {"secretKeyRef": {"name": "jira", "key": "token"}}},
    ]))
    assert webhook.valid, webhook.conditions
    objects = {ValueRef("ConfigMap", "jira", "url"): "https://jira.example",
               ValueRef("ConfigMap", "jira", "user"): "soc-bot",
               ValueRef("Secret", "jira", "token"): "tok-123"}
    resolved = resolve_config(webhook, objects.get)
    assert resolved.complete and resolved.values["username"] == "soc-bot"
    assert set(resolved.secrets) == {"https://jira.example", "tok-123"}
    del objects[ValueRef("Secret", "jira", "token")]
    broken = resolve_config(webhook, objects.get)
    assert not broken.complete
    assert broken.conditions[0].message == "config apiToken: Secret jira key token does not exist"


def test_a_url_read_from_a_secret_is_checked_too():
    webhook = read_security_event_webhook(manifest(config=[
        {"name": "url", "valueFrom": {"secretKeyRef": {"name": "slack", "key": "url"}}}]))
    resolved = resolve_config(webhook, lambda ref: "hooks.slack.example/no-scheme")
    assert not resolved.complete and "must be an absolute" in resolved.conditions[0].message


def test_secrets_are_redacted_in_text_and_in_the_shown_spec():
    webhook = read_security_event_webhook(manifest())
    resolved = resolve_config(webhook, lambda ref: None)
    text = f"POST {SLACK_URL} failed: connection reset"
    assert redact(text, resolved.secrets) == "POST [redacted] failed: connection reset"
    assert SLACK_URL not in str(webhook.to_dict())


def test_redaction_takes_the_longest_secret_first():
    assert redact("key=abcdef", ["abc", "abcdef"]) == "key=[redacted]"
