"""`dnswatch-agent replay` end to end: the demo capture gives exactly its ground-truth events, every capture
of the shared corpus replays and yields the question names tshark finds, and bad input gets one line."""

from __future__ import annotations

import json

import pytest

from agent.core.decode import Decoder
from agent.core.pcapformat import FrameReader
from agent.core.scanner import question_of
from agent.shell.cli import main

from tests.agent.replaying import PCAPS, run_cli, summary
from tests.corpus import CORPUS, MANIFEST


def demo_events(*extra: str) -> list[dict]:
    result = run_cli(
        "replay", str(PCAPS / "demo.pcapng"), "--feed-manifest", str(PCAPS / "demo-feeds.yaml"),
        "--pods", str(PCAPS / "demo-pods.json"), "--node", "node-1", "-o", "json", *extra,
    )
    assert result.returncode == 0, result.stderr
    latest: dict[str, dict] = {}
    for line in result.stdout.splitlines():
        event = json.loads(line)
        latest[event["id"]] = event  # a later emission of an id supersedes the earlier ones
    return list(latest.values())


def test_demo_gives_exactly_the_ground_truth_events():
    expected = json.loads((PCAPS / "demo-expected.json").read_text())
    want = sorted(
        (e["source_namespace"], e["source_name"], e["source_ip"], tuple(e["suspicious_domains"]),
         tuple(e["suspicious_ips"]), tuple(e["feeds"]), e["count"])
        for e in expected["events"]
    )
    events = demo_events()
    assert sorted(map(summary, events)) == want
    for event in events:
        assert event["host"] == "node-1"
        assert event["type"] == "gtf_suspicious_dns_query"
        names = {m["name"] for m in event["record"]["matches"]}
        assert names == set(event["record"]["suspicious_domains"]) | set(event["record"]["suspicious_ips"])


def test_demo_aggregated_by_workload_folds_replicas():
    events = demo_events("--aggregate-by", "workload")
    web = [e for e in events if e["source_name_aggr"] == "web"]  # docs/detection.md: it names the owner
    assert web and all(e["source_name"] == "-" for e in web)
    assert all(e["source_workload"] == {"kind": "Deployment", "name": "web"} for e in web)


def test_demo_summary_and_table():
    result = run_cli(
        "replay", str(PCAPS / "demo.pcapng"), "--feed-manifest", str(PCAPS / "demo-feeds.yaml"),
        "--pods", str(PCAPS / "demo-pods.json"), "--node", "node-1", "-o", "table",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split()[:3] == ["TIME", "SOURCE", "CLIENT"]
    assert "shop/web-7d4b9c-x2x1" in result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("replayed 474 packets,") and "4 malformed" in last and "packets/s" in last


def test_feed_files_give_the_same_events_as_the_manifest(tmp_path):
    by_manifest = demo_events()
    result = run_cli(
        "replay", str(PCAPS / "demo.pcapng"), "--feed", f"c2={PCAPS / 'demo-c2.txt'}",
        "--ip-feed", f"badips={PCAPS / 'demo-badips.txt'}", "--pods", str(PCAPS / "demo-pods.json"),
        "--node", "node-1",
    )
    assert result.returncode == 0, result.stderr
    by_files = {json.loads(line)["id"]: json.loads(line) for line in result.stdout.splitlines()}
    without_exfil = [e for e in by_manifest if e["record"]["feeds"] != ["exfil"]]
    assert sorted(map(summary, by_files.values())) == sorted(map(summary, without_exfil))


def as_tshark_lists_it(qname: str) -> list[str]:
    """The manifest holds tshark's field output: names unescaped, the root as ".", and several values of a
    field joined by commas and then split again — so the one-label name `,.` (escaped by us as `,\\.`)
    appears there as "." (the empty piece before the comma dropped)."""
    text = qname.replace("\\.", ".").replace("\\\\", "\\") or "."
    return [piece for piece in text.split(",") if piece]


@pytest.mark.parametrize("entry", MANIFEST, ids=[entry["file"] for entry in MANIFEST])
def test_corpus_capture_replays_and_yields_tshark_qnames(entry):
    ports = frozenset({53, 8053})
    decoder = Decoder(ports)
    qnames = set()
    for message in decoder.messages(FrameReader((CORPUS / entry["file"]).read_bytes()).frames()):
        qname, qtype = question_of(message[-1])
        if qtype:
            qnames.update(as_tshark_lists_it(qname))
    assert set(entry["tshark_qnames"]) <= qnames
    # The command itself must replay it without a traceback either.
    result = run_cli("replay", str(CORPUS / entry["file"]), "--feed", f"any={PCAPS / 'demo-c2.txt'}",
                     "--ports", "53,8053")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["replay", "missing.pcap", "--feed", "x=pcaps/demo-c2.txt"], "cannot read capture missing.pcap"),
        (["replay", "pcaps/demo-c2.txt", "--feed", "x=pcaps/demo-c2.txt"], "demo-c2.txt"),
        (["replay", "pcaps/demo.pcapng", "--feed", "x=nope.txt"], "cannot read feed nope.txt"),
        (["replay", "pcaps/demo.pcapng", "--feed", "nonameequals"], "expected NAME=PATH"),
        (["replay", "pcaps/demo.pcapng", "--feed-manifest", "pcaps/demo-pods.json"], "demo-pods.json"),
        (["replay", "pcaps/demo.pcapng", "--feed", "x=pcaps/demo-c2.txt", "--ports", "0"], "ports"),
        (["replay", "pcaps/demo.pcapng", "--feed", "x=pcaps/demo-c2.txt", "--pods", "pcaps/demo-c2.txt"],
         "not JSON"),
        (["replay", "pcaps/demo.pcapng", "--feed", "x=pcaps/demo-c2.txt", "-o", "xml"], "invalid choice"),
        (["replay", "pcaps/demo.pcapng"], "no feeds"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_gets_one_line_and_a_nonzero_exit(args, message):
    result = run_cli(*args)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("dnswatch-agent: error:")]
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_bad_manifest_names_the_field(tmp_path):
    manifest = tmp_path / "feeds.yaml"
    manifest.write_text(
        "apiVersion: dnswatch.dev/v1\nkind: GlobalThreatFeed\nmetadata: {name: x}\n"
        "spec: {content: DomainNameSet, pull: {period: 1m, http: {url: 'file:x.txt'}}}\n"
    )
    result = run_cli("replay", str(PCAPS / "demo.pcapng"), "--feed-manifest", str(manifest))
    assert result.returncode != 0 and "period" in result.stderr and "Traceback" not in result.stderr


def test_in_process_main_returns_status(capsys):
    assert main(["replay", str(PCAPS / "demo.pcapng")]) == 2
    assert "no feeds" in capsys.readouterr().err
