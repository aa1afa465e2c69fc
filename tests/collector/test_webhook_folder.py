"""SecurityEventWebhooks in the manifests folder, with the Secrets and ConfigMaps their `valueFrom` name: read
by FeedsDirSource and, in a real collector, held by its webhook keeper with the Secret's value resolved."""

from __future__ import annotations

import base64
import logging
import time

import pytest
import yaml

from collector.core.foldervalues import FolderValues, read_value_object
from collector.core.watchloop import FeedInvalid
from collector.shell.dirsource import DirSourceSettings, FeedsDirSource
from dnswatch.alerting.webhooks import ValueRef
from harness.collector import RunningCollector
from tests.collector.running import db_url  # noqa: F401
from tests.collector.test_dirsource import write

pytestmark = pytest.mark.timeout(60)

SLACK_URL = "https://hooks.slack.example/services/T0/B0/s3cr3t-T0K3N"


def webhook(name: str, api: str = "dnswatch.dev/v1", **spec) -> str:
    body = {"consumer": "Slack", "state": "Enabled",
            "config": [{"name": "url", "valueFrom": {"secretKeyRef": {"name": "soc", "key": "slack"}}}], **spec}
    return yaml.safe_dump({"apiVersion": api, "kind": "SecurityEventWebhook", "metadata": {"name": name},
                           "spec": body})


def secret(name: str, data: dict[str, str] | None = None, string_data: dict[str, str] | None = None) -> str:
    doc: dict = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "dnswatch"}}
    if data is not None:
        doc["data"] = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
    if string_data is not None:
        doc["stringData"] = string_data
    return yaml.safe_dump(doc)


def config_map(name: str, data: dict[str, str], binary: dict[str, str] | None = None) -> str:
    doc: dict = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}
    if binary:
        doc["binaryData"] = {key: base64.b64encode(value.encode()).decode() for key, value in binary.items()}
    return yaml.safe_dump(doc)


def test_secret_and_config_map_documents_are_read_as_kubernetes_stores_them():
    assert read_value_object(yaml.safe_load(secret("s", {"a": "one", "b": "two"}, {"b": "plain"}))) == {
        "a": "one", "b": "plain"}  # stringData wins, as the API server merges it
    assert read_value_object(yaml.safe_load(config_map("c", {"x": "text"}, {"y": "bytes"}))) == {
        "x": "text", "y": "bytes"}
    with pytest.raises(ValueError, match=r"^data\.a: not base64-encoded UTF-8 text$"):
        read_value_object({"kind": "Secret", "data": {"a": "not*base64"}})
    with pytest.raises(ValueError, match=r"^data: must be a mapping"):
        read_value_object({"kind": "ConfigMap", "data": ["x"]})
    values = FolderValues({("Secret", "s"): {"a": SLACK_URL}})
    assert values.lookup(ValueRef("Secret", "s", "a")) == SLACK_URL
    assert values.lookup(ValueRef("ConfigMap", "s", "a")) is None and values.lookup(ValueRef("Secret", "s", "b")) is None
    assert SLACK_URL not in repr(values)


def test_the_folder_gives_its_webhooks_of_both_api_versions_and_the_values_they_name(tmp_path):
    write(tmp_path / "hooks.yaml", "\n---\n".join([
        webhook("soc"), webhook("calico", api="projectcalico.org/v3"),
        secret("soc", {"slack": SLACK_URL}), config_map("jira", {"project": "SOC"})]))
    seen: list[dict] = []
    source = FeedsDirSource(DirSourceSettings(tmp_path, on_webhooks=seen.append))
    changes = source.poll()
    assert not [c for c in changes if isinstance(c, FeedInvalid)]
    assert [sorted(hooks) for hooks in seen] == [["calico", "soc"]]
    assert seen[0]["calico"]["apiVersion"] == "projectcalico.org/v3"
    assert source.lookup(ValueRef("Secret", "soc", "slack")) == SLACK_URL
    assert source.lookup(ValueRef("ConfigMap", "jira", "project")) == "SOC"
    assert source.poll() == [] and len(seen) == 1

    # A rotated Secret is handed on again, with the same webhooks, so that their config is read again.
    write(tmp_path / "hooks.yaml", "\n---\n".join([
        webhook("soc"), webhook("calico", api="projectcalico.org/v3"),
        secret("soc", {"slack": SLACK_URL + "-rotated"}), config_map("jira", {"project": "SOC"})]))
    source.poll()
    assert len(seen) == 2 and sorted(seen[1]) == ["calico", "soc"]
    assert source.lookup(ValueRef("Secret", "soc", "slack")) == SLACK_URL + "-rotated"

    (tmp_path / "hooks.yaml").unlink()
    source.poll()
    assert seen[-1] == {} and source.lookup(ValueRef("Secret", "soc", "slack")) is None


def test_a_bad_secret_is_reported_by_field_never_by_value_and_twice_defined_names_are_the_first_files(tmp_path):
    write(tmp_path / "a.yaml", "\n---\n".join([webhook("soc"), secret("soc", {"slack": SLACK_URL})]))
    write(tmp_path / "b.yaml", "\n---\n".join([
        webhook("soc", state="Disabled"),
        yaml.safe_dump({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "broken"},
                        "data": {"token": SLACK_URL}})]))
    seen: list[dict] = []
    source = FeedsDirSource(DirSourceSettings(tmp_path, on_webhooks=seen.append))
    messages = [c.message for c in source.poll() if isinstance(c, FeedInvalid)]
    assert any("Secret broken: data.token: not base64-encoded UTF-8 text" in m for m in messages), messages
    assert any("SecurityEventWebhook 'soc' is already defined in" in m and "a.yaml" in m for m in messages)
    assert not any(SLACK_URL in m or "s3cr3t" in m for m in messages)
    assert seen[0]["soc"]["spec"]["state"] == "Enabled"
    assert source.lookup(ValueRef("Secret", "soc", "slack")) == SLACK_URL
    assert not any(SLACK_URL in r.message for r in source.refusals())


def test_without_on_webhooks_those_kinds_are_refused_like_any_other(tmp_path):
    write(tmp_path / "a.yaml", "\n---\n".join([webhook("soc"), secret("soc", {"slack": SLACK_URL})]))
    messages = [c.message for c in FeedsDirSource(DirSourceSettings(tmp_path)).poll() if isinstance(c, FeedInvalid)]
    assert len(messages) == 2 and all("is not GlobalThreatFeed" in m for m in messages)
    assert not any(SLACK_URL in m for m in messages)


def resolved_url(collector: RunningCollector, name: str) -> str | None:
    assert collector.alerting is not None
    config = collector.on_loop(lambda: collector.alerting.webhooks.resolved(name))
    return None if config is None else config.values.get("url")


def wait_resolved(collector: RunningCollector, name: str, expected: str, deadline: float = 10.0) -> None:
    end = time.monotonic() + deadline
    while (got := resolved_url(collector, name)) != expected:
        assert time.monotonic() < end, f"webhook {name}: url {'set' if got else got!r}, not the expected one"
        time.sleep(0.05)


def test_a_collector_holds_the_folders_webhooks_with_the_secrets_value_and_never_logs_it(
        db_url, tmp_path, caplog):  # noqa: F811
    folder = tmp_path / "manifests"
    folder.mkdir()
    write(folder / "soc.yaml", "\n---\n".join([webhook("soc"), secret("soc", {"slack": SLACK_URL})]))
    write(folder / "calico.yaml", webhook("calico", api="projectcalico.org/v3", state="Bogus"))
    caplog.set_level(logging.DEBUG)
    with RunningCollector(db_url, folder) as collector:
        wait_resolved(collector, "soc", SLACK_URL)
        keeper = collector.alerting.webhooks
        assert collector.on_loop(lambda: _async(lambda: [w.name for w in keeper.webhooks])) == ["calico", "soc"]
        status = collector.on_loop(lambda: _async(lambda: keeper.status("calico")))
        assert status["conditions"][0]["message"].startswith("spec.state: 'Bogus' is not one of Enabled")
        # The Secret rotated in the folder is used at the next poll, not after the keeper's time to live.
        write(folder / "soc.yaml", "\n---\n".join([webhook("soc"), secret("soc", {"slack": SLACK_URL + "2"})]))
        wait_resolved(collector, "soc", SLACK_URL + "2")
    assert "s3cr3t" not in caplog.text


async def _async(function):
    return function()


def test_the_documented_folder_gives_every_webhook_its_values(tmp_path):
    """docs/webhooks.md's YAML blocks as one folder: every webhook is read and every value it names is there."""
    import re
    from pathlib import Path

    from dnswatch.alerting.webhooks import read_security_event_webhook, resolve_config

    doc = (Path(__file__).resolve().parents[2] / "docs" / "webhooks.md").read_text()
    for number, block in enumerate(re.findall(r"```yaml\n(.*?)```", doc, flags=re.S)):
        write(tmp_path / f"{number}.yaml", block)
    seen: list[dict] = []
    source = FeedsDirSource(DirSourceSettings(tmp_path, on_webhooks=seen.append))
    assert [c.message for c in source.poll() if isinstance(c, FeedInvalid)] == []
    assert sorted(seen[-1]) == ["siem-generic", "soc-jira", "soc-slack"]
    for name, manifest in seen[-1].items():
        webhook = read_security_event_webhook(manifest, name)
        config = resolve_config(webhook, source.lookup)
        assert webhook.valid and config.complete, (name, webhook.conditions, config.conditions)
    assert source.lookup(ValueRef("Secret", "dnswatch-webhook-credentials", "soc-slack-url")).startswith("https://")
