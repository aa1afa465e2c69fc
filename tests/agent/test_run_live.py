"""`dnswatch-agent run` on the netns testbed: the real command in the node namespace, real clients in pods.

Each test starts the agent as a subprocess (`ip netns exec NODE .venv/bin/dnswatch-agent run ...`), waits
for it to say it captures on the pods' interfaces, queries from the pods with dig and kdig (UDP and TCP,
IPv4 and IPv6), stops it with SIGTERM and reads the events it printed and the summary on stderr.
"""

from __future__ import annotations

import fcntl
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness.netns import DNS_IPV4, Testbed
from tests.netns import testbed  # noqa: F401  (testbed is a fixture)

AGENT = str(Path(sys.executable).with_name("dnswatch-agent"))
SUMMARY = re.compile(
    r"captured (?P<frames>\d+) packets on (?P<interfaces>\d+) interfaces .*?: (?P<messages>\d+) DNS messages, "
    r"(?P<malformed>\d+) malformed, (?P<matched>\d+) matched, (?P<events>\d+) events, "
    r"(?P<duplicates>\d+) duplicate copies skipped; kernel: (?P<kernel_packets>\d+) packets, (?P<drops>\d+) drops"
)


class RunningAgent:
    """The agent in the node namespace; stdout and stderr are read as they come (so neither pipe fills), or
    stdout only from `read_stdout()` on when `read_stdout` is false (its pipe then fills, and the agent blocks
    writing an event: a stalled loop)."""

    def __init__(self, bed: Testbed, args: list[str], *, read_stdout: bool = True) -> None:
        self.process = bed.popen_in_node([AGENT, "run", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         text=True)
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._changed = threading.Condition()
        self._readers = [threading.Thread(target=self._read, args=(self.process.stdout, self.stdout), daemon=True),
                         threading.Thread(target=self._read, args=(self.process.stderr, self.stderr), daemon=True)]
        self._readers[1].start()
        if read_stdout:
            self.read_stdout()
        else:  # the smallest pipe the kernel gives: a few events fill it
            fcntl.fcntl(self.process.stdout.fileno(), fcntl.F_SETPIPE_SZ, 4096)

    def read_stdout(self) -> None:
        self._readers[0].start()

    def _read(self, stream, lines: list[str]) -> None:
        for line in stream:
            with self._changed:
                lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for_log(self, text: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not any(text in line for line in self.stderr):
                if self.process.poll() is not None and not self._readers[1].is_alive():
                    raise AssertionError(f"agent exited ({self.process.returncode}): {self.stderr}")
                if not self._changed.wait(max(0.0, deadline - time.monotonic())) and time.monotonic() > deadline:
                    raise AssertionError(f"agent never logged {text!r}: {self.stderr}")

    def logged_number(self, pattern: str) -> int:
        """The number a log line matching `pattern` (one group) gave, once it has been logged."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            for line in list(self.stderr):
                found = re.search(pattern, line)
                if found:
                    return int(found.group(1))
            time.sleep(0.05)
        raise AssertionError(f"agent never logged {pattern!r}: {self.stderr}")

    def stop(self) -> tuple[int, list[dict], dict[str, int]]:
        """SIGTERM; (exit status, the latest emission of every event, the summary's counters)."""
        self.process.send_signal(signal.SIGTERM)
        status = self.process.wait(timeout=30)
        for reader in self._readers:
            reader.join(timeout=10)
        assert not any("Traceback" in line for line in self.stderr), self.stderr
        latest: dict[str, dict] = {}
        for line in self.stdout:
            event = json.loads(line)
            latest[event["id"]] = event
        summary = next((SUMMARY.search(line) for line in self.stderr if SUMMARY.search(line)), None)
        assert summary is not None, self.stderr
        return status, list(latest.values()), {k: int(v) for k, v in summary.groupdict().items()}


@pytest.fixture
def feeds(tmp_path: Path) -> list[str]:
    (tmp_path / "c2.txt").write_text("# command and control\nevil.example\n*.tunnel.example\n")
    (tmp_path / "badips.txt").write_text("203.0.113.0/24\n")
    return ["--feed", f"c2={tmp_path / 'c2.txt'}", "--ip-feed", f"badips={tmp_path / 'badips.txt'}"]


def http_get_all(port: int, paths: list[str]) -> dict[str, tuple[int, str]]:
    import urllib.error
    import urllib.request

    answers = {}
    for path in paths:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
                answers[path] = (response.status, response.read().decode())
        except urllib.error.HTTPError as error:
            answers[path] = (error.code, error.read().decode())
    return answers


def by_pod(events: list[dict]) -> dict[tuple[str, str, tuple[str, ...]], dict]:
    out = {}
    for event in events:
        key = (event["source_namespace"], event["source_name"], tuple(event["record"]["suspicious_domains"]
                                                                       + event["record"]["suspicious_ips"]))
        assert key not in out, f"two events for {key}: {event} and {out[key]}"
        out[key] = event
    return out


def test_events_name_the_pods_over_udp_tcp_ipv4_ipv6(testbed, feeds, tmp_path):
    bed = testbed
    web = bed.add_pod("web", namespace="shop", labels={"app": "web"})
    api = bed.add_pod("api")
    late = bed.planned_pod("late")  # in the pod list now, on the node only after the agent started
    pods = bed.write_pod_list(tmp_path / "pods.json", extra=[late])
    agent = RunningAgent(bed, ["--interfaces", "cali*", "--pods", str(pods), "--node", bed.node_name, *feeds,
                               "-o", "json", "--metrics-port", "0"])
    agent.wait_for_log(f"capturing on {web.host_interface}")
    agent.wait_for_log(f"capturing on {api.host_interface}")
    metrics_port = agent.logged_number(r"metrics, /healthz and /readyz on port (\d+)")

    assert bed.dig(web, "evil.example") == ["198.51.100.7"]
    assert bed.dig(web, "evil.example") == ["198.51.100.7"]
    assert bed.dig(web, "evil.example", tcp=True) == ["198.51.100.7"]
    assert bed.kdig(web, "evil.example", qtype="AAAA", ipv6=True) == ["2001:db8::7"]
    assert bed.kdig(web, "evil.example", ipv6=True, tcp=True) == ["198.51.100.7"]
    assert bed.dig(api, "evil.example", qtype="AAAA", ipv6=True, tcp=True) == ["2001:db8::7"]
    assert bed.dig(api, "cdn.example") == ["203.0.113.9"]  # only its answer is suspicious
    for tcp in (False, True):  # clean names: no event, whatever the transport and family
        assert bed.kdig(api, "clean.example", tcp=tcp) == ["192.0.2.10"]
        assert bed.dig(web, "clean.example", qtype="AAAA", ipv6=True, tcp=tcp) == ["2001:db8::10"]

    bed.add_pod("late")
    agent.wait_for_log(f"capturing on {late.host_interface}")
    assert bed.dig(bed.pods["late"], "x.nowhere.tunnel.example", ipv6=True) == []  # REFUSED: the question suffices
    bed.delete_pod(api)
    agent.wait_for_log(f"stopped capturing on {api.host_interface} (gone)")
    # The endpoint listens in the node's namespace: ask from there.
    probes = bed.call_in_node(http_get_all, metrics_port, ["/healthz", "/readyz", "/metrics"])

    status, events, summary = agent.stop()
    assert status == 0
    found = by_pod(events)
    assert set(found) == {
        ("shop", "web", ("evil.example",)),
        ("default", "api", ("evil.example",)),
        ("default", "api", ("203.0.113.9",)),
        ("default", "late", ("x.nowhere.tunnel.example",)),
    }
    web_event = found["shop", "web", ("evil.example",)]
    assert web_event["record"]["count"] == 5
    assert web_event["record"]["feeds"] == ["c2"]
    assert web_event["source_labels"] == {"app": "web"}
    assert web_event["host"] == bed.node_name
    assert web_event["source_ip"] in (web.ipv4, web.ipv6)
    api_event = found["default", "api", ("evil.example",)]
    assert (api_event["record"]["count"], api_event["source_ip"]) == (1, api.ipv6)
    assert api_event["record"]["qtype"] == "AAAA"
    assert api_event["record"]["answers"] == ["evil.example AAAA 2001:db8::7"]
    ip_event = found["default", "api", ("203.0.113.9",)]
    assert ip_event["record"]["feeds"] == ["badips"] and ip_event["record"]["suspicious_ips"] == ["203.0.113.9"]
    late_event = found["default", "late", ("x.nowhere.tunnel.example",)]
    assert late_event["record"]["matches"][0]["entry"] == "*.tunnel.example"
    assert late_event["record"]["rcode"] == "REFUSED" and late_event["source_ip"] == late.ipv6
    assert not any("clean.example" in json.dumps(event) for event in events)

    assert summary["drops"] == 0 and summary["kernel_packets"] > 0
    assert summary["interfaces"] == 3 and summary["malformed"] == 0
    assert probes["/healthz"][0] == 200 and probes["/readyz"][0] == 200
    exposition = probes["/metrics"][1]
    assert f'dnswatch_agent_kernel_drops_total{{interface="{web.host_interface}"}} 0.0' in exposition
    assert f'dnswatch_agent_interface_packets_total{{interface="{late.host_interface}"}}' in exposition
    assert api.host_interface not in exposition  # its series ended with its interface
    # 12 exchanges (7 over UDP, 5 over TCP), each a query and a response.
    assert summary["messages"] == 24
    assert summary["matched"] == 15  # both messages of the 7 suspicious names, cdn.example's response
    assert summary["duplicates"] == 0  # no packet crosses two captured interfaces here


@pytest.mark.parametrize("reader", ["ring", "recvfrom"])
def test_dns_served_by_a_pod_is_counted_once(testbed, feeds, tmp_path, reader):
    """Pod to pod through the node: every packet crosses two captured interfaces, and is read once — from
    TPACKET_V3 rings (the default) and packet by packet alike."""
    bed = testbed
    web = bed.add_pod("web", namespace="shop")
    dns = bed.add_pod("coredns-1", namespace="kube-system", labels={"k8s-app": "kube-dns"})
    bed.start_dns(dns)
    pods = bed.write_pod_list(tmp_path / "pods.json")
    agent = RunningAgent(bed, ["--interfaces", "cali*", "--pods", str(pods), *feeds,
                               *(["--ring-mb", "0"] if reader == "recvfrom" else [])])
    agent.wait_for_log(f"capturing on {web.host_interface}")
    agent.wait_for_log(f"capturing on {dns.host_interface}")

    for tcp in (False, True):
        assert bed.dig(web, "evil.example", tcp=tcp, server=dns.ipv4) == ["198.51.100.7"]
        assert bed.kdig(web, "evil.example", tcp=tcp, ipv6=True, server=dns.ipv6) == ["198.51.100.7"]
    status, events, summary = agent.stop()

    assert status == 0
    assert [(e["source_name"], e["record"]["count"], e["record"]["server_ip"] in (dns.ipv4, dns.ipv6))
            for e in by_pod(events).values()] == [("web", 4, True)], (summary, agent.stderr, events)
    assert summary["messages"] == 8 and summary["drops"] == 0, (summary, agent.stderr)
    # Every packet crossed both interfaces: one copy read, one skipped.
    assert summary["duplicates"] == summary["frames"] == summary["kernel_packets"] // 2, summary


def test_an_idle_agent_flushes_and_exits_on_sigint(testbed, feeds):
    bed = testbed
    agent = RunningAgent(bed, ["--interfaces", "nothing-matches*", *feeds, "-o", "table"])
    agent.wait_for_log("feed c2")
    time.sleep(0.3)
    agent.process.send_signal(signal.SIGINT)
    assert agent.process.wait(timeout=30) == 0
    for reader in agent._readers:
        reader.join(timeout=10)
    assert agent.stdout == ["TIME  SOURCE  CLIENT  SUSPICIOUS  FEEDS  QUERY  RCODE  COUNT"]
    assert any("captured 0 packets on 0 interfaces" in line and "0 drops" in line for line in agent.stderr)


def test_no_interface_matching_warns_and_the_agent_is_not_ready(testbed, feeds):
    bed = testbed
    bed.add_pod("web")  # a cali* interface is there, but not what the agent is told to capture
    agent = RunningAgent(bed, ["--interfaces", "nothing-matches*", *feeds, "--metrics-port", "0"])
    try:
        port = agent.logged_number(r"metrics, /healthz and /readyz on port (\d+)")
        agent.wait_for_log("no interface matches --interfaces nothing-matches* (this host has ")
        time.sleep(1.5)  # the capture loop has come round since: that alone must not make it ready
        probes = bed.call_in_node(http_get_all, port, ["/readyz", "/healthz"])
        assert probes["/readyz"][0] == 503 and probes["/healthz"][0] == 200, probes
    finally:
        status, _, summary = agent.stop()
    assert status == 0 and summary["interfaces"] == 0
    warning = next(line for line in agent.stderr if "no interface matches" in line)
    assert "/readyz answers 503 until one appears" in warning and "cali" in warning


@pytest.mark.parametrize(
    "args, message",
    [
        (["--interfaces", ",", "--feed", "c2=/dev/null"], "--interfaces needs at least one"),
        (["--interfaces", "cali*"], "no feeds"),
        (["--interfaces", "cali*", "--feed", "c2=/nonexistent/feed.txt"], "/nonexistent/feed.txt"),
        (["--interfaces", "cali*", "--feed", "c2=/dev/null", "--pods", "/nonexistent.json"], "/nonexistent.json"),
        (["--interfaces", "cali*", "--feed", "c2=/dev/null", "--ports", "0"], "ports"),
        (["--feed", "c2=/dev/null", "--insecure"], "--insecure: only with --collector"),
        (["--feed", "c2=/dev/null", "--spool-dir", "/tmp"], "--spool-dir: only with --collector"),
        (["--collector", "127.0.0.1:1", "--insecure", "--feed", "c2=/dev/null"], "drop --feed"),
        (["--feed", "c2=/dev/null", "--ring-mb", "-1"], "--ring-mb"),
        (["--feed", "c2=/dev/null", "--liveness-timeout", "1"], "--liveness-timeout must be at least 2 seconds"),
        (["--feed", "c2=/dev/null", "--liveness-timeout", "soon"], "--liveness-timeout"),
    ],
)
def test_bad_input_is_one_line(args, message):
    result = subprocess.run([AGENT, "run", *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    last = result.stderr.splitlines()[-1]
    assert last.startswith("dnswatch-agent: error: ") and message in last, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_pods_from_the_api_and_a_reused_address(testbed, feeds, tmp_path):
    """--kubeconfig: the pods of this node come from the API (the fake server, listening in the node's
    namespace); a pod deleted and its address given to a new pod: each query names the pod of its time."""
    from tests.kubeapi import FakeKubeAPI

    bed = testbed
    api = bed.call_in_node(FakeKubeAPI().start)
    try:
        web = bed.add_pod("web", namespace="shop", labels={"app": "web"})
        api.put(web.as_kubernetes(bed.node_name))
        other_node = bed.planned_pod("elsewhere")  # on another node: the field selector keeps it out
        api.put(other_node.as_kubernetes("another-node"))
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": api.url}}],
            "users": [{"name": "agent", "user": {"token": "not-checked"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "agent"}}],
        }))
        agent = RunningAgent(bed, ["--interfaces", "cali*", "--kubeconfig", str(kubeconfig), "--node",
                                   bed.node_name, *feeds])
        agent.wait_for_log(f"pods of node {bed.node_name}: 1 listed from the API")
        agent.wait_for_log(f"capturing on {web.host_interface}")
        assert bed.dig(web, "evil.example") == ["198.51.100.7"]

        bed.delete_pod(web)
        api.remove("pods", "web", "shop")
        worker = bed.add_pod("worker-0", namespace="batch", reuse=web)
        api.put(worker.as_kubernetes(bed.node_name))
        agent.wait_for_log(f"capturing on {worker.host_interface}")
        # The new pod must have reached the agent's pod watch before its query: the agent applies a watch
        # event as it reads it, well within the query's round trip.
        wait_until(lambda: ("ADDED", "worker-0") in api.watched, "the new pod sent down the agent's pod watch")
        assert bed.dig(worker, "evil.example", tcp=True) == ["198.51.100.7"]
        status, events, summary = agent.stop()
    finally:
        api.stop()

    assert status == 0
    assert worker.ipv4 == web.ipv4
    assert sorted((e["source_namespace"], e["source_name"], e["source_ip"], e["record"]["count"]) for e in events) == [
        ("batch", "worker-0", web.ipv4, 1),
        ("shop", "web", web.ipv4, 1),
    ]
    assert summary["drops"] == 0
    assert any(method == "GET" and "fieldSelector=spec.nodeName" in path for method, path in api.requests)


def test_pods_and_kubeconfig_together_are_refused(feeds):
    result = subprocess.run([AGENT, "run", "--pods", "a.json", "--kubeconfig", "k", *feeds], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and "not allowed with" in result.stderr and "Traceback" not in result.stderr


def test_loopback_packets_are_read_once_and_a_downed_interface_comes_back(testbed, feeds):
    """On loopback every packet is both sent and received: the outgoing copy is skipped. An interface taken
    down and up again keeps its socket (the kernel re-attaches it), and capture resumes."""
    bed = testbed
    web = bed.add_pod("web", namespace="shop")
    agent = RunningAgent(bed, ["--interfaces", "lo,cali*", *feeds])
    agent.wait_for_log("capturing on lo ")
    agent.wait_for_log(f"capturing on {web.host_interface}")
    # A host-network client on the node asks the node's DNS: both ends on lo.
    assert bed.in_node("dig", f"@{DNS_IPV4}", "evil.example", "+short", "+time=2", "+tries=1").stdout.split() == [
        "198.51.100.7"]
    bed.in_node("ip", "link", "set", web.host_interface, "down")
    bed.in_node("ip", "link", "set", web.host_interface, "up")
    assert bed.dig(web, "evil.example", tcp=True) == ["198.51.100.7"]
    status, events, summary = agent.stop()
    assert status == 0
    assert sorted((e["source_ip"], e["record"]["count"]) for e in events) == sorted([(DNS_IPV4, 1), (web.ipv4, 1)])
    assert summary["messages"] == 4 and summary["interfaces"] == 2 and summary["drops"] == 0, (summary, agent.stderr)
    assert summary["duplicates"] == 2  # the two UDP datagrams' outgoing copies on lo
    assert not any("stopped capturing" in line for line in agent.stderr)


def test_feeds_from_and_events_to_the_collector(testbed, tmp_path):
    """--collector: the feeds come from a real collector (pulling from a feed server), a feed changed while
    the agent runs is followed, and the events are acknowledged and stored (as `dnswatch events list` shows)."""
    from harness.collector import RunningCollector, manifest, pulled
    from harness.feedserver import FeedServer

    bed = testbed
    host_address, _ = bed.link_to_host()
    dnswatch = str(Path(sys.executable).with_name("dnswatch"))
    feeds_dir = tmp_path / "feeds"
    feeds_dir.mkdir()
    with FeedServer() as feed_server:
        feed_server.serve("/c2.txt", b"evil.example\n")
        (feeds_dir / "c2.yaml").write_text(manifest("c2", feed_server.url("/c2.txt")))
        # On every address of the test's namespace: the agent comes through the veth to the node.
        with RunningCollector(f"sqlite:///{tmp_path / 'db.sqlite'}", feeds_dir, "--listen", "0.0.0.0:0") as collector:
            collector.wait_for(pulled("c2"), "the c2 feed pulled")
            web = bed.add_pod("web", namespace="shop")
            pods = bed.write_pod_list(tmp_path / "pods.json")
            agent = RunningAgent(bed, ["--interfaces", "cali*", "--pods", str(pods), "--node", bed.node_name,
                                       "--collector", f"{host_address}:{collector.port}", "--insecure",
                                       "--spool-dir", str(tmp_path / "spool")])
            agent.wait_for_log("feed c2: 1 DomainNameSet entries (version 1 from the collector)")
            agent.wait_for_log(f"capturing on {web.host_interface}")
            assert bed.dig(web, "evil.example") == ["198.51.100.7"]
            assert bed.dig(web, "c2.tunnel.example") == ["198.51.100.8"]  # not in the feed yet

            feed_server.serve("/c2.txt", b"evil.example\nc2.tunnel.example\n")
            sync = subprocess.run([dnswatch, "--collector", collector.address, "--insecure", "feeds", "sync", "c2",
                                   "-o", "json"], capture_output=True, text=True, timeout=60)
            assert sync.returncode == 0, sync.stderr
            agent.wait_for_log("feeds changed: c2 v2")
            assert bed.dig(web, "c2.tunnel.example", tcp=True) == ["198.51.100.8"]
            status, printed, summary = agent.stop()
            assert status == 0
            assert any("events acknowledged" in line for line in agent.stderr), agent.stderr
            listed = subprocess.run([dnswatch, "--collector", collector.address, "--insecure", "events", "list",
                                     "-o", "json"], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    stored = [json.loads(line) for line in listed.stdout.splitlines()]
    names = sorted((e["source_name"], e["record"]["suspicious_domains"][0], e["record"]["count"]) for e in printed)
    assert names == [("web", "c2.tunnel.example", 1), ("web", "evil.example", 1)]
    assert sorted((e["id"], e["record"]["count"]) for e in stored) == sorted((e["id"], e["record"]["count"])
                                                                             for e in printed)
    assert all(e["host"] == bed.node_name and e["source_namespace"] == "shop" for e in stored)
    assert summary["drops"] == 0


def test_an_agent_started_before_its_collector_waits_for_it(testbed, tmp_path):
    """A node can boot before the collector is scheduled: the agent warns, captures with no feeds (not ready),
    and takes the feeds, then ships events, once the collector answers on the address it was given."""
    from harness.collector import RunningCollector, manifest, pulled
    from harness.feedserver import FeedServer

    bed = testbed
    host_address, _ = bed.link_to_host()
    with socket.socket() as probe:  # a port nothing listens on yet, for the collector to take later
        probe.bind(("0.0.0.0", 0))
        port = probe.getsockname()[1]
    feeds_dir = tmp_path / "feeds"
    feeds_dir.mkdir()
    web = bed.add_pod("web", namespace="shop")
    pods = bed.write_pod_list(tmp_path / "pods.json")
    agent = RunningAgent(bed, ["--interfaces", "cali*", "--pods", str(pods), "--node", bed.node_name,
                               "--collector", f"{host_address}:{port}", "--insecure", "--collector-timeout", "1",
                               "--metrics-port", "0"])
    try:
        agent.wait_for_log(f"cannot reach the collector at {host_address}:{port}")
        agent.wait_for_log(f"capturing on {web.host_interface}")
        metrics_port = agent.logged_number(r"metrics, /healthz and /readyz on port (\d+)")
        assert bed.call_in_node(http_get_all, metrics_port, ["/readyz"])["/readyz"][0] == 503, "no feeds: not ready"
        assert bed.dig(web, "evil.example") == ["198.51.100.7"]  # nothing to match it against yet
        with FeedServer() as feed_server:
            feed_server.serve("/c2.txt", b"evil.example\n")
            (feeds_dir / "c2.yaml").write_text(manifest("c2", feed_server.url("/c2.txt")))
            with RunningCollector(f"sqlite:///{tmp_path / 'db.sqlite'}", feeds_dir, "--listen",
                                  f"0.0.0.0:{port}") as collector:
                collector.wait_for(pulled("c2"), "the c2 feed pulled")
                agent.wait_for_log(f"collector {host_address}:{port} reached", timeout=60)
                agent.wait_for_log("feeds changed: c2 v1")
                assert bed.call_in_node(http_get_all, metrics_port, ["/readyz"])["/readyz"][0] == 200
                assert bed.dig(web, "evil.example") == ["198.51.100.7"]
                status, printed, _ = agent.stop()
                listed = subprocess.run([str(Path(sys.executable).with_name("dnswatch")), "--collector",
                                         collector.address, "--insecure", "events", "list", "-o", "json"],
                                        capture_output=True, text=True, timeout=60)
    finally:
        if agent.process.poll() is None:
            agent.process.kill()
            agent.process.wait()
    assert status == 0
    assert [(e["source_name"], e["record"]["suspicious_domains"]) for e in printed] == [("web", ["evil.example"])]
    assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == [printed[0]["id"]]


@pytest.mark.parametrize("reader", [["--ring-mb", "0.5"], ["--ring-mb", "0", "--buffer-mb", "0.0625"]])
def test_kernel_drops_are_counted(testbed, feeds, tmp_path, reader):
    """An agent that cannot keep up (stopped here with SIGSTOP, its ring or buffer made small) loses packets
    in the kernel, and says how many: the counters are PACKET_STATISTICS, not a guess."""
    bed = testbed
    load = bed.add_pod("load")
    agent = RunningAgent(bed, ["--interfaces", "cali*", *feeds, *reader])
    agent.wait_for_log(f"capturing on {load.host_interface}")
    queries = tmp_path / "queries.txt"
    queries.write_text("clean.example A\n")
    agent.process.send_signal(signal.SIGSTOP)
    try:
        bed.in_pod(load, "dnsperf", "-s", DNS_IPV4, "-d", str(queries), "-n", "2000", "-c", "2", "-q", "50",
                   timeout=120)
    finally:
        agent.process.send_signal(signal.SIGCONT)
    status, _, summary = agent.stop()
    assert status == 0
    assert summary["drops"] > 0
    assert summary["frames"] + summary["drops"] == summary["kernel_packets"] == 4000, summary


def scraped(exposition: str, name: str) -> float | None:
    """The value of an unlabelled series in a Prometheus exposition, or None when it is not there."""
    found = re.search(rf"^{re.escape(name)} (\S+)$", exposition, re.MULTILINE)
    return float(found.group(1)) if found else None


def wait_until(condition, what: str, timeout: float = 30.0, every: float = 0.05):
    """Poll `condition()` until it returns something true (returned), or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def test_a_stalled_loop_fails_healthz_and_recovers(testbed, feeds):
    """The loop stuck inside one packet — blocked writing an event to a stdout nobody reads — fails /healthz
    once --liveness-timeout has passed, and the progress gauge stops; read, the loop comes back, and so do they."""
    bed = testbed
    web = bed.add_pod("web")
    timeout = 4.0
    agent = RunningAgent(bed, ["--interfaces", "cali*", *feeds, "-o", "json", "--metrics-port", "0",
                               "--liveness-timeout", str(timeout)], read_stdout=False)
    agent.wait_for_log(f"capturing on {web.host_interface}")
    port = agent.logged_number(r"metrics, /healthz and /readyz on port (\d+)")

    def probe() -> dict[str, tuple[int, str]]:
        return bed.call_in_node(http_get_all, port, ["/healthz", "/metrics"])

    def progress() -> float:
        value = scraped(probe()["/metrics"][1], "dnswatch_agent_loop_last_progress_timestamp_seconds")
        assert value is not None
        return value

    healthy = probe()
    assert healthy["/healthz"] == (200, "alive\n")
    assert scraped(healthy["/metrics"][1], "dnswatch_agent_loop_liveness_timeout_seconds") == timeout
    before = progress()
    wait_until(lambda: progress() > before, "the progress gauge to move while the loop runs")

    # Every name is new, so every answer is an event; a few fill the 4 KiB pipe and the loop blocks in a write.
    # Asked one by one until the loop has missed a round, and no more: the packets of later names would wait
    # in the ring, whose blocks a stalled reader does not give back.
    asked = []

    def loop_stuck() -> bool:
        asked.append(f"n{len(asked)}.tunnel.example")
        bed.dig(web, asked[-1])
        return time.time() - progress() > 1.5

    wait_until(loop_stuck, "the loop to block on its stdout", timeout=60, every=0.2)
    assert probe()["/healthz"][0] == 200, "not yet: the timeout has not passed"
    wait_until(lambda: probe()["/healthz"][0] == 503, "/healthz to fail while the loop is blocked")
    assert probe()["/healthz"] == (503, "not alive\n")
    stuck_at = progress()
    assert time.time() - stuck_at >= timeout
    wait_until(lambda: time.time() - stuck_at > timeout + 1.5, "a second and a half more", every=0.1)
    assert progress() == stuck_at, "the gauge stands still while the loop is stuck"
    assert agent.process.poll() is None

    agent.read_stdout()
    wait_until(lambda: probe()["/healthz"][0] == 200, "/healthz to pass again once the loop runs")
    assert progress() > stuck_at
    status, events, summary = agent.stop()
    assert status == 0
    assert sorted(e["record"]["qname"] for e in events) == sorted(asked), "the stall lost nothing"
    assert summary["drops"] == 0
