"""deploy/base/crd-securityeventwebhook.yaml: a structural apiextensions.k8s.io/v1 CRD whose schema agrees with
dnswatch/alerting/webhooks.py, checked as tests/collector/test_crd.py checks the GlobalThreatFeed CRD (jsonschema
for the OpenAPI schema, cel-python for its CEL rules, RE2 for its patterns)."""

from __future__ import annotations

import copy
import datetime as dt
import re
from pathlib import Path

import jsonschema
import pytest
import re2
import yaml

from collector.shell.webhookkeeper import WebhookKeeper
from dnswatch.alerting.webhooks import read_security_event_webhook
from tests.collector.test_crd import _CEL, cel_errors, schema_nodes

ROOT = Path(__file__).resolve().parents[2]
CRD = yaml.safe_load((ROOT / "deploy" / "base" / "crd-securityeventwebhook.yaml").read_text())
VERSION = CRD["spec"]["versions"][0]
SCHEMA = VERSION["schema"]["openAPIV3Schema"]


def schema_errors(manifest: dict) -> list[str]:
    validator = jsonschema.Draft4Validator(SCHEMA)
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(manifest)]
    return errors + cel_errors(SCHEMA, manifest)


def manifest(**spec) -> dict:
    body = {"consumer": "Slack", "state": "Enabled", "description": "the SOC's channel",
            "query": "source_namespace = shop",
            "config": [{"name": "url", "valueFrom": {"secretKeyRef": {"name": "soc", "key": "slack"}}}]}
    body.update(spec)
    return {"apiVersion": "dnswatch.dev/v1", "kind": "SecurityEventWebhook", "metadata": {"name": "soc"},
            "spec": {key: value for key, value in body.items() if value is not None}}


def model_accepts(obj: dict) -> bool:
    return read_security_event_webhook(obj).valid


# ---------------------------------------------------------------------------------------------- the CRD itself


def test_is_a_cluster_scoped_v1_crd_with_a_status_subresource_like_the_others():
    spec = CRD["spec"]
    assert CRD["metadata"]["name"] == f"{spec['names']['plural']}.{spec['group']}" == "securityeventwebhooks.dnswatch.dev"
    assert spec["scope"] == "Cluster"
    for other in ("crd-globalthreatfeed.yaml", "crd-alertexception.yaml"):
        assert yaml.safe_load((ROOT / "deploy" / "base" / other).read_text())["spec"]["scope"] == spec["scope"]
    assert spec["names"]["kind"] == "SecurityEventWebhook" and spec["names"]["listKind"] == "SecurityEventWebhookList"
    assert [(v["name"], v["served"], v["storage"]) for v in spec["versions"]] == [("v1", True, True)]
    assert VERSION["subresources"] == {"status": {}}


def test_printer_columns_name_fields_of_the_schema():
    columns = {c["name"]: c for c in VERSION["additionalPrinterColumns"]}
    assert [c["name"] for c in VERSION["additionalPrinterColumns"] if not c.get("priority")] == [
        "Consumer", "State", "Last Delivery", "Last Error", "Age"]
    assert columns["Age"]["jsonPath"] == ".metadata.creationTimestamp" and columns["Last Delivery"]["type"] == "date"
    for column in columns.values():
        if column["jsonPath"].startswith(".metadata."):
            continue
        node = SCHEMA
        for part in column["jsonPath"].lstrip(".").split("."):
            name, _, index = part.partition("[")
            node = node["properties"][name]
            if index:
                node = node["items"]
        assert node["type"] == {"date": "string"}.get(column["type"], column["type"]), column


def test_schema_is_structural_and_its_rules_compile():
    rules = 0
    for path, node, in_junctor in schema_nodes(SCHEMA):
        if in_junctor:
            assert not {"type", "default", "description", "nullable", "additionalProperties"} & set(node), path
        else:
            assert "type" in node or path == "", f"{path} has no type"
            assert "additionalProperties" not in node, path  # mutually exclusive with properties for the API
        for branch in node.get("oneOf") or []:
            assert set(branch.get("required") or []) <= set(node.get("properties") or {}), path
        for name in node.get("required") or []:
            assert name in (node.get("properties") or {}) or in_junctor, f"{path} requires undeclared {name}"
        if "pattern" in node:
            re2.compile(node["pattern"])
        for rule in node.get("x-kubernetes-validations") or []:
            _CEL.compile(rule["rule"])
            assert rule.get("message"), path
            rules += 1
    assert rules >= 4
    config = SCHEMA["properties"]["spec"]["properties"]["config"]
    assert config["x-kubernetes-list-type"] == "map" and config["x-kubernetes-list-map-keys"] == ["name"]


def test_the_enums_are_the_models():
    from dnswatch.alerting.webhooks import CONSUMERS, OPTIONAL_CONFIG, REQUIRED_CONFIG, STATES

    spec = SCHEMA["properties"]["spec"]
    assert spec["properties"]["consumer"]["enum"] == list(CONSUMERS)
    assert spec["properties"]["state"]["enum"] == list(STATES)
    assert spec["properties"]["state"]["default"] == read_security_event_webhook(manifest(state=None)).state
    names = {name for table in (REQUIRED_CONFIG, OPTIONAL_CONFIG) for names in table.values() for name in names}
    assert set(spec["properties"]["config"]["items"]["properties"]["name"]["enum"]) == names


# ---------------------------------------------------------------------------------------------- agreement


VALID = {
    "slack": manifest(),
    "slack in place, no query, no state": manifest(query=None, state=None,
                                                   config=[{"name": "url", "value": "https://hooks.example/x"}]),
    "jira": manifest(consumer="Jira", config=[
        {"name": "url", "value": "https://jira.example"},
        {"name": "project", "valueFrom": {"configMapKeyRef": {"name": "jira", "key": "project"}}},
        {"name": "issueType", "value": "Bug"}, {"name": "username", "value": "soc-bot"},
        {"name": "apiToken", "valueFrom": {"secretKeyRef": {"name": "jira", "key": "token"}}},
        {"name": "caCert", "valueFrom": {"configMapKeyRef": {"name": "jira", "key": "ca.crt"}}}]),
    "generic with a token, debugging": manifest(consumer="Generic", state="Debug", config=[
        {"name": "url", "value": "http://siem.example:8080/in"}, {"name": "token", "value": "t"}]),
    "disabled": manifest(state="Disabled"),
    "test": manifest(state="Test"),
}


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_examples_pass_both(name):
    assert schema_errors(VALID[name]) == []
    assert model_accepts(VALID[name]), read_security_event_webhook(VALID[name]).conditions


INVALID = {
    # name: (manifest, the field the schema names, what the model says)
    "a consumer it does not know": (manifest(consumer="Teams"), "spec.consumer", "spec.consumer"),
    "a state it does not know": (manifest(state="On"), "spec.state", "spec.state"),
    "no consumer": (manifest(consumer=None), "spec: 'consumer' is a required property", "spec.consumer"),
    "slack without url": (manifest(config=[{"name": "caCert", "value": "x"}]), "Slack needs url", "needs 'url'"),
    "jira without project": (manifest(consumer="Jira", config=[
        {"name": "url", "value": "https://jira.example"}, {"name": "issueType", "value": "Bug"},
        {"name": "username", "value": "u"}, {"name": "apiToken", "value": "t"}]), "Jira needs", "needs 'project'"),
    "a token for slack": (manifest(config=[{"name": "url", "value": "https://h.example"},
                                           {"name": "token", "value": "t"}]), "Slack needs url and takes only",
                          "'token' is not a Slack setting"),
    "a config name nobody takes": (manifest(config=[{"name": "url", "value": "https://h.example"},
                                                    {"name": "channel", "value": "#soc"}]),
                                   "spec.config.1.name", "'channel' is not a Slack setting"),
    "value and valueFrom": (manifest(config=[{"name": "url", "value": "https://h.example",
                                              "valueFrom": {"secretKeyRef": {"name": "a", "key": "b"}}}]),
                            "spec.config.0", "give value or valueFrom, exactly one"),
    "neither value nor valueFrom": (manifest(config=[{"name": "url"}]), "spec.config.0",
                                    "give value or valueFrom, exactly one"),
    "a url that is no url": (manifest(config=[{"name": "url", "value": "hooks.example/x"}]),
                             "config url: must be an absolute", "spec.config url: must be an absolute"),
    "a valueFrom with both refs": (manifest(config=[{"name": "url", "valueFrom": {
        "secretKeyRef": {"name": "a", "key": "b"}, "configMapKeyRef": {"name": "a", "key": "b"}}}]),
        "spec.config.0.valueFrom", "must hold exactly one of"),
    "a ref without its key": (manifest(config=[{"name": "url", "valueFrom": {"secretKeyRef": {"name": "a"}}}]),
                              "spec.config.0.valueFrom.secretKeyRef", "needs name and key"),
    "a description too long": (manifest(description="x" * 257), "spec.description", "spec.description"),
}


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_examples_fail_both_naming_the_field(name):
    obj, schema_says, model_says = INVALID[name]
    errors = schema_errors(obj)
    assert any(schema_says in error for error in errors), errors
    conditions = read_security_event_webhook(obj).conditions
    assert any(model_says in condition.message for condition in conditions), conditions


def test_a_query_that_does_not_parse_is_only_found_by_the_collector():
    obj = manifest(query="source_namespace =")
    assert schema_errors(obj) == []
    assert [c.type for c in read_security_event_webhook(obj).conditions] == ["InvalidQuery"]


def test_status_schema_holds_what_the_collector_writes():
    keeper = WebhookKeeper()
    keeper.replace({"soc": manifest(), "broken": manifest(state="Bogus")})
    at = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.timezone.utc)
    keeper.record_delivery("soc", at=at, ok=True)
    keeper.record_delivery("soc", at=at, ok=False, error="HTTP 503", pending=7, dead_letters=2)
    for name in ("soc", "broken"):
        status = keeper.status(name)
        assert schema_errors({**manifest(), "status": status}) == [], status
    assert set(keeper.status("soc")) <= set(SCHEMA["properties"]["status"]["properties"])
    negative = copy.deepcopy(manifest())
    negative["status"] = {"pending": -1}
    assert schema_errors(negative)



def documented_manifests() -> list[dict]:
    """The SecurityEventWebhook manifests of docs/webhooks.md's YAML blocks, of our apiVersion."""
    found = []
    for block in re.findall(r"```yaml\n(.*?)```", (ROOT / "docs" / "webhooks.md").read_text(), flags=re.S):
        for obj in yaml.safe_load_all(block):
            if isinstance(obj, dict) and obj.get("kind") == "SecurityEventWebhook":
                found.append(obj)
    return found


def test_every_documented_webhook_passes_both():
    manifests = documented_manifests()
    assert {m["spec"]["consumer"] for m in manifests} == {"Slack", "Jira", "Generic"}
    for obj in manifests:
        ours = {**obj, "apiVersion": "dnswatch.dev/v1"}  # Calico's passes our schema as it is
        assert schema_errors(ours) == [], obj["metadata"]["name"]
        assert model_accepts(obj), read_security_event_webhook(obj).conditions
