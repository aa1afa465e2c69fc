"""The collector in Kubernetes mode: GlobalThreatFeeds and a header Secret from the fake API server
(tests/kubeapi.py) through a kubeconfig file, feeds pulled from the test feed server, status written back
to each GlobalThreatFeed's status subresource."""

from __future__ import annotations

import base64

import pytest

from dnswatch.feeds.formats import parse_feed_body
from dnswatch.feeds.lines import DOMAIN_NAME_SET
from dnswatch.feeds.status import entries_sha256
from harness.collector import RunningCollector, pulled
from tests.collector.kubesetup import kubeconfig, wait_until
from tests.collector.running import BODY_V1, db_url, feed_server  # noqa: F401
from tests.kubeapi import FakeKubeAPI


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
