"""`dnswatch-agent run --metrics-port` (docs/operations.md): the real process on this machine's network, capturing
no interface: its probes answer over IPv4 and IPv6 (/readyz with 503, since an agent with no interface to capture
on is not ready), and a second agent on the same port is one line and exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.agent.test_metrics import has_ipv6_loopback
from tests.collector.test_collector_metrics_port import free_port

AGENT = str(Path(sys.executable).with_name("dnswatch-agent"))


@pytest.fixture
def agent_flags(tmp_path: Path) -> list[str]:
    (tmp_path / "pods.json").write_text(json.dumps({"kind": "List", "apiVersion": "v1", "items": []}))
    (tmp_path / "c2.txt").write_text("evil.example\n")
    return ["run", "--interfaces", "no-such-interface*", "--pods", str(tmp_path / "pods.json"), "--node", "node-1",
            "--feed", f"c2={tmp_path / 'c2.txt'}"]


def status(url: str) -> int | None:
    """The HTTP status of a GET, or None when nothing answers."""
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return None


def answers(url: str) -> bool:
    return status(url) == 200


def wait_until_serving(agent: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + 30
    while not answers(f"http://127.0.0.1:{port}/healthz"):
        if agent.poll() is not None:
            raise AssertionError(f"the agent exited: {agent.communicate()[1]}")
        if time.monotonic() > deadline:
            raise AssertionError("the agent's /healthz never answered")
        time.sleep(0.1)


def stop(agent: subprocess.Popen) -> str:
    if agent.poll() is None:
        agent.terminate()
    return agent.communicate(timeout=30)[1]


def test_the_probes_answer_over_ipv4_and_ipv6_and_a_second_agent_on_the_port_is_one_line(agent_flags):
    if not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback here")
    port = free_port()
    first = subprocess.Popen([AGENT, *agent_flags, "--metrics-port", str(port)], stderr=subprocess.PIPE, text=True)
    try:
        wait_until_serving(first, port)
        for path in ("/healthz", "/metrics"):
            assert answers(f"http://127.0.0.1:{port}{path}"), path
            assert answers(f"http://[::1]:{port}{path}"), path
        assert status(f"http://127.0.0.1:{port}/readyz") == status(f"http://[::1]:{port}/readyz") == 503
        second = subprocess.run([AGENT, *agent_flags, "--metrics-port", str(port)], capture_output=True, text=True,
                                timeout=60)
        assert second.returncode == 2, second.stderr
        errors = [line for line in second.stderr.splitlines() if not line.startswith("feed c2: ")]
        assert errors == [f"dnswatch-agent: error: --metrics-port {port}: cannot listen on [::]:{port} (the port is "
                          "in use: stop what listens there or choose another --metrics-port)"], second.stderr
    finally:
        first_stderr = stop(first)
    assert first.returncode == 0, first_stderr


def test_an_ipv4_metrics_address_is_ipv4_only(agent_flags):
    if not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback here")
    port = free_port()
    agent = subprocess.Popen([AGENT, *agent_flags, "--metrics-port", str(port), "--metrics-address", "127.0.0.1"],
                             stderr=subprocess.PIPE, text=True)
    try:
        wait_until_serving(agent, port)
        assert status(f"http://[::1]:{port}/healthz") is None
    finally:
        stderr = stop(agent)
    assert agent.returncode == 0, stderr
