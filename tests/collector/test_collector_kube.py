"""The collector in Kubernetes mode: GlobalThreatFeeds (ours, and Calico's when its group is served) and a
header Secret from the fake API server (tests/kubeapi.py) through a kubeconfig file, feeds pulled from the test
feed server, status written back to each GlobalThreatFeed's status subresource."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest

from dnswatch.feeds.formats import parse_feed_body
from dnswatch.feeds.lines import DOMAIN_NAME_SET
from dnswatch.feeds.status import entries_sha256
from harness.collector import RunningCollector, pulled
from tests.collector.kubesetup import kubeconfig, wait_until
from tests.collector.running import BODY_V1, db_url, feed_server  # noqa: F401
from tests.kubeapi import CALICO_GLOBALTHREATFEEDS, CORE_RESOURCES, FakeKubeAPI

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def api():
    with FakeKubeAPI(bookmark_interval=0.2) as server:
        yield server


def global_threat_feed(name: str, url: str) -> dict:
    return {"apiVersion": "dnswatch.dev/v1", "kind": "GlobalThreatFeed", "metadata": {"name": name},
            "spec": {"content": "DomainNameSet", "pull": {"period": "1h", "http": {
                "url": url,
                "headers": [{"name": "X-Api-Key", "valueFrom": {"secretKeyRef": {"name": "feed-keys", "key": "c2"}}}],
            }}}}


def test_feeds_from_the_kubernetes_api_are_pulled_with_secret_headers_and_report_status(
        tmp_path, api, feed_server, db_url):
    api.put({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "feed-keys", "namespace": "dnswatch"},
             "data": {"c2": base64.b64encode(b"s3cret").decode()}})
    api.put(global_threat_feed("c2", feed_server.url("/c2.txt")))
    config = kubeconfig(tmp_path / "kubeconfig", api.url)
    with RunningCollector(db_url, None, "--kubeconfig", str(config)) as collector:
        collector.wait_for(pulled("c2"), "c2 pulled")
        assert feed_server.requests[-1].headers["x-api-key"] == "s3cret"

        status = wait_until(lambda: api.objects("globalthreatfeeds")[0].get("status"), "the status written back")
        entries = parse_feed_body(BODY_V1, DOMAIN_NAME_SET).entries
        assert status["version"] == 1 and status["entries"] == len(entries) == 2002
        assert status["sha256"] == entries_sha256(entries) and status["lastSuccessfulSync"]
        assert [c["type"] for c in status["errorConditions"]] == ["RejectedLines"]

        api.remove("globalthreatfeeds", "c2")
        collector.wait_for(lambda feeds: "c2" not in feeds, "c2 removed")


def calico_feed(name: str, url: str | None = None, **spec) -> dict:
    body = {"content": "DomainNameSet", **spec}
    if url is not None:
        body["pull"] = {"period": "1h", "http": {"url": url}}
    return {"apiVersion": "projectcalico.org/v3", "kind": "GlobalThreatFeed", "metadata": {"name": name},
            "spec": body}


def test_calicos_feeds_are_read_beside_ours_ours_win_a_shared_name_and_status_goes_back_to_each(
        tmp_path, feed_server, db_url):
    with FakeKubeAPI((*CORE_RESOURCES, CALICO_GLOBALTHREATFEEDS), bookmark_interval=0.2) as api:
        api.put(calico_feed("calico-c2", feed_server.url("/c2.txt")))
        api.put(calico_feed("calico-push"))  # a push feed, as Calico has them
        api.put(calico_feed("shared", feed_server.url("/ips.txt"), content="IPSet"))
        api.put({**global_threat_feed("shared", feed_server.url("/c2.txt")), "spec": {
            "content": "DomainNameSet", "pull": {"period": "1h", "http": {"url": feed_server.url("/c2.txt")}}}})
        api.put(calico_feed("broken", feed_server.url("/c2.txt"), matchSubdomain=True))
        config = kubeconfig(tmp_path / "kubeconfig", api.url)
        with RunningCollector(db_url, None, "--kubeconfig", str(config)) as collector:
            feeds = collector.wait_for(pulled("calico-c2", "shared"), "Calico's and ours pulled")
            assert feeds["calico-push"].push and feeds["calico-c2"].source == (
                "projectcalico.org/v3 GlobalThreatFeed/calico-c2")
            assert feeds["shared"].source == "dnswatch.dev/v1 GlobalThreatFeed/shared"
            assert feeds["shared"].content == 1  # DomainNameSet: ours, not Calico's IPSet
            assert "broken" not in feeds

            def calico_status(name):
                found = [o for o in api.objects("globalthreatfeeds", "projectcalico.org")
                         if o["metadata"]["name"] == name]
                return found and found[0].get("status")

            status = wait_until(lambda: (calico_status("calico-c2") or {}).get("lastSuccessfulSync") and
                                calico_status("calico-c2"), "the status written to Calico's object")
            assert set(status) == {"lastSuccessfulSync", "errorConditions"}  # Calico's fields only
            assert status["errorConditions"] == [{"type": "RejectedLines", "message": status["errorConditions"][0]
                                                  ["message"]}]
            ours = wait_until(lambda: (api.objects("globalthreatfeeds", "dnswatch.dev") or [{}])[0].get("status"),
                              "the status written to ours")
            assert ours["version"] == 1 and not (calico_status("shared") or {}).get("lastSuccessfulSync")

            listed = subprocess.run([sys.executable, "-m", "consumer.cli", "--collector", collector.address,
                                     "--insecure", "feeds", "list"], cwd=REPO, capture_output=True, text=True,
                                    timeout=60)
            assert listed.returncode == 0, listed.stderr
            refused = listed.stdout.split("Refused manifests (2):")[1]
            assert "projectcalico.org/v3 GlobalThreatFeed/broken" in refused and "spec.matchSubdomain" in refused
            assert ("projectcalico.org/v3 GlobalThreatFeed/shared" in refused
                    and "dnswatch.dev/v1 GlobalThreatFeed/shared of the same name takes precedence" in refused)

            api.remove("globalthreatfeeds", "shared", group="dnswatch.dev")
            collector.wait_for(lambda feeds: feeds["shared"].content == 2, "Calico's shared feed taking over")


def test_without_calicos_group_only_ours_are_read(tmp_path, api, feed_server, db_url):
    api.put({**global_threat_feed("c2", feed_server.url("/c2.txt")), "spec": {
        "content": "DomainNameSet", "pull": {"http": {"url": feed_server.url("/c2.txt")}}}})
    config = kubeconfig(tmp_path / "kubeconfig", api.url)
    with RunningCollector(db_url, None, "--kubeconfig", str(config)) as collector:
        collector.wait_for(pulled("c2"), "c2 pulled")
        assert not any("projectcalico.org" in path for _method, path in api.requests)
