"""`dnswatch-collector --metrics-port`: the real process serves /metrics and its probes (docs/operations.md)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import httpx
from prometheus_client.parser import text_string_to_metric_families

from dnswatch_pb.v1 import distribution_pb2, distribution_pb2_grpc, events_pb2, events_pb2_grpc
from tests.collector.eventdata import event
from tests.collector.running import feed_server, feeds_dir  # noqa: F401  (fixtures)

COLLECTOR = str(Path(sys.executable).with_name("dnswatch-collector"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def wait_until(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while True:
        try:
            value = condition()
            if value:
                return value
        except (httpx.HTTPError, grpc.RpcError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"never: {what}")
        time.sleep(0.1)


def test_metrics_probes_and_json_logs_of_the_real_process(tmp_path, feeds_dir):  # noqa: F811
    grpc_port, metrics_port = free_port(), free_port()
    process = subprocess.Popen([COLLECTOR, "--db", f"sqlite:///{tmp_path / 'db.sqlite'}", "--listen",
                                f"127.0.0.1:{grpc_port}", "--feeds-dir", str(feeds_dir), "--feeds-dir-poll", "0.1",
                                "--insecure", "--metrics-port", str(metrics_port), "--log-format", "json"],
                               stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{metrics_port}"
    try:
        wait_until(lambda: httpx.get(f"{base}/readyz").status_code == 200, 20, "ready")
        assert httpx.get(f"{base}/healthz").status_code == 200
        scraped = wait_until(lambda: (lambda m: m if m.get(("dnswatch_collector_feed_entries", (("content", "DomainNameSet"), ("feed", "c2"))))
                                      else None)(samples(httpx.get(f"{base}/metrics").text)), 20, "c2 pulled")
        assert scraped[("dnswatch_collector_feed_entries", (("content", "DomainNameSet"), ("feed", "c2")))] == 2002
        assert scraped[("dnswatch_collector_feed_version", (("content", "DomainNameSet"), ("feed", "c2")))] == 1

        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            batch = events_pb2.EventBatch(batch_id=1, node="node-1", events=[
                events_pb2.Event(id=e["id"], json=json.dumps(e)) for e in (event(1), event(2))])
            acks = list(events_pb2_grpc.EventIngestStub(channel).Send(iter([batch]), timeout=10))
        assert [a.batch_id for a in acks] == [1]
        after = samples(httpx.get(f"{base}/metrics").text)
        assert after[("dnswatch_collector_events_ingested_total", (("outcome", "inserted"),))] == 2
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    logged = [json.loads(line) for line in stderr.splitlines()]
    assert any("listening on" in entry["message"] for entry in logged), logged


def test_a_taken_metrics_port_is_one_line(tmp_path, feeds_dir):  # noqa: F811
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        result = subprocess.run([COLLECTOR, "--db", f"sqlite:///{tmp_path / 'db.sqlite'}", "--listen",
                                 "127.0.0.1:0", "--feeds-dir", str(feeds_dir), "--insecure", "--metrics-port",
                                 str(taken.getsockname()[1])], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "--metrics-port" in result.stderr, result.stderr


def streams_open(base: str) -> dict[str, float]:
    scraped = samples(httpx.get(f"{base}/metrics").text)
    return {dict(labels)["stream"]: value for (name, labels), value in scraped.items()
            if name == "dnswatch_collector_streams"}


def test_open_streams_are_counted_while_they_are_open(tmp_path, feeds_dir):  # noqa: F811
    grpc_port, metrics_port = free_port(), free_port()
    process = subprocess.Popen([COLLECTOR, "--db", f"sqlite:///{tmp_path / 'db.sqlite'}", "--listen",
                                f"127.0.0.1:{grpc_port}", "--feeds-dir", str(feeds_dir), "--insecure",
                                "--metrics-port", str(metrics_port)], stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{metrics_port}"
    ingest_done = threading.Event()

    def batches():
        yield events_pb2.EventBatch(batch_id=1, node="node-1", events=[
            events_pb2.Event(id=e["id"], json=json.dumps(e)) for e in (event(1),)])
        ingest_done.wait(30)  # the agent's stream stays open, idle, until the test ends it

    try:
        wait_until(lambda: httpx.get(f"{base}/readyz").status_code == 200, 20, "ready")
        assert streams_open(base) == {"ingest": 0, "feeds": 0, "watch": 0}
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            watches = [events_pb2_grpc.EventsStub(channel).Watch(events_pb2.WatchEventsRequest()) for _ in range(2)]
            feeds = distribution_pb2_grpc.FeedDistributionStub(channel).Subscribe(
                distribution_pb2.SubscribeRequest(node="node-1"))
            ingest = events_pb2_grpc.EventIngestStub(channel).Send(batches())
            for call in (*watches, feeds, ingest):
                next(call)  # the first response: the call is being served
            assert streams_open(base) == {"ingest": 1, "feeds": 1, "watch": 2}
            watches[0].cancel()
            wait_until(lambda: streams_open(base)["watch"] == 1, 20, "a cancelled watch closes")
            ingest_done.set()
            assert list(ingest) == []  # the agent ended its stream: no more acks
            feeds.cancel()
            wait_until(lambda: streams_open(base) == {"ingest": 0, "feeds": 0, "watch": 1}, 20, "streams close")
            watches[1].cancel()
            wait_until(lambda: streams_open(base) == {"ingest": 0, "feeds": 0, "watch": 0}, 20, "all closed")
        opened = samples(httpx.get(f"{base}/metrics").text)
        assert {kind: opened[("dnswatch_collector_streams_opened_total", (("stream", kind),))]
                for kind in ("ingest", "feeds", "watch")} == {"ingest": 1, "feeds": 1, "watch": 2}
    finally:
        ingest_done.set()
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
