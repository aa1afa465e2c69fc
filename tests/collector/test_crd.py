"""deploy/base/crd-globalthreatfeed.yaml: a structural apiextensions.k8s.io/v1 CRD whose schema agrees with feedspec.

The openAPIV3Schema is checked as the API server would use it: as a JSON schema (jsonschema, Draft 4 is the
dialect OpenAPI v3.0 builds on), plus its CEL rules (`x-kubernetes-validations`, evaluated with cel-python),
with the patterns compiled by RE2 (google-re2), the engine Go's regexp shares its syntax with.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import celpy
import jsonschema
import pytest
import re2
import yaml

from dnswatch.feeds.spec import FeedSpecError, feed_spec_from_manifest
from dnswatch.feeds.status import ErrorCondition, FeedStatus

ROOT = Path(__file__).resolve().parents[2]
CRD = yaml.safe_load((ROOT / "deploy" / "base" / "crd-globalthreatfeed.yaml").read_text())
VERSION = CRD["spec"]["versions"][0]
SCHEMA = VERSION["schema"]["openAPIV3Schema"]
JUNCTORS = ("oneOf", "anyOf", "allOf", "not")
_CEL = celpy.Environment()


def schema_nodes(node: dict, path: str = "", in_junctor: bool = False):
    """(path, schema node, inside a oneOf/anyOf/allOf/not) for every node of a schema."""
    yield path, node, in_junctor
    for name, child in (node.get("properties") or {}).items():
        yield from schema_nodes(child, f"{path}.{name}", in_junctor)
    if isinstance(node.get("items"), dict):
        yield from schema_nodes(node["items"], f"{path}[]", in_junctor)
    if isinstance(node.get("additionalProperties"), dict):
        yield from schema_nodes(node["additionalProperties"], f"{path}{{}}", in_junctor)
    for junctor in JUNCTORS:
        for index, child in enumerate(node.get(junctor) or ([node[junctor]] if junctor == "not" and junctor in node else [])):
            yield from schema_nodes(child, f"{path}/{junctor}[{index}]", True)


def cel_errors(node: dict, value, path: str = "") -> list[str]:
    """The messages of the CEL rules this value breaks, walking the schema as the API server does."""
    if value is None:
        return []
    errors = []
    for rule in node.get("x-kubernetes-validations") or []:
        program = _CEL.program(_CEL.compile(rule["rule"]))
        try:
            ok = program.evaluate({"self": celpy.json_to_cel(value)})
        except celpy.CELEvalError as error:
            ok = False
            rule = {**rule, "message": f"{rule.get('message')} ({error.args[0]})"}
        if isinstance(ok, Exception) or not bool(ok):  # cel-python may return an evaluation error as a value
            errors.append(f"{path or '<root>'}: {rule['message']}")
    if isinstance(value, dict):
        for name, child in (node.get("properties") or {}).items():
            errors += cel_errors(child, value.get(name), f"{path}.{name}")
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        for index, item in enumerate(value):
            errors += cel_errors(node["items"], item, f"{path}[{index}]")
    return errors


def schema_errors(manifest: dict, cel: bool = True) -> list[str]:
    validator = jsonschema.Draft4Validator(SCHEMA)
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(manifest)]
    return errors + (cel_errors(SCHEMA, manifest) if cel else [])


def feedspec_accepts(manifest: dict) -> bool:
    try:
        feed_spec_from_manifest(manifest)
    except FeedSpecError:
        return False
    return True


# ---------------------------------------------------------------------------------------------- the CRD itself


def test_is_a_cluster_scoped_v1_crd_with_a_status_subresource():
    assert CRD["apiVersion"] == "apiextensions.k8s.io/v1" and CRD["kind"] == "CustomResourceDefinition"
    spec = CRD["spec"]
    assert CRD["metadata"]["name"] == f"{spec['names']['plural']}.{spec['group']}" == "globalthreatfeeds.dnswatch.dev"
    assert spec["scope"] == "Cluster"
    assert spec["names"]["kind"] == "GlobalThreatFeed" and spec["names"]["listKind"] == "GlobalThreatFeedList"
    assert [(v["name"], v["served"], v["storage"]) for v in spec["versions"]] == [("v1", True, True)]
    assert VERSION["subresources"] == {"status": {}}


def test_printer_columns_name_fields_of_the_schema():
    columns = {c["name"]: c for c in VERSION["additionalPrinterColumns"]}
    assert {"Content", "Mode", "Entries", "Last Sync", "Age"} <= set(columns)
    assert columns["Age"]["jsonPath"] == ".metadata.creationTimestamp" and columns["Age"]["type"] == "date"
    assert columns["Last Sync"]["type"] == "date"
    for column in columns.values():
        assert column["type"] in ("string", "integer", "number", "boolean", "date")
        if column["jsonPath"].startswith(".metadata."):
            continue
        node = SCHEMA
        for part in column["jsonPath"].lstrip(".").split("."):
            node = node["properties"][part]
        assert node["type"] == {"date": "string"}.get(column["type"], column["type"]), column


def test_schema_is_structural():
    for path, node, in_junctor in schema_nodes(SCHEMA):
        if in_junctor:
            # Inside a junctor only value validations; every field it names is declared outside too.
            assert not {"type", "default", "description", "nullable", "additionalProperties"} & set(node), path
            assert not [k for k in node if k.startswith("x-kubernetes-")], path
        else:
            assert "type" in node or path == "", f"{path} has no type"
            assert not ("properties" in node and "additionalProperties" in node), path
            assert not isinstance(node.get("additionalProperties"), bool), path
        for junctor in ("oneOf", "anyOf", "allOf"):
            for branch in node.get(junctor) or []:
                assert set(branch.get("properties") or {}) <= set(node.get("properties") or {}), path
                assert set(branch.get("required") or []) <= set(node.get("properties") or {}), path
        for name in node.get("required") or []:
            assert name in (node.get("properties") or {}) or in_junctor, f"{path} requires undeclared {name}"
    assert SCHEMA["type"] == "object"


def test_defaults_are_valid_and_match_feedspec():
    spec = SCHEMA["properties"]["spec"]["properties"]
    for path, node, in_junctor in schema_nodes(SCHEMA):
        if "default" in node:
            assert not in_junctor
            jsonschema.Draft4Validator(node).validate(node["default"])
            assert not cel_errors(node, node["default"]), path
    parsed = feed_spec_from_manifest(manifest())
    assert spec["content"]["default"] == "IPSet"
    assert (spec["mode"]["default"], spec["feedType"]["default"]) == ("Enabled", "Custom")
    assert spec["pull"]["properties"]["period"]["default"] == "24h" and parsed.period_seconds == 24 * 3600
    assert spec["matchSubdomains"]["default"] is False
    assert spec["severity"]["default"] == parsed.severity == 100


def test_patterns_are_re2_and_cel_rules_compile():
    rules = 0
    for path, node, _ in schema_nodes(SCHEMA):
        if "pattern" in node:
            re2.compile(node["pattern"])
        for rule in node.get("x-kubernetes-validations") or []:
            _CEL.compile(rule["rule"])
            assert rule.get("message"), path
            rules += 1
    assert rules >= 6


# ---------------------------------------------------------------------------------------------- agreement


def manifest(**changes) -> dict:
    """A valid manifest; `changes` maps a dotted path under spec to a new value (None deletes it)."""
    obj = {"apiVersion": "dnswatch.dev/v1", "kind": "GlobalThreatFeed", "metadata": {"name": "c2"},
           "spec": {"content": "DomainNameSet", "pull": {"period": "24h", "http": {"url": "https://f.example/c2"}}}}  # fmt: skip
    for path, value in changes.items():
        parts = path.split("__")
        node = obj["spec"]
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(parts[-1], None)
        else:
            node[parts[-1]] = value
    return obj


def demo_manifests() -> list[dict]:
    docs = [d for d in yaml.safe_load_all((ROOT / "pcaps" / "demo-feeds.yaml").read_text()) if d]
    for doc in docs:
        doc["spec"]["pull"]["http"]["url"] = "https://feeds.example/" + doc["spec"]["pull"]["http"]["url"][5:]
    return docs


SECRET = {"secretKeyRef": {"name": "feed-token", "key": "token", "optional": True}}
CONFIG = {"configMapKeyRef": {"name": "feeds", "key": "user"}}

VALID = {
    "plain": manifest(),
    "ipset default": manifest(content=None),
    "every field": manifest(mode="Disabled", description="x" * 256, feedType="Builtin", matchSubdomains=True,
                            severity=0, pull__period="1h30m", globalNetworkSet={"labels": {"a": "b"}}),  # fmt: skip
    "period 300s": manifest(pull__period="300s"),
    "period 5m": manifest(pull__period="5m"),
    "http url": manifest(pull__http__url="http://f.example:8080/list?x=1"),
    "headers": manifest(pull__http__headers=[{"name": "X-User", "value": "alice"},
                                             {"name": "Authorization", "valueFrom": SECRET},
                                             {"name": "X-Cm", "valueFrom": CONFIG},
                                             {"name": "X-Empty", "value": "", "valueFrom": SECRET}]),  # fmt: skip
    "newlineDelimited": manifest(pull__http__format={"newlineDelimited": {}}),
    "json": manifest(pull__http__format={"json": {"path": "$.data[*].domain"}}),
    "csv by number": manifest(pull__http__format={"csv": {"fieldNum": 2, "columnDelimiter": ";", "commentDelimiter": "#"}}),
    "csv by name": manifest(pull__http__format={"csv": {"fieldName": "domain", "header": True, "recordSize": 3}}),
    "json with a filter": manifest(pull__http__format={"json": {"path": "$.*[?(@.ioc_type=='domain')].ioc_value"}}),
    "jsonLines": manifest(content="IPSet", pull__http__format={"jsonLines": {"key": "cidr"}}),
    "misp": manifest(pull__http__format={"misp": {}}),
    "stix": manifest(pull__http__format={"stix": {}}),
    "taxii": manifest(pull__http=None, pull__taxii={"url": "https://taxii.example/api1/", "collection": "c2"}),
    "taxii with auth": manifest(pull__http=None, pull__taxii={
        "url": "https://taxii.example/api1/", "collection": "91a7b528-80eb-42ed-a74d-c6fbd5a26116",
        "auth": {"headers": [{"name": "Authorization", "valueFrom": SECRET}]}}),
}

INVALID = {
    "bad content": manifest(content="Domains"),
    "bad mode": manifest(mode="On"),
    "bad feedType": manifest(feedType="Other"),
    "description too long": manifest(description="x" * 257),
    "matchSubdomains not a boolean": manifest(matchSubdomains="yes"),
    "severity over 100": manifest(severity=101),
    "severity negative": manifest(severity=-1),
    "severity not a number": manifest(severity="high"),
    "no url": manifest(pull__http__url=None),
    "url ftp://": manifest(pull__http__url="ftp://f.example/c2"),
    "url without host": manifest(pull__http__url="https://"),
    "url with space": manifest(pull__http__url="https://f.example/a b"),
    "period not a duration": manifest(pull__period="daily"),
    "period 1m": manifest(pull__period="1m"),
    "period 299s": manifest(pull__period="299s"),
    "period negative": manifest(pull__period="-1h"),
    "both value and valueFrom": manifest(pull__http__headers=[{"name": "A", "value": "x", "valueFrom": SECRET}]),
    "neither value nor valueFrom": manifest(pull__http__headers=[{"name": "A"}]),
    "empty value alone": manifest(pull__http__headers=[{"name": "A", "value": ""}]),
    "two key refs": manifest(pull__http__headers=[{"name": "A", "valueFrom": {**SECRET, **CONFIG}}]),
    "empty valueFrom": manifest(pull__http__headers=[{"name": "A", "valueFrom": {}}]),
    "key ref without key": manifest(pull__http__headers=[{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s"}}}]),
    "bad header name": manifest(pull__http__headers=[{"name": "Bad Name", "value": "x"}]),
    "header value with a line break": manifest(pull__http__headers=[{"name": "A", "value": "x\r\nEvil: 1"}]),
    "two formats": manifest(pull__http__format={"json": {"path": "$.a"}, "csv": {"fieldNum": 0}}),
    "json without path": manifest(pull__http__format={"json": {}}),
    "jsonLines without key": manifest(pull__http__format={"jsonLines": {}}),
    "jsonLines empty key": manifest(pull__http__format={"jsonLines": {"key": ""}}),
    "jsonLines key not a string": manifest(pull__http__format={"jsonLines": {"key": 7}}),
    "stix and misp": manifest(pull__http__format={"stix": {}, "misp": {}}),
    "http and taxii": manifest(pull__taxii={"url": "https://taxii.example/api1/", "collection": "c2"}),
    "taxii without collection": manifest(pull__http=None, pull__taxii={"url": "https://taxii.example/api1/"}),
    "taxii empty collection": manifest(pull__http=None, pull__taxii={"url": "https://taxii.example/", "collection": ""}),
    "taxii ftp url": manifest(pull__http=None, pull__taxii={"url": "ftp://taxii.example/", "collection": "c2"}),
    "taxii header without value": manifest(pull__http=None, pull__taxii={
        "url": "https://taxii.example/api1/", "collection": "c2", "auth": {"headers": [{"name": "A"}]}}),
    "csv without a field": manifest(pull__http__format={"csv": {"header": True}}),
    "csv with both fields": manifest(pull__http__format={"csv": {"fieldNum": 1, "fieldName": "d", "header": True}}),
    "csv fieldName without header": manifest(pull__http__format={"csv": {"fieldName": "d"}}),
    "csv negative fieldNum": manifest(pull__http__format={"csv": {"fieldNum": -1}}),
    "csv long delimiter": manifest(pull__http__format={"csv": {"fieldNum": 0, "columnDelimiter": "ab"}}),
    "csv comment is the column delimiter": manifest(pull__http__format={"csv": {"fieldNum": 0, "commentDelimiter": ","}}),
    "csv recordSize and no validation": manifest(
        pull__http__format={"csv": {"fieldNum": 0, "recordSize": 2, "disableRecordSizeValidation": True}}
    ),
}


@pytest.mark.parametrize("name", range(3), ids=lambda i: f"demo-{i}")
def test_the_demo_manifests_with_https_urls_are_valid(name):
    doc = demo_manifests()[name]
    assert schema_errors(doc) == []
    assert feedspec_accepts(doc)


@pytest.mark.parametrize("name", list(VALID))
def test_valid_examples_pass_both(name):
    assert schema_errors(VALID[name]) == []
    feed_spec_from_manifest(VALID[name])


def test_a_push_feed_passes_both_where_the_collector_reads_it():
    push = manifest(pull=None)
    assert schema_errors(push) == []
    assert feed_spec_from_manifest(push, allow_push=True).pushed
    assert not feedspec_accepts(push)  # the agent's --feed-manifest has nowhere to get its set from


@pytest.mark.parametrize("name", list(INVALID))
def test_invalid_examples_fail_both(name):
    assert schema_errors(INVALID[name]), f"the CRD accepts {name}"
    assert not feedspec_accepts(INVALID[name]), f"feedspec accepts {name}"


@pytest.mark.parametrize(
    "name", ["bad content", "description too long", "url ftp://", "both value and valueFrom", "two formats"]
)
def test_the_openapi_schema_alone_rejects_the_common_mistakes(name):
    # Without CEL: what an older API server, kubeconform or an editor's YAML schema would already catch.
    assert schema_errors(INVALID[name], cel=False)


def test_period_minimum_is_a_cel_rule():
    assert not schema_errors(INVALID["period 1m"], cel=False)
    assert schema_errors(INVALID["period 1m"]) == [".spec.pull.period: must be at least 5m"]


def test_unknown_fields_are_pruned_by_the_server_but_refused_in_files():
    typo = manifest(matchSubdomain=True)
    assert schema_errors(typo) == []  # the API server drops the field (structural pruning)
    assert not feedspec_accepts(typo)  # a file with the typo is refused, naming the field


def pruned(node: dict, value):
    """`value` as the API server stores it: fields the structural schema does not list are dropped."""
    if isinstance(value, dict) and "properties" in node:
        return {k: pruned(node["properties"][k], v) for k, v in value.items() if k in node["properties"]}
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        return [pruned(node["items"], item) for item in value]
    return value


def test_status_schema_keeps_every_field_of_an_error_condition():
    # A field the schema does not list would be pruned by the API server on every status write.
    status = FeedStatus(last_successful_sync="2026-11-27T20:00:00Z",
                        error_conditions=(ErrorCondition("PullFailed", "HTTP 503", 4, "2026-11-27T21:53:31Z"),
                                          ErrorCondition("SuspectBody", "a web page", 1, None))).to_dict()
    assert status["errorConditions"][0] == {"type": "PullFailed", "message": "HTTP 503", "count": 4,
                                            "lastTime": "2026-11-27T21:53:31Z"}
    assert pruned(SCHEMA, {**manifest(), "status": status})["status"] == status
    assert schema_errors({**manifest(), "status": status}) == []
    zero = copy.deepcopy(status)
    zero["errorConditions"][0]["count"] = 0
    assert schema_errors({**manifest(), "status": zero})


def test_status_schema_holds_what_the_collector_writes():
    status = FeedStatus(
        last_successful_sync="2026-11-27T21:53:31Z",
        error_conditions=tuple(ErrorCondition(f"Type{i}", f"attempt {i}", i + 1, "2026-11-27T21:53:31Z")
                               for i in range(10)),
        entries=1200,
        rejected_lines=3,
        sha256="ab" * 32,
        version=7,
    ).to_dict()
    obj = {**manifest(), "status": status}
    assert schema_errors(obj) == []
    first = {k: v for k, v in FeedStatus().to_dict().items() if v is not None}  # a merge patch drops nulls
    assert schema_errors({**manifest(), "status": first}) == []
    too_many = copy.deepcopy(obj)
    too_many["status"]["errorConditions"].append({"type": "PullFailed", "message": "one more"})
    assert schema_errors(too_many)
    negative = {**manifest(), "status": {"entries": -1}}
    assert schema_errors(negative)


def documented_manifests() -> list[dict]:
    """The GlobalThreatFeed manifests of the docs' YAML blocks (docs/feeds.md, docs/globalthreatfeed.md)."""
    found = []
    for doc in ("feeds.md", "globalthreatfeed.md"):
        text = (ROOT / "docs" / doc).read_text()
        for block in re.findall(r"```yaml\n(.*?)```", text, flags=re.S):
            obj = yaml.safe_load(block)
            if isinstance(obj, dict) and obj.get("kind") == "GlobalThreatFeed":
                found.append(obj)
    return found


def test_every_documented_manifest_passes_both():
    manifests = documented_manifests()
    pulls = [m["spec"]["pull"] for m in manifests if "pull" in m["spec"]]
    formats = {next(iter(pull["http"].get("format", {"newlineDelimited": {}}))) for pull in pulls if "http" in pull}
    assert {"json", "csv", "jsonLines", "misp", "stix"} <= formats  # one manifest per structured format at least
    assert any("taxii" in pull for pull in pulls)
    assert len(pulls) < len(manifests)  # and a push feed
    for obj in manifests:
        assert schema_errors(obj) == [], obj["metadata"]["name"]
        feed_spec_from_manifest(obj, allow_push="pull" not in obj["spec"])
