"""The sample data: the demo files are reproducible and say what they hold; the bench generator makes what
it is asked for; the frame and capture writers produce what scapy and tshark read back."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.utils import rdpcap

from bench.baseline import baseline_replay, load_feed_names
from bench.workload import PLANTED, WorkloadSpec, ensure_workload
from pcaps import make_demo, wire

ROOT = Path(__file__).resolve().parents[1]
PCAPS = ROOT / "pcaps"
EXPECTED = json.loads((PCAPS / "demo-expected.json").read_text(encoding="utf-8"))
needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed (make test installs it)")


def _tshark_fields(path: Path, *fields: str, extra: tuple[str, ...] = ()) -> list[list[str]]:
    command = ["tshark", "-n", "-r", str(path), *extra, "-T", "fields", "-E", "separator=\t", "-E", "aggregator=,"]
    for name in fields:
        command += ["-e", name]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines()]


# --- the demo -----------------------------------------------------------------------------------------

def test_committed_demo_files_are_what_the_generator_makes():
    assert make_demo.check() == []


def test_check_flag_exits_0_when_current(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pcaps.make_demo", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_check_flag_names_the_file_that_differs(tmp_path):
    make_demo.generate(tmp_path)
    (tmp_path / "demo-exfil.txt").write_text("edited by hand\n")
    result = subprocess.run([sys.executable, "-m", "pcaps.make_demo", "--check", "--out", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 1
    assert "demo-exfil.txt" in result.stderr
    assert "demo.pcapng" not in result.stderr


def test_generation_is_byte_for_byte_reproducible(tmp_path):
    make_demo.generate(tmp_path / "a")
    make_demo.generate(tmp_path / "b")
    for name in make_demo.OUTPUTS:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_demo_capture_reads_with_scapy_and_has_the_recorded_packet_count():
    packets = rdpcap(str(PCAPS / "demo.pcapng"))
    assert len(packets) == EXPECTED["capture"]["packets"]
    assert 200 <= len(packets) <= 1000
    assert all(packet.haslayer(Ether) for packet in packets)
    assert any(packet.haslayer(IPv6) for packet in packets)
    assert any(packet.haslayer(TCP) for packet in packets)


def test_demo_capture_starts_at_the_fixed_time_and_spans_less_than_a_minute():
    times = [float(packet.time) for packet in rdpcap(str(PCAPS / "demo.pcapng"))]
    assert times == sorted(times)
    assert make_demo.START_US / 1e6 <= times[0] < make_demo.START_US / 1e6 + 1
    assert times[-1] - times[0] < 24  # every aggregate stays inside one minute, 20:11:36 to 20:12:00


@needs_tshark
def test_tshark_finds_exactly_the_recorded_question_names():
    found = {name for row in _tshark_fields(PCAPS / "demo.pcapng", "dns.qry.name") for name in row[0].split(",") if name}
    assert found == set(EXPECTED["capture"]["qnames"])


@needs_tshark
def test_every_expected_domain_and_address_is_in_the_capture():
    rows = _tshark_fields(PCAPS / "demo.pcapng", "dns.qry.name", "dns.resp.name", "dns.cname", "dns.a", "dns.aaaa")
    seen = {value for row in rows for cell in row for value in cell.split(",") if value}
    for event in EXPECTED["events"]:
        assert set(event["suspicious_domains"]) <= seen, event
        assert set(event["suspicious_ips"]) <= seen, event


@needs_tshark
def test_tshark_finds_no_bad_checksum_and_exactly_the_planted_malformed_messages():
    checks = ("-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE")
    bad = _tshark_fields(PCAPS / "demo.pcapng", "frame.number", extra=checks + (
        "-Y", "ip.checksum.status == \"Bad\" || udp.checksum.status == \"Bad\" || tcp.checksum.status == \"Bad\""))
    assert bad == []
    malformed = _tshark_fields(PCAPS / "demo.pcapng", "frame.number", extra=("-Y", "_ws.malformed || _ws.expert.severity == error"))
    assert 1 <= len(malformed) <= EXPECTED["capture"]["malformed"]


def test_pod_list_is_a_v1_list_of_full_pods():
    pods = json.loads((PCAPS / "demo-pods.json").read_text(encoding="utf-8"))
    assert pods["apiVersion"] == "v1" and pods["kind"] == "List"
    for pod in pods["items"]:
        assert pod["kind"] == "Pod"
        assert pod["metadata"]["name"] and pod["metadata"]["namespace"] and pod["metadata"]["ownerReferences"]
        assert pod["spec"]["nodeName"] and pod["spec"]["containers"]
        assert pod["status"]["podIP"] == pod["status"]["podIPs"][0]["ip"]
    dns = [p for p in pods["items"] if p["metadata"]["labels"].get("k8s-app") == "kube-dns"]
    assert "10.244.0.5" in {p["status"]["podIP"] for p in dns}


def test_every_pod_named_in_the_expected_events_exists_and_holds_the_source_address():
    items = json.loads((PCAPS / "demo-pods.json").read_text(encoding="utf-8"))["items"]
    pods = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in items}
    for event in EXPECTED["events"]:
        key = (event["source_namespace"], event["source_name"])
        if key == ("-", "-"):
            assert all(event["source_ip"] not in {ip["ip"] for ip in p["status"]["podIPs"]} for p in items)
            continue
        pod = pods[key]
        assert pod["status"]["phase"] == "Running"
        assert event["source_ip"] in {ip["ip"] for ip in pod["status"]["podIPs"]}


def test_a_completed_job_pod_shares_an_address_with_a_running_pod():
    items = json.loads((PCAPS / "demo-pods.json").read_text(encoding="utf-8"))["items"]
    done = [p for p in items if p["status"]["phase"] == "Succeeded"]
    assert done and done[0]["metadata"]["ownerReferences"][0]["kind"] == "Job"
    sharing = [p for p in items if p["status"]["podIP"] == done[0]["status"]["podIP"] and p["status"]["phase"] == "Running"]
    assert len(sharing) == 1


def test_expected_events_are_the_ground_truth_shape():
    events = EXPECTED["events"]
    assert len(events) >= 8
    for event in events:
        assert set(event) >= {"source_namespace", "source_name", "suspicious_domains", "suspicious_ips", "feeds", "count"}
        assert event["count"] >= 1 and event["feeds"] and (event["suspicious_domains"] or event["suspicious_ips"])
        assert set(event["feeds"]) <= {"c2", "exfil", "badips"}
    beacon = [e for e in events if e["suspicious_domains"] == ["evil.example"]]
    assert [e["count"] for e in beacon] == [6]
    assert not any(e["source_namespace"] == "kube-system" for e in events)


def test_feed_manifests_point_at_the_feed_files():
    documents = list(yaml.safe_load_all((PCAPS / "demo-feeds.yaml").read_text(encoding="utf-8")))
    assert {d["metadata"]["name"] for d in documents} == set(EXPECTED["feeds"])
    for document in documents:
        assert document["apiVersion"] == "dnswatch.dev/v1" and document["kind"] == "GlobalThreatFeed"
        url = document["spec"]["pull"]["http"]["url"]
        assert url.startswith("file:") and (PCAPS / url.removeprefix("file:")).is_file()
    assert [d["metadata"]["name"] for d in documents if d["spec"].get("matchSubdomains")] == ["exfil"]
    assert {d["spec"]["content"] for d in documents} == {"DomainNameSet", "IPSet"}


def test_c2_feed_has_a_unicode_entry_and_the_capture_carries_its_punycode():
    assert "bücher-c2.example" in (PCAPS / "demo-c2.txt").read_text(encoding="utf-8")
    assert "xn--bcher-c2-65a.example" in EXPECTED["capture"]["qnames"]


# --- the frame and capture writers ----------------------------------------------------------------------

@pytest.mark.parametrize("src,dst", [("10.244.1.10", "10.96.0.10"), ("fd00:10:244:1::a", "2001:4860:4860::8888")])
def test_udp_and_tcp_frames_carry_the_checksums_scapy_computes(src, dst):
    s, d = wire.ip_bytes(src), wire.ip_bytes(dst)
    for payload in (b"", b"\x01", b"odd-length payload", bytes(range(200))):
        for frame in (wire.udp_frame(b"\x02" * 6, wire.CALICO_HOST_MAC, s, d, 40000, 53, payload, ident=7),
                      wire.tcp_frame(b"\x02" * 6, wire.CALICO_HOST_MAC, s, d, 40000, 53, 1, 2, wire.TCP_ACK, payload)):
            packet = Ether(frame)
            layer = packet[UDP] if packet.haslayer(UDP) else packet[TCP]
            written = layer.chksum
            del layer.chksum
            if packet.haslayer(IP):
                ip_written = packet[IP].chksum
                del packet[IP].chksum
            rebuilt = Ether(bytes(packet))
            expected = (rebuilt[UDP] if rebuilt.haslayer(UDP) else rebuilt[TCP]).chksum
            assert written == expected or {written, expected} == {0, 0xFFFF}
            if rebuilt.haslayer(IP):
                assert ip_written == rebuilt[IP].chksum
            assert bytes(layer.payload) == payload


def test_classic_pcap_round_trips_timestamps_and_frames(tmp_path):
    frames = [wire.udp_frame(b"\x02" * 6, wire.CALICO_HOST_MAC, wire.ip_bytes("10.0.0.1"), wire.ip_bytes("10.0.0.2"),
                             1000 + i, 53, b"x" * i) for i in range(3)]
    path = tmp_path / "t.pcap"
    with open(path, "wb") as stream:
        writer = wire.PcapWriter(stream)
        for i, frame in enumerate(frames):
            writer.write(make_demo.START_US + i * 1_500_001, frame)
        writer.flush()
    packets = rdpcap(str(path))
    assert [bytes(p) for p in packets] == frames
    assert [int(round(float(p.time) * 1e6)) for p in packets] == [make_demo.START_US + i * 1_500_001 for i in range(3)]


def test_pcapng_writer_refuses_an_interface_it_never_described():
    writer = wire.PcapngWriter(io.BytesIO())
    with pytest.raises(ValueError):
        writer.write(0, b"\x00" * 14, interface=0)


# --- the benchmark workload -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_workload(tmp_path_factory):
    return ensure_workload(WorkloadSpec(packets=2_000, domains=1_000, hit_rate=0.01), cache_dir=tmp_path_factory.mktemp("bench"))


def test_small_workload_capture_has_the_requested_packet_count(small_workload):
    packets = rdpcap(str(small_workload.capture))
    assert len(packets) == 2_000
    assert all(packet.haslayer(Ether) for packet in packets)
    assert any(packet.haslayer(IPv6) for packet in packets)


def test_small_workload_feed_has_the_requested_distinct_domains_and_the_planted_ones(small_workload):
    lines = small_workload.feed.read_text(encoding="ascii").splitlines()
    assert len(lines) == len(set(lines)) == 1_000
    assert {entry for entry, _, _, _ in PLANTED} <= set(lines)
    assert any(line.startswith("*.") for line in lines)


def test_workload_is_cached_by_its_parameters(small_workload):
    again = ensure_workload(small_workload.spec, cache_dir=small_workload.capture.parent.parent)
    assert again.cached and again.capture == small_workload.capture and again.hit_messages == small_workload.hit_messages


def test_baseline_counts_every_packet_and_finds_exactly_the_planted_matches(small_workload):
    result = baseline_replay(small_workload.capture, load_feed_names(small_workload.feed))
    assert result["packets"] == 2_000
    assert small_workload.hit_messages > 0
    assert result["matches"] == small_workload.hit_messages
    assert result["malformed"] == 0
    assert result["seconds"] > 0


def test_feed_never_covers_a_benign_name_of_the_capture(tmp_path):
    work = ensure_workload(WorkloadSpec(packets=3_000, domains=50_000, hit_rate=0.0), cache_dir=tmp_path)
    assert work.hit_messages == 0
    assert baseline_replay(work.capture, load_feed_names(work.feed))["matches"] == 0


@needs_tshark
def test_small_workload_dns_reads_cleanly_in_tshark(small_workload):
    rows = _tshark_fields(small_workload.capture, "frame.number", extra=("-Y", "_ws.malformed || _ws.expert.severity == error"))
    assert rows == []
