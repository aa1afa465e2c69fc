"""A real collector with its HTTP API, for tests/collector/test_http_*.py: `RunningCollector` given
`--http-listen` on a free port, and helpers that put events in its store and ship them to it."""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc

from dnswatch_pb.v1 import events_pb2, events_pb2_grpc
from harness.collector import RunningCollector, free_port
from tests.collector.test_events_cli import compact, ingest

__all__ = ["compact", "eventually", "ingest", "ship", "with_http"]


def with_http(db_url: str, feeds_dir, *extra: str) -> tuple[RunningCollector, int]:
    """A collector (not yet entered) and the port of its HTTP API."""
    port = free_port()
    return RunningCollector(db_url, feeds_dir, "--http-listen", f"127.0.0.1:{port}", *extra), port


def ship(address: str, node: str, batches: list[list[dict]]) -> None:
    """One agent's EventIngest.Send stream (plaintext): every batch, each acknowledged before this returns."""
    requests = [events_pb2.EventBatch(batch_id=n + 1, node=node, events=[
        events_pb2.Event(id=e["id"], json=compact(e)) for e in batch]) for n, batch in enumerate(batches)]
    with grpc.insecure_channel(address) as channel:
        acks = list(events_pb2_grpc.EventIngestStub(channel).Send(iter(requests), timeout=60))
    assert [ack.batch_id for ack in acks] == [r.batch_id for r in requests]


def eventually(condition: Callable[[], object], what: str, deadline: float = 15.0):
    """The first true value of `condition`, looked at every 50 ms until `deadline` seconds have passed."""
    end = time.monotonic() + deadline
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
