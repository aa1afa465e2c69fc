"""Alert exceptions and dismissal end to end: `dnswatch exceptions|events ...` as real processes against a real
collector reading AlertExceptions from its manifests folder or the Kubernetes API emulator (127.0.0.1), its
store on SQLite and on a real PostgreSQL server in turn."""

from __future__ import annotations

import json
import time

import pytest
import yaml

from harness.collector import RunningCollector
from tests.collector.eventdata import event
from tests.collector.test_events_cli import compact, dnswatch, ingest

pytestmark = pytest.mark.timeout(120)

EVENTS = [
    event(0, namespace="shop", pod="web-a-1", feeds=("c2",), domains=("evil.example",), host="node-1"),
    event(1, namespace="ci", pod="runner-1", feeds=("c2",), domains=("test.evil.example",), host="node-2"),
    event(2, namespace="ci", pod="runner-2", feeds=("malware",), domains=("bad.example",), host="node-1"),
    event(3, namespace="bank", pod="api-b-1", feeds=("c2",), domains=("evil.example",), host="node-2"),
]
IDS = [e["id"] for e in EVENTS]


def exception(name: str, selector: str, **spec: str) -> str:
    return yaml.safe_dump({"apiVersion": "projectcalico.org/v3", "kind": "AlertException",
                           "metadata": {"name": name},
                           "spec": {"description": f"{name} on purpose", "selector": selector, **spec}})


def listed(address: str, *flags: str) -> list[str]:
    result = dnswatch(address, "events", "list", "-o", "json", *flags)
    assert result.returncode == 0, result.stderr
    return [json.loads(line)["id"] for line in result.stdout.splitlines()]


def wait_listed(address: str, expected: list[str], *flags: str, deadline: float = 20) -> None:
    end = time.monotonic() + deadline
    while (got := listed(address, *flags)) != expected:
        assert time.monotonic() < end, f"listed {got}, not {expected}"
        time.sleep(0.1)


@pytest.fixture
def db_url(store_url: str) -> str:
    """The collector's store: each test runs on both backends."""
    return store_url


@pytest.fixture
def folder(tmp_path):
    path = tmp_path / "manifests"
    path.mkdir()
    return path


@pytest.fixture
def collector(db_url, folder):
    ingest(db_url, EVENTS)
    with RunningCollector(db_url, folder) as running:
        yield running


def newest_first(*numbers: int) -> list[str]:
    return [IDS[n] for n in sorted(numbers, reverse=True)]


def test_an_exception_in_the_folder_hides_the_events_stored_before_it_and_its_change_applies(collector, folder):
    assert listed(collector.address) == newest_first(0, 1, 2, 3)
    (folder / "ci.yaml").write_text(exception("ci", "source_namespace = ci"))
    wait_listed(collector.address, newest_first(0, 3))
    assert listed(collector.address, "--include-excepted") == newest_first(0, 1, 2, 3)
    table = dnswatch(collector.address, "events", "list", "--include-excepted")
    assert "HIDDEN BY" in table.stdout and "exception ci" in table.stdout

    # Changed: the stored events are marked again by the new selector.
    (folder / "ci.yaml").write_text(exception("ci", '"record.suspicious_domains" IN {"*.evil.example"}'))
    wait_listed(collector.address, newest_first(0, 2, 3))
    shown = dnswatch(collector.address, "exceptions", "get", "ci", "-o", "json")
    assert shown.returncode == 0, shown.stderr
    record = json.loads(shown.stdout)
    assert record["status"]["active"] is True and record["status"]["exceptedEvents"] == 1
    assert record["spec"]["selector"] == '"record.suspicious_domains" IN {"*.evil.example"}'

    # Removed: every event shows again.
    (folder / "ci.yaml").unlink()
    wait_listed(collector.address, newest_first(0, 1, 2, 3))


def test_a_selector_that_does_not_parse_is_a_status_condition_and_is_not_applied(collector, folder):
    (folder / "broken.yaml").write_text(exception("broken", 'source_namespace = "shop" AND type ='))
    (folder / "ended.yaml").write_text(exception("ended", "source_namespace = shop",
                                                 startTime="2020-01-01T00:00:00Z", period="1h"))
    end = time.monotonic() + 20
    while True:
        result = dnswatch(collector.address, "exceptions", "list", "-o", "yaml")
        assert result.returncode == 0, result.stderr
        records = yaml.safe_load(result.stdout)
        if len(records) == 2:
            break
        assert time.monotonic() < end, result.stdout
        time.sleep(0.1)
    broken, ended = records
    assert broken["name"] == "broken" and broken["status"]["active"] is False
    assert broken["status"]["errorConditions"] == [
        {"type": "InvalidSelector", "message": "selector: position 37: expected a value before the end"}]
    assert ended["status"] == {"active": False, "exceptedEvents": 0, "endsAt": "2020-01-01T01:00:00Z",
                               "errorConditions": []}
    table = dnswatch(collector.address, "exceptions", "list")
    assert table.stdout.splitlines()[0].split() == ["NAME", "ACTIVE", "EVENTS", "ENDS", "SELECTOR", "PROBLEM"]
    assert "position 37" in table.stdout
    assert listed(collector.address) == newest_first(0, 1, 2, 3)
    missing = dnswatch(collector.address, "exceptions", "get", "nothing")
    assert missing.returncode == 1 and "no AlertException named 'nothing'" in missing.stderr


def test_dismiss_and_undismiss_with_unknown_ids_reported(collector, db_url):
    result = dnswatch(collector.address, "events", "dismiss", IDS[1], IDS[3], "f" * 32)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [f"{IDS[1]} dismissed", f"{IDS[3]} dismissed"]
    assert f"no stored event has the id {'f' * 32}" in result.stderr
    assert listed(collector.address) == newest_first(0, 2)
    assert listed(collector.address, "--dismissed") == newest_first(1, 3)
    assert listed(collector.address, "--include-dismissed") == newest_first(0, 1, 2, 3)
    table = dnswatch(collector.address, "events", "list", "--dismissed")
    assert "dismissed by anonymous (--insecure)" in table.stdout

    # A grown event (same id, higher count) stays dismissed.
    ingest(db_url, [{**EVENTS[1], "record": {**EVENTS[1]["record"], "count": 7}}])
    assert listed(collector.address, "--dismissed") == newest_first(1, 3)

    again = dnswatch(collector.address, "events", "undismiss", IDS[1], IDS[0])
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [f"{IDS[1]} undismissed", f"{IDS[0]} undismissed already"]
    assert listed(collector.address) == newest_first(0, 1, 2)
    assert compact(EVENTS[0]) in dnswatch(collector.address, "events", "list", "-o", "json").stdout


def test_watch_leaves_out_dismissed_events_unless_asked(collector, db_url):
    from dnswatch.pbconvert.events import encode_resume_token
    from tests.collector.test_events_cli import Watch, latest_seq

    assert dnswatch(collector.address, "events", "dismiss", IDS[1]).returncode == 0
    start = ["--resume-token", encode_resume_token(latest_seq(db_url))]  # both from here, however slow to start
    default = Watch(collector.address, "-o", "json", *start)
    everything = Watch(collector.address, "-o", "json", "--include-dismissed", *start)
    try:
        grown = {**EVENTS[1], "record": {**EVENTS[1]["record"], "count": 9}}
        fresh = event(5, namespace="shop")
        ingest(db_url, [grown])
        ingest(db_url, [fresh])
        assert [json.loads(line)["id"] for line in default.take(1)] == [fresh["id"]]
        assert [json.loads(line)["id"] for line in everything.take(2)] == [grown["id"], fresh["id"]]
        assert default.lines.empty()
    finally:
        default.close()
        everything.close()


# ---------------------------------------------------------------------------------------------- Kubernetes mode


def test_alert_exceptions_from_the_kubernetes_api_apply_and_report_their_status(tmp_path, db_url):
    from tests.collector.kubesetup import kubeconfig, wait_until
    from tests.kubeapi import FakeKubeAPI

    ingest(db_url, EVENTS)
    with FakeKubeAPI(bookmark_interval=0.2) as api:
        api.put(yaml.safe_load(exception("ci", "source_namespace = ci").replace("projectcalico.org/v3",
                                                                                 "dnswatch.dev/v1")))
        api.put(yaml.safe_load(exception("broken", 'source_namespace = "shop" AND type =')
                               .replace("projectcalico.org/v3", "dnswatch.dev/v1")))
        config = kubeconfig(tmp_path / "kubeconfig", api.url)
        with RunningCollector(db_url, None, "--kubeconfig", str(config)) as collector:
            wait_listed(collector.address, newest_first(0, 3))

            def written() -> dict | None:
                found = {o["metadata"]["name"]: o["status"] for o in api.objects("alertexceptions") if o.get("status")}
                return found if len(found) == 2 else None

            statuses = wait_until(written, "both statuses written back")
            assert statuses == {"ci": {"errorConditions": []}, "broken": {"errorConditions": [
                {"type": "InvalidSelector", "message": "selector: position 37: expected a value before the end"}]}}
            shown = yaml.safe_load(dnswatch(collector.address, "exceptions", "get", "ci", "-o", "yaml").stdout)
            assert shown["status"]["active"] is True and shown["status"]["exceptedEvents"] == 2

            # Fixed, the broken one applies (and its condition is cleared); removed, ci's events show again.
            api.put(yaml.safe_load(exception("broken", "source_namespace = shop")
                                   .replace("projectcalico.org/v3", "dnswatch.dev/v1")))
            api.remove("alertexceptions", "ci")
            wait_listed(collector.address, newest_first(1, 2, 3))
            wait_until(lambda: [o.get("status") for o in api.objects("alertexceptions")] == [{"errorConditions": []}],
                       "the condition cleared")
