"""EventShipper against real servers: the collector's ingest servicer over a SQLite store (grpc.aio in a thread,
stopped and started again on the same port), and a real `dnswatch-collector` process killed with SIGKILL in the
middle of a stream. Every event must end up stored exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from agent.shell.shipper import EventShipper, ShipperSettings
from agent.shell.spool import LOG_NAME, Spool, SpoolError
from collector.shell.grpc_ingest import add_ingest_service
from collector.store import open_store
from tests.agent.storedevents import free_port, stored
from tests.collector.eventdata import event as make_event

ROOT = Path(__file__).resolve().parents[2]


class IngestServer:
    """The collector's ingest servicer over a SQLite store, on 127.0.0.1:`port`, in its own thread and loop."""

    def __init__(self, db_url: str, port: int) -> None:
        self.db_url = db_url
        self.port = port
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self.error: BaseException | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> IngestServer:
        self._ready.clear()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)
        self._thread.start()
        assert self._ready.wait(15) and self.error is None, f"the ingest server did not start: {self.error!r}"
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._stop.set)  # type: ignore[union-attr]
        self._thread.join(15)
        assert not self._thread.is_alive()
        self._thread = None

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        try:
            store = await open_store(self.db_url)
            server = grpc.aio.server()
            add_ingest_service(server, store)
            if server.add_insecure_port(self.address) != self.port:
                raise RuntimeError(f"cannot listen on {self.address}")
            await server.start()
        except BaseException as error:  # noqa: BLE001 - for start() to report
            self.error = error
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await server.stop(0)
            await store.close()


def connect_to(address: str):
    return lambda: grpc.insecure_channel(address)


FAST = ShipperSettings(node="node-1", linger=0.02, backoff_min=0.05, backoff_max=0.3, batch_events=100)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'collector.sqlite'}"


@pytest.fixture
def server(db_url: str) -> Iterator[IngestServer]:
    running = IngestServer(db_url, free_port()).start()
    try:
        yield running
    finally:
        running.stop()


def test_everything_offered_is_acknowledged_and_stored_once(server, db_url) -> None:
    events = [make_event(i) for i in range(1000)]
    with EventShipper(connect_to(server.address), FAST) as shipper:
        for event in events:
            shipper.offer(event)
        # Re-emissions of growing events: the latest supersedes, the store keeps one row with the last count.
        for i in range(0, 1000, 100):
            shipper.offer(make_event(i, count=4))
        assert shipper.flush(30)
        stats = shipper.stats()
    assert stats.queued == stats.in_flight == stats.dropped == 0
    assert stats.acked + stats.replaced >= 1010 and stats.acked <= 1010
    have, _ = stored(db_url)
    assert len(have) == 1000
    assert [have[make_event(i)["id"]]["record"]["count"] for i in range(0, 1000, 100)] == [4] * 10
    assert have[events[1]["id"]] == events[1]


def test_the_shipper_reconnects_when_the_collector_comes_back_on_the_same_port(server, db_url) -> None:
    with EventShipper(connect_to(server.address), FAST) as shipper:
        for i in range(300):
            shipper.offer(make_event(i))
        assert shipper.flush(30)
        server.stop()
        for i in range(300, 600):
            shipper.offer(make_event(i))
        assert not shipper.flush(0.5), "nobody acknowledges while the collector is away"
        assert shipper.stats().last_error
        server.start()
        assert shipper.flush(30)
        stats = shipper.stats()
    assert stats.acked == 600 and stats.dropped == 0 and stats.streams >= 2
    have, seq = stored(db_url)
    assert set(have) == {make_event(i)["id"] for i in range(600)} and seq == 600


def test_bounds_drop_the_oldest_and_count_them(db_url) -> None:
    port = free_port()
    settings = ShipperSettings(node="node-1", max_events=100, linger=0.01, backoff_min=0.05, backoff_max=0.2)
    # No channel until the events are offered: gRPC pulls batches off the queue as soon as a call starts,
    # even one that never connects, and in-flight events are dropped last (they are likely to be acknowledged);
    # with nothing in flight, exactly the oldest queued events must go.
    reachable = threading.Event()

    def connect() -> grpc.Channel:
        if not reachable.is_set():
            raise ConnectionRefusedError("the collector is not up yet")
        return grpc.insecure_channel(f"127.0.0.1:{port}")

    with EventShipper(connect, settings) as shipper:
        for i in range(250):
            shipper.offer(make_event(i))  # never blocks, whatever the collector does
        stats = shipper.stats()
        assert (stats.queued, stats.in_flight, stats.dropped) == (100, 0, 150)
        server = IngestServer(db_url, port).start()
        reachable.set()
        try:
            assert shipper.flush(30)
        finally:
            server.stop()
        assert shipper.stats().acked == 100
    have, _ = stored(db_url)
    assert set(have) == {make_event(i)["id"] for i in range(150, 250)}, "the newest 100 were kept"


def test_a_batch_the_collector_refuses_is_dropped_and_the_rest_goes_on(server, db_url) -> None:
    events = [make_event(i) for i in range(30)]
    events[15]["time"] = "yesterday"  # the collector cannot store it (BadEvent): INVALID_ARGUMENT
    # Batches of exactly 10 (the linger never expires during the test): events 10..19 travel together.
    settings = ShipperSettings(node="node-1", batch_events=10, linger=60, backoff_min=0.05, backoff_max=0.2)
    with EventShipper(connect_to(server.address), settings) as shipper:
        for event in events:
            shipper.offer(event)
        assert shipper.flush(30)
        stats = shipper.stats()
    assert (stats.acked, stats.refused, stats.dropped) == (20, 10, 0)
    assert "INVALID_ARGUMENT: batch 2: event " in stats.last_error and "not an RFC 3339 time" in stats.last_error
    have, _ = stored(db_url)
    assert set(have) == {event["id"] for event in events[:10] + events[20:]}


def test_the_spool_resends_after_an_agent_restart(server, db_url, tmp_path) -> None:
    spool = tmp_path / "spool"
    settings = ShipperSettings(node="node-1", linger=0.02, backoff_min=0.05, backoff_max=0.3, spool_dir=spool)
    with EventShipper(connect_to(server.address), settings) as first:
        for i in range(200):
            first.offer(make_event(i))
        assert first.flush(30)
        assert first.stats().spooled == 0, "acknowledged events leave the spool"
        server.stop()
        for i in range(200, 350):
            first.offer(make_event(i))
        first.offer(make_event(3, count=7))  # a growth of an acknowledged event, not acknowledged itself
        assert not first.flush(0.3)
    # The agent restarts: a new shipper over the same directory, the collector back.
    with pytest.raises(SpoolError):
        with EventShipper(connect_to(server.address), settings):
            with EventShipper(connect_to(server.address), settings):
                pass  # the directory is locked by the first
    server.start()
    with EventShipper(connect_to(server.address), settings) as second:
        assert second.stats().recovered == 151
        assert second.flush(30)
        assert second.stats().spooled == 0
    have, seq = stored(db_url)
    assert set(have) == {make_event(i)["id"] for i in range(350)}
    assert have[make_event(3)["id"]]["record"]["count"] == 7
    assert seq == 351, "350 inserts and one growth: nothing stored twice"


def test_an_offered_event_is_in_the_spool_file_when_offer_returns(tmp_path) -> None:
    """What the file holds the moment `offer` returns (a copy of it, opened as the next agent would after a
    kill -9) has every event offered: no thread of the shipper's has to get round to writing it first."""
    spool = tmp_path / "spool"
    dead = f"127.0.0.1:{free_port()}"
    settings = ShipperSettings(node="node-1", backoff_min=0.05, spool_dir=spool)
    events = [make_event(i) for i in range(300)]
    with EventShipper(connect_to(dead), settings) as shipper:
        for event in events:
            shipper.offer(event)
        copy = tmp_path / "copy"
        copy.mkdir()
        (copy / LOG_NAME).write_bytes((spool / LOG_NAME).read_bytes())
    with Spool.open(copy, settings.spool_bytes) as copied:
        assert copied.recover() == events


# -- a real collector process, killed in the middle of a stream ------------------------------------------------


class CollectorProcess:
    """`dnswatch-collector` as a subprocess (--insecure, an empty --feeds-dir, a SQLite file) on a fixed port."""

    def __init__(self, db_url: str, port: int, feeds_dir: Path) -> None:
        self.argv = [sys.executable, "-m", "collector.shell.main", "--db", db_url, "--listen", f"127.0.0.1:{port}",
                     "--feeds-dir", str(feeds_dir), "--insecure", "--log-level", "WARNING"]
        self.address = f"127.0.0.1:{port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(self.argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        with grpc.insecure_channel(self.address) as channel:
            try:
                grpc.channel_ready_future(channel).result(timeout=30)
            except grpc.FutureTimeoutError:
                self.process.kill()
                raise AssertionError(f"the collector did not start: {self.process.communicate()[1]!r}")

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(15)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def test_kill_9_of_the_collector_mid_stream_loses_and_repeats_nothing(db_url, tmp_path) -> None:
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    collector = CollectorProcess(db_url, free_port(), feeds)
    total = 6000
    try:
        collector.start()
        settings = ShipperSettings(node="node-1", linger=0.01, batch_events=50, backoff_min=0.05, backoff_max=0.5)
        with EventShipper(connect_to(collector.address), settings) as shipper:
            for i in range(total // 2):
                shipper.offer(make_event(i))
            # Killed while batches are on the wire and being written.
            deadline = time.monotonic() + 30
            while shipper.stats().acked < 300 and time.monotonic() < deadline:
                time.sleep(0.005)
            collector.kill()
            acked_before = shipper.stats().acked
            assert 0 < acked_before < total // 2, "the kill came in the middle of the stream"
            for i in range(total // 2, total):
                shipper.offer(make_event(i))
            for i in range(0, total, 500):
                shipper.offer(make_event(i, count=2))  # growths, some of events stored before the kill
            collector.start()  # the same port and database
            assert shipper.flush(60), shipper.stats()
            stats = shipper.stats()
        assert stats.dropped == 0 and stats.streams >= 2
    finally:
        collector.stop()
    have, seq = stored(db_url)
    assert set(have) == {make_event(i)["id"] for i in range(total)}
    assert all(have[make_event(i)["id"]]["record"]["count"] == 2 for i in range(0, total, 500))
    # One sequence number per insert or growth (a growth offered before its event was sent travels as one
    # emission): a resent batch changed no row.
    assert total <= seq <= total + total // 500
