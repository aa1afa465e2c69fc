"""The whole pipeline end to end, as `make demo` runs it: feed site → collector → agent replay → events list, and
the collector's webhook delivering each event to a receiver.

Every part is the real command in its own process (pcaps/demo.py). The events the collector serves must be
the demo's ground truth (pcaps/demo-expected.json), and exactly the latest emission of each event the agent
printed: same ids, same objects, nothing lost, nothing doubled.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.agent.replaying import summary
from tests.agent.storedevents import without_lines

ROOT = Path(__file__).resolve().parents[1]
PCAPS = ROOT / "pcaps"


def test_demo_pipeline_stores_exactly_the_ground_truth_events(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pcaps.demo", "-o", "json", "--workdir", str(tmp_path)],
                            capture_output=True, text=True, cwd=ROOT, timeout=240)
    assert result.returncode == 0, result.stderr
    served = [json.loads(line) for line in result.stdout.splitlines()]

    expected = json.loads((PCAPS / "demo-expected.json").read_text())
    want = sorted((e["source_namespace"], e["source_name"], e["source_ip"], tuple(e["suspicious_domains"]),
                   tuple(e["suspicious_ips"]), tuple(e["feeds"]), e["count"]) for e in expected["events"])
    assert sorted(map(summary, served)) == want

    printed: dict[str, dict] = {}
    for line in (tmp_path / "agent-events.jsonl").read_text().splitlines():
        event = json.loads(line)
        printed[event["id"]] = event  # a later emission of an id supersedes the earlier ones
    assert len(served) == len({e["id"] for e in served}) == len(printed)
    # The collector filled in the feed line of every match (the demo feeds are all newline-delimited); the
    # rest is as the agent printed it.
    assert {e["id"]: without_lines(e) for e in served} == printed
    assert all(m["line"] for e in served for m in e["record"]["matches"])
    assert all(e["severity"] == 80 and e["record"]["feed_labels"]["c2"] == {"source": "soc-blocklist",
                                                                          "team": "secops"}
               for e in served if "c2" in e["record"]["feeds"])

    # The commands were shown as they ran, and the agent's summary says every event was acknowledged.
    for command in ("$ python -m harness.webhookreceiver", "$ dnswatch-collector", "$ dnswatch-agent replay",
                    "$ dnswatch --collector"):
        assert command in result.stderr
    assert "replayed" in result.stderr
    # The demo's Generic webhook delivered the newest emission of every stored event to the receiver.
    delivered = [line for line in result.stderr.splitlines() if line.startswith("webhook receiver: POST /dnswatch ")]
    for event in served:
        assert any(f" demo-generic:{event['id']}:{event['record']['count']}: " in line for line in delivered)


def test_demo_table_lists_every_event(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pcaps.demo", "-o", "table"], capture_output=True, text=True,
                            cwd=ROOT, timeout=240)
    assert result.returncode == 0, result.stderr
    expected = json.loads((PCAPS / "demo-expected.json").read_text())
    rows = [line for line in result.stdout.splitlines()[1:] if line.strip()]
    assert len(rows) == len(expected["events"])
    for event in expected["events"]:
        for domain in event["suspicious_domains"]:
            assert any(domain in row for row in rows), domain
    # It ends by naming the collector's web UI (stopped with the demo, unless KEEP=1).
    assert re.fullmatch(r"web UI: http://127\.0\.0\.1:\d+/ \(stopped with the demo; `make demo KEEP=1` keeps it "
                        r"running\)", result.stderr.splitlines()[-1])
