"""Calico's AlertExceptions and SecurityEventWebhooks (`projectcalico.org/v3`) read beside ours in Kubernetes
mode: a real collector against the API emulator serving both groups, the real CLI as a subprocess. A name
both groups hold is ours; Calico's comes back into force when ours is deleted; Calico's objects get no status
from the collector."""

from __future__ import annotations

import json

import pytest
import yaml

from harness.collector import RunningCollector
from tests.collector.kubesetup import kubeconfig, wait_until
from tests.collector.running import db_url  # noqa: F401
from tests.collector.test_alerting_cli import EVENTS, exception, newest_first, wait_listed
from tests.collector.test_events_cli import dnswatch, ingest
from tests.kubeapi import CALICO_ALERTEXCEPTIONS, CALICO_SECURITYEVENTWEBHOOKS, CORE_RESOURCES, FakeKubeAPI

pytestmark = pytest.mark.timeout(120)

CALICO = "projectcalico.org"


def ours(name: str, selector: str) -> dict:
    return yaml.safe_load(exception(name, selector).replace("projectcalico.org/v3", "dnswatch.dev/v1"))


def calicos(name: str, selector: str) -> dict:
    return yaml.safe_load(exception(name, selector))


def calico_webhook(name: str) -> dict:
    return {"apiVersion": "projectcalico.org/v3", "kind": "SecurityEventWebhook", "metadata": {"name": name},
            "spec": {"consumer": "Generic", "state": "Disabled", "query": "source_namespace = shop",
                     "config": [{"name": "url", "value": "https://siem.example/hook"}]}}


def test_calicos_exceptions_and_webhooks_apply_beside_ours_and_ours_win_a_shared_name(tmp_path, db_url):  # noqa: F811
    ingest(db_url, EVENTS)  # namespaces: 0 shop, 1 ci, 2 ci, 3 bank
    with FakeKubeAPI((*CORE_RESOURCES, CALICO_ALERTEXCEPTIONS, CALICO_SECURITYEVENTWEBHOOKS),
                     bookmark_interval=0.2) as api:
        api.put(calicos("calico-ci", "source_namespace = ci"))
        api.put(calicos("shared", "source_namespace = shop"))
        api.put(ours("shared", "source_namespace = bank"))
        api.put(calico_webhook("calico-soc"))
        config = kubeconfig(tmp_path / "kubeconfig", api.url)
        with RunningCollector(db_url, None, "--kubeconfig", str(config)) as collector:
            # Calico's calico-ci hides ci; for `shared` ours (bank) is in force, not Calico's (shop).
            wait_listed(collector.address, newest_first(0))
            shown = json.loads(dnswatch(collector.address, "exceptions", "get", "shared", "-o", "json").stdout)
            assert shown["spec"]["selector"] == "source_namespace = bank"
            wait_until(lambda: [o.get("status") for o in api.objects("alertexceptions", group="dnswatch.dev")]
                       == [{"errorConditions": []}], "our exception's status written")
            listed = dnswatch(collector.address, "webhooks", "list", "-o", "json")
            assert listed.returncode == 0, listed.stderr
            assert "calico-soc" in listed.stdout

            # Ours deleted: Calico's `shared` applies.
            api.remove("alertexceptions", "shared", group="dnswatch.dev")
            wait_listed(collector.address, newest_first(3))
            # A change of Calico's shadowed object would have changed nothing; now it is the one in force.
            api.put(calicos("shared", "source_namespace = bank"))
            wait_listed(collector.address, newest_first(0))
        # Calico's objects were never given a status by the collector.
        assert all("status" not in o for o in api.objects("alertexceptions", group=CALICO))
        assert all("status" not in o for o in api.objects("securityeventwebhooks", group=CALICO))
