"""`dnswatch feeds get NAME` as a describe-style view and `feeds list` with its refused manifests (the real CLI,
as a process, against a real collector reading a feeds folder)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dnswatch.feeds.lines import DOMAIN_NAME_SET, IP_SET
from dnswatch.feeds.rejections import rejection_reason
from harness.collector import RunningCollector, pulled
from tests.collector.running import db_url, feed_server, feeds_dir  # noqa: F401

REPO = Path(__file__).resolve().parents[2]


def dnswatch(collector: RunningCollector, *argv: str) -> str:
    result = subprocess.run([sys.executable, "-m", "consumer.cli", "--collector", collector.address, "--insecure",
                             *argv], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_feeds_get_describes_a_feed_and_feeds_list_shows_rejected_counts_and_refused_manifests(
        db_url, feeds_dir, feed_server):
    (feeds_dir / "slow.yaml").write_text((feeds_dir / "c2.yaml").read_text().replace("c2", "slow")
                                         .replace("period: 1h", "period: 1m"))
    (feeds_dir / "torn.yaml").write_text("apiVersion: dnswatch.dev/v1\nkind: [GlobalThreatFeed\n")
    (feeds_dir / "other.yaml").write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n")
    # A ConfigMap is no refusal: the folder's ConfigMaps and Secrets are the values of webhooks' valueFrom.
    (feeds_dir / "values.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    with RunningCollector(db_url, feeds_dir) as collector:
        collector.wait_for(pulled("c2", "ips"), "both feeds pulled")

        described = dnswatch(collector, "feeds", "get", "c2")
        lines = described.splitlines()
        assert lines[0].split() == ["Name:", "c2"]
        assert f"Source:            {feeds_dir / 'c2.yaml'}" in lines
        assert any(line.startswith("  Set from:        pull http://") and line.endswith(" every 1h") for line in lines)
        assert "  Rejected lines:  1" in lines and "  Entries:         2002" in lines
        conditions = lines.index("  Conditions:")
        assert lines[conditions + 1].split()[:3] == ["TYPE", "COUNT", "LAST"]
        assert lines[conditions + 2].split()[:2] == ["RejectedLines", "1"]
        samples = lines.index("Rejected samples:")
        assert lines[samples + 2].split(None, 1)[0] == "2004" and "not a name" in lines[samples + 2]
        assert "several words in no form read here" in lines[samples + 2]
        assert "  a plain entry matches that name exactly, not its subdomains (matchSubdomains: false)" in lines

        whole = json.loads(dnswatch(collector, "feeds", "get", "c2", "-o", "json"))
        assert whole["rejectedSamples"] == [{"line": 2004, "text": "not a name",
                                             "reason": whole["rejectedSamples"][0]["reason"]}]
        assert whole["errorConditions"][0]["type"] == "RejectedLines" and whole["matching"][0].startswith(
            "newlineDelimited: ")
        assert yaml.safe_load(dnswatch(collector, "feeds", "get", "c2", "-o", "yaml")) == whole

        listed = dnswatch(collector, "feeds", "list").splitlines()
        assert listed[0].split() == ["NAME", "CONTENT", "MODE", "ENTRIES", "REJECTED", "VERSION", "LAST", "SYNC",
                                     "ERRORS"]
        assert listed[1].split()[:5] == ["c2", "DomainNameSet", "Enabled", "2002", "1"]
        section = listed.index("Refused manifests (3):")
        refused = {row.split()[0]: row for row in listed[section + 2:]}
        assert set(refused) == {str(feeds_dir / name) for name in ("other.yaml", "slow.yaml", "torn.yaml")}
        assert 'kind: "Deployment" is not GlobalThreatFeed' in refused[str(feeds_dir / "other.yaml")]
        assert 'spec.pull.period: "1m" is shorter than the minimum 5m' in refused[str(feeds_dir / "slow.yaml")]
        assert "cannot read" in refused[str(feeds_dir / "torn.yaml")]

        records = [json.loads(line) for line in dnswatch(collector, "feeds", "list", "-o", "json").splitlines()]
        assert [r.get("name") for r in records if not r.get("refused")] == ["c2", "ips"]
        assert sorted(r["origin"] for r in records if r.get("refused")) == sorted(refused)

        (feeds_dir / "torn.yaml").unlink()
        collector.wait_for(lambda feeds: True, "a poll")
        fixed = (feeds_dir / "slow.yaml").read_text().replace("period: 1m", "period: 1h")
        (feeds_dir / "slow.yaml").write_text(fixed)
        collector.wait_for(lambda feeds: "slow" in feeds, "the fixed manifest read")
        assert "Refused manifests (1):" in dnswatch(collector, "feeds", "list")


@pytest.mark.parametrize("text, content, fmt, reason", [
    ("@@||allowed.example^", DOMAIN_NAME_SET, "newlineDelimited", "an adblock exception asks for allow-listing"),
    ("passthru.example cname rpz-passthru.", DOMAIN_NAME_SET, "newlineDelimited", "an RPZ passthru asks for"),
    ("1.2.3.4", DOMAIN_NAME_SET, "newlineDelimited", "an address, not a name"),
    ("not a name", DOMAIN_NAME_SET, "newlineDelimited", "several words in no form read here"),
    ("bad..example", DOMAIN_NAME_SET, "newlineDelimited", "not a domain name"),
    ("a\ufffdb.example", DOMAIN_NAME_SET, "newlineDelimited", "bytes that are not text"),
    ("7", DOMAIN_NAME_SET, "json", "a JSON value that is not a string"),
    ("2,d.example", DOMAIN_NAME_SET, "csv", "a CSV record of the wrong size"),
    ("(unreadable CSV record)", IP_SET, "csv", "a CSV record that cannot be read"),
    ("evil.example", IP_SET, "newlineDelimited", "a name, not an address"),
    ("300.1.2.3", IP_SET, "newlineDelimited", "not an IPv4 or IPv6 address or CIDR"),
])
def test_each_rejected_sample_says_why_it_is_no_entry(text, content, fmt, reason):
    assert rejection_reason(text, content, fmt).startswith(reason)
