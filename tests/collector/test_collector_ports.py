"""Two real collectors on one port (docs/operations.md): the second is one line on stderr and exit status 2,
never a collector silently answering half the calls with its own empty database."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.agent.test_metrics import has_ipv6_loopback
from tests.collector.test_collector_metrics_port import free_port

COLLECTOR = str(Path(sys.executable).with_name("dnswatch-collector"))


def start_collector(tmp_path: Path, name: str, *flags: str) -> subprocess.Popen:
    (tmp_path / "feeds").mkdir(exist_ok=True)
    return subprocess.Popen([COLLECTOR, "--db", f"sqlite:///{tmp_path / name}.sqlite", "--feeds-dir",
                             str(tmp_path / "feeds"), "--insecure", *flags], stderr=subprocess.PIPE, text=True)


def has_open(process: subprocess.Popen, path: Path) -> bool:
    fds = Path(f"/proc/{process.pid}/fd")
    return any(os.path.realpath(fd) == str(path) for fd in fds.iterdir())


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never: {what}")
        time.sleep(0.05)


def serving(port: int) -> bool:
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
        return answer.status == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        return False


def stop(process: subprocess.Popen) -> str:
    if process.poll() is None:
        process.terminate()
    return process.communicate(timeout=30)[1]


def test_a_grpc_port_taken_between_the_first_look_and_the_bind_is_one_line_and_exit_2(tmp_path):
    """The second collector looked at the port while it was free (its store then held it up), and the first
    bound it meanwhile: two collectors starting together. gRPC's SO_REUSEPORT would let the second bind too."""
    port = free_port()
    late_db = tmp_path / "late.sqlite"
    lock = sqlite3.connect(late_db, isolation_level=None)
    lock.execute("PRAGMA journal_mode = WAL")
    lock.execute("BEGIN IMMEDIATE")  # the late collector's store waits for this write lock
    late = start_collector(tmp_path, "late", "--listen", f"127.0.0.1:{port}")
    first = None
    try:
        wait_for(lambda: late.poll() is not None or has_open(late, late_db), 30, "the late collector opens its store")
        assert late.poll() is None, late.communicate()[1]
        first = start_collector(tmp_path, "first", "--listen", f"127.0.0.1:{port}")
        wait_for(lambda: first.poll() is not None or serving(port), 30, "the first collector serves")
        assert first.poll() is None, first.communicate()[1]
        lock.execute("ROLLBACK")
        try:
            late.wait(timeout=20)
        except subprocess.TimeoutExpired:
            raise AssertionError("the late collector serves on the port the first one holds") from None
        stderr = stop(late)
        assert late.returncode == 2, stderr
        lines = [line for line in stderr.splitlines() if " INFO " not in line]
        assert len(lines) == 1 and lines[0].startswith("dnswatch-collector: error: "), stderr
        assert f"--listen 127.0.0.1:{port}: cannot listen there (the port is in use" in lines[0]
        assert "choose another port" in lines[0]
        assert serving(port)  # the first one answers, alone
    finally:
        lock.close()
        stop(late)
        if first is not None:
            first_stderr = stop(first)
            assert first.returncode == 0, first_stderr


def probe_answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_metrics_port_another_collector_holds_is_one_line_and_exit_2(tmp_path):
    metrics_port = free_port()
    first = start_collector(tmp_path, "first", "--listen", "127.0.0.1:0", "--metrics-port", str(metrics_port))
    try:
        wait_for(lambda: first.poll() is not None or probe_answers(f"http://127.0.0.1:{metrics_port}/readyz"), 30,
                 "the first collector's metrics port answers")
        second = start_collector(tmp_path, "second", "--listen", "127.0.0.1:0", "--metrics-port", str(metrics_port))
        stderr = second.communicate(timeout=60)[1]
        assert second.returncode == 2, stderr
        assert stderr.splitlines() == [
            f"dnswatch-collector: error: --metrics-port {metrics_port}: cannot listen on [::]:{metrics_port} (the "
            "port is in use: stop what listens there or choose another --metrics-port)"], stderr
    finally:
        first_stderr = stop(first)
    assert first.returncode == 0, first_stderr


def test_the_metrics_port_answers_over_ipv4_and_ipv6_unless_told_one_address(tmp_path):
    if not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback here")
    both, ipv4 = free_port(), free_port()
    every = start_collector(tmp_path, "every", "--listen", "127.0.0.1:0", "--metrics-port", str(both))
    only = start_collector(tmp_path, "only", "--listen", "127.0.0.1:0", "--metrics-port", str(ipv4),
                           "--metrics-address", "127.0.0.1")
    try:
        for path in ("/readyz", "/healthz", "/metrics"):
            wait_for(lambda: every.poll() is not None or probe_answers(f"http://127.0.0.1:{both}{path}"), 30,
                     f"{path} over IPv4")
            assert probe_answers(f"http://[::1]:{both}{path}"), path
        wait_for(lambda: only.poll() is not None or probe_answers(f"http://127.0.0.1:{ipv4}/readyz"), 30,
                 "the IPv4-only collector's metrics port answers")
        assert not probe_answers(f"http://[::1]:{ipv4}/readyz")
    finally:
        stderrs = [stop(every), stop(only)]
    assert every.returncode == 0 and only.returncode == 0, stderrs
