"""Credentials in feed URLs end to end: a real collector pulls with them, and no consumer, log line, stored
state or Kubernetes status ever shows them (the `dnswatch` CLI's list and get in every output format)."""

from __future__ import annotations

import json
import logging

import pytest
import yaml

from collector.core.pulling import RetryPolicy
from consumer import cli
from collector.shell.puller import PullerSettings
from harness.collector import RunningCollector, manifest
from harness.feedserver import TIMEOUT, FeedServer
from tests.collector.kubesetup import kubeconfig, wait_until
from tests.collector.running import BODY_V1, db_url  # noqa: F401
from tests.kubeapi import FakeKubeAPI

PASSWORD = "pw-Q7v2-kT9x-secret"
TOKEN = "tok-M4z8-pL1w-secret"
SECRETS = (PASSWORD, TOKEN)
QUICK = PullerSettings(connect_timeout=1.0, read_timeout=0.3, pull_timeout=2.0,
                       retry=RetryPolicy(attempts=2, base_seconds=0.05, cap_seconds=0.1))


def secret_url(port: int, path: str) -> str:
    return f"http://reader:{PASSWORD}@127.0.0.1:{port}{path}?token={TOKEN}&fmt=txt"


def shown_url(port: int, path: str) -> str:
    return f"http://reader:***@127.0.0.1:{port}{path}?token=***&fmt=***"


@pytest.fixture
def server():
    with FeedServer() as running:
        running.serve("/c2.txt", BODY_V1, basic_auth=("reader", PASSWORD), query={"token": TOKEN})
        running.fault("/slow.txt", TIMEOUT)
        yield running


@pytest.fixture
def closed_port() -> int:
    with FeedServer() as gone:
        return gone.port


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def failed(*names: str):
    return lambda feeds: all(n in feeds and len(feeds[n].status.error_conditions) > 0 for n in names)


def test_a_urls_credentials_are_used_and_never_shown(tmp_path, capsys, caplog, db_url, server, closed_port):
    caplog.set_level(logging.DEBUG)
    folder = tmp_path / "feeds"
    folder.mkdir()
    urls = {"c2": secret_url(server.port, "/c2.txt"), "wrong": secret_url(server.port, "/wrong.txt"),
            "slow": secret_url(server.port, "/slow.txt"), "down": secret_url(closed_port, "/c2.txt")}
    for name, url in urls.items():
        (folder / f"{name}.yaml").write_text(manifest(name, url))
    outputs = []
    with RunningCollector(db_url, folder, puller_settings=QUICK) as collector:
        feeds = collector.wait_for(lambda f: "c2" in f and f["c2"].status.version == 1 and failed(
            "wrong", "slow", "down")(f), "c2 pulled with its credentials, the others failed")
        assert feeds["c2"].status.entries == 2002
        address = collector.address
        code, out, err = run_cli(capsys, "--collector", address, "--insecure", "feeds", "sync", "wrong", "-o", "json")
        assert code == 1 and err == (f"dnswatch: feed wrong: the pull failed: GET {shown_url(server.port, '/wrong.txt')}"
                                     f": HTTP 404 Not Found\n")
        outputs.append(out + err)
        for output in ("json", "yaml", "table"):
            code, out, err = run_cli(capsys, "--collector", address, "--insecure", "feeds", "list", "-o", output)
            assert code == 0
            outputs.append(out + err)
            for name in urls:
                code, out, err = run_cli(capsys, "--collector", address, "--insecure", "feeds", "get", name,
                                         "-o", output)
                assert code == 0
                outputs.append(out + err)
    got = {name: json.loads(run) for name, run in zip(urls, outputs[2:6])}
    for name, path in (("c2", "/c2.txt"), ("wrong", "/wrong.txt"), ("slow", "/slow.txt")):
        assert got[name]["url"] == shown_url(server.port, path)
    assert got["down"]["url"] == shown_url(closed_port, "/c2.txt")
    wrong = got["wrong"]["errorConditions"]
    assert len(wrong) == 1 and wrong[0]["count"] >= 2  # the sync's failure counted, not a second condition
    assert wrong[0]["message"] == f"GET {shown_url(server.port, '/wrong.txt')}: HTTP 404 Not Found"
    assert "timeout" in got["slow"]["errorConditions"][0]["message"]
    assert "connection failed" in got["down"]["errorConditions"][0]["message"]
    assert yaml.safe_load(outputs[7])["url"] == shown_url(server.port, "/c2.txt")  # `get c2 -o yaml`

    # The store: statuses, condition messages, and the validators kept for a restart's conditional GET (which
    # name their feed by a digest of its URL).
    stored = b"".join(path.read_bytes() for path in tmp_path.glob("collector.sqlite*"))
    assert stored
    shown = [*outputs, caplog.text, stored.decode("latin-1")]
    for text in shown:
        for secret in SECRETS:
            assert secret not in text
    assert len(caplog.records) > 10  # the collector's logs were captured


def test_the_status_written_to_kubernetes_shows_no_credentials(tmp_path, caplog, db_url, server):
    caplog.set_level(logging.DEBUG)
    feed = {"apiVersion": "dnswatch.dev/v1", "kind": "GlobalThreatFeed", "metadata": {"name": "wrong"},
            "spec": {"content": "DomainNameSet", "pull": {"period": "1h", "http": {
                "url": secret_url(server.port, "/wrong.txt")}}}}
    refused = {"apiVersion": "dnswatch.dev/v1", "kind": "GlobalThreatFeed", "metadata": {"name": "refused"},
               "spec": {"content": "DomainNameSet", "pull": {"period": "1h", "http": {
                   "url": f"ftp://reader:{PASSWORD}@127.0.0.1/feed?token={TOKEN}"}}}}
    with FakeKubeAPI(bookmark_interval=0.2) as api:
        api.put(feed)
        api.put(refused)
        config = kubeconfig(tmp_path / "kubeconfig", api.url)
        with RunningCollector(db_url, None, "--kubeconfig", str(config), puller_settings=QUICK):
            def statuses():
                found = {obj["metadata"]["name"]: obj.get("status") for obj in api.objects("globalthreatfeeds")}
                return found if all(found.values()) else None

            written = wait_until(statuses, "both statuses written")
    message = written["wrong"]["errorConditions"][0]["message"]
    assert message == f"GET {shown_url(server.port, '/wrong.txt')}: HTTP 404 Not Found"
    invalid = written["refused"]["errorConditions"][0]
    assert invalid["type"] == "InvalidSpec" and "ftp://reader:***@127.0.0.1/feed?token=***" in invalid["message"]
    for text in (json.dumps(written), caplog.text):
        for secret in SECRETS:
            assert secret not in text
