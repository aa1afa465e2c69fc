"""Collector ingest (target: ≥ 20,000 events/s into SQLite), measured through the real path.

- gRPC: a real `dnswatch-collector` process (SQLite file on disk, synchronous=FULL as the store sets it,
  --insecure, an empty feeds folder) on 127.0.0.1; agents are client streams in this process sending
  EventIngest.Send batches as the agent's shipper does (several batches in flight, acked in order). The
  clock runs from the first batch sent to the last ack received, i.e. until every event is durably stored.
  The batches are built before the clock starts: what is measured is the collector, not the client.
- baseline, in this same script: `store.ingest_events` called directly, one batch after the other, on a
  fresh SQLite file in the same folder: what the collector did per batch before group commit.
- Each gRPC configuration runs `--runs` times, each on a fresh database; the table gives the median and the
  range (this machine is shared: single runs of the same code differ by up to ±40 %).

Event ids are made as the agent makes them (the window start, then a hash), and the store starts empty and
ends with `--events` events; bench/eventlist.py also measures the ingest into its 1,000,000-event store.

    python -m bench.ingest [--events 120000] [--batch 500] [--agents 1 4] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc

from agent.shell.shipper import ShipperSettings
from collector.store import open_store
from dnswatch_pb.v1 import events_pb2, events_pb2_grpc

ROOT = Path(__file__).resolve().parents[1]
TARGET = 20_000
T0 = dt.datetime(2026, 11, 27, 20, 0, 0, tzinfo=dt.timezone.utc)


def bench_event(number: int, agent: int = 0) -> dict:
    """An event of the usual size (≈1 kB of JSON), unique per (agent, number)."""
    first = T0 + dt.timedelta(milliseconds=number * 7)
    stamp = first.strftime("%Y-%m-%dT%H:%M:%S.") + f"{first.microsecond // 1000:03d}Z"
    pod = f"web-7d4b9c-{number % 50:05d}"
    domain = f"c2-{number % 997}.evil.example"
    return {
        # As the agent makes ids (agent/core/events.py event_id): the window start, then 24 hex digits of a hash.
        "id": f"{int(first.timestamp()):08x}" + hashlib.sha256(f"{agent}:{number}".encode()).hexdigest()[:24],
        "time": stamp,
        "type": "gtf_suspicious_dns_query",
        "severity": 100,
        "origin": "Suspicious DNS Query",
        "name": "Suspicious DNS Query",
        "description": f"shop/{pod} queried the domain name {domain} from global threat feed(s) c2",
        "host": f"node-{agent}",
        "source_ip": f"10.244.{agent}.{number % 250}",
        "source_namespace": "shop",
        "source_name": pod,
        "source_name_aggr": "web-7d4b9c-*",
        "source_labels": {"app": "web", "pod-template-hash": "7d4b9c"},
        "source_workload": {"kind": "Deployment", "name": "web"},
        "attack_vector": "Network",
        "mitre_ids": ["T1071.004"],
        "mitre_tactic": "Command and Control",
        "record": {
            "feeds": ["c2"], "suspicious_domains": [domain], "suspicious_ips": [],
            "matches": [{"name": domain, "feed": "c2", "entry": domain, "section": "question"}],
            "qname": domain, "qtype": "A", "rcode": "NOERROR", "server_ip": "10.96.0.10",
            "answers": [f"{domain} A 198.51.100.7"], "count": 1, "first_seen": stamp, "last_seen": stamp,
        },
    }


def agent_batches(agent: int, events: int, batch: int) -> list[events_pb2.EventBatch]:
    made = []
    for start in range(0, events, batch):
        texts = [bench_event(n, agent) for n in range(start, min(start + batch, events))]
        made.append(events_pb2.EventBatch(batch_id=start // batch + 1, node=f"node-{agent}", events=[
            events_pb2.Event(id=event["id"], json=json.dumps(event, separators=(",", ":"))) for event in texts]))
    return made


# -- the collector process --------------------------------------------------------------------------------------


def ship_concurrently(address: str, streams: list, in_flight: int) -> float:
    """Send each stream's batches on a connection of its own, all at once; seconds from the first batch sent to
    the last acknowledged. RuntimeError when any stream failed."""
    errors: list[str] = []
    threads = [threading.Thread(target=_send_all, args=(address, batches, in_flight, errors)) for batches in streams]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"ingest failed: {errors[0]}")
    return seconds


def stop_process(process: subprocess.Popen) -> None:
    """SIGTERM, and SIGKILL if it is still there 15 s later."""
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Collector:
    def __init__(self, folder: Path, *flags: str) -> None:
        """`flags` are added to the collector's command line (bench/forward.py attaches forwarders)."""
        self.db = f"sqlite:///{folder / 'ingest.sqlite'}"
        feeds = folder / "feeds"
        feeds.mkdir(exist_ok=True)
        port = _free_port()
        self.address = f"127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "collector.shell.main", "--db", self.db, "--listen", self.address,
             "--feeds-dir", str(feeds), "--insecure", "--log-level", "WARNING", *flags],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with grpc.insecure_channel(self.address) as channel:
            grpc.channel_ready_future(channel).result(timeout=60)

    def close(self) -> None:
        stop_process(self.process)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _send_all(address: str, batches: list[events_pb2.EventBatch], in_flight: int, errors: list) -> None:
    """One agent's stream: at most `in_flight` batches unacknowledged, as the shipper sends them."""
    window = threading.Semaphore(in_flight)

    def requests() -> Iterator[events_pb2.EventBatch]:
        for item in batches:
            window.acquire()
            yield item

    try:
        with grpc.insecure_channel(address) as channel:
            acks = 0
            for _ack in events_pb2_grpc.EventIngestStub(channel).Send(requests(), timeout=600):
                acks += 1
                window.release()
            if acks != len(batches):
                errors.append(f"{acks} acks for {len(batches)} batches")
    except grpc.RpcError as error:
        errors.append(f"{error.code()}: {error.details()}")


def measure_grpc(folder: Path, agents: int, events: int, batch: int,
                 in_flight: int = ShipperSettings.max_batches_in_flight, starting_from: Path | None = None) -> dict:
    """Events/s from the first batch sent to the last ack, `agents` streams sharing `events` between them;
    into an empty store, or into a copy of the SQLite file `starting_from`."""
    per_agent = events // agents
    streams = [agent_batches(agent, per_agent, batch) for agent in range(agents)]
    if starting_from is not None:
        shutil.copyfile(starting_from, folder / "ingest.sqlite")
        # Write the copy out first: else the kernel may still be writing its gigabytes back while the
        # collector's commits wait on their fsyncs, and the run measures the copy as well.
        os.sync()
    collector = Collector(folder)
    held_before = asyncio.run(_count(collector.db))
    try:
        cpu_before = _cpu_seconds(collector.process.pid)
        seconds = ship_concurrently(collector.address, streams, in_flight)
        cpu = _cpu_seconds(collector.process.pid) - cpu_before
    finally:
        collector.close()
    stored = asyncio.run(_count(collector.db)) - held_before
    if stored != per_agent * agents:
        raise RuntimeError(f"{stored} events stored, {per_agent * agents} sent")
    return {"events": stored, "seconds": seconds, "rate": stored / seconds, "cpu_us": cpu / stored * 1e6}


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc): on a shared machine, the figure that the
    other processes disturb least."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _count(db: str) -> int:
    store = await open_store(db)
    try:
        return await store.latest_event_seq()
    finally:
        await store.close()


def measure_direct(folder: Path, events: int, batch: int) -> dict:
    """The baseline: ingest_events called directly, one batch after the other (no overlap, no grouping)."""
    made = [bench_event(n) for n in range(events)]

    async def run() -> float:
        store = await open_store(f"sqlite:///{folder / 'direct.sqlite'}")
        try:
            started = time.perf_counter()
            for start in range(0, events, batch):
                await store.ingest_events(made[start:start + batch])
            return time.perf_counter() - started
        finally:
            await store.close()

    seconds = asyncio.run(run())
    return {"events": events, "seconds": seconds, "rate": events / seconds}


def measure(events: int = 120_000, batch: int = 500, agents: tuple[int, ...] = (1, 4),
            runs: int = 3) -> list[tuple]:
    """Rows for the bench table: (what, measured, target, ok or None)."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="dnswatch-bench-ingest-", dir=os.environ.get("BENCH_TMP")) as tmp:
        folder = Path(tmp)
        direct = measure_direct(folder, events, batch)
        results: dict[int, list[dict]] = {count: [] for count in agents}
        for run in range(runs):  # interleaved, so that a slow spell of the machine does not hit one alone
            for count in agents:
                run_folder = folder / f"agents-{count}-run-{run}"
                run_folder.mkdir()
                results[count].append(measure_grpc(run_folder, count, events, batch))
    for count, measured in results.items():
        result = sorted(measured, key=lambda one: one["rate"])[len(measured) // 2]
        low, high = min(one["rate"] for one in measured), max(one["rate"] for one in measured)
        ratio = result["rate"] / direct["rate"]
        rows.append((f"collector ingest, gRPC → SQLite, {count} agent{'s' if count > 1 else ''}",
                     f"{result['rate']:,.0f} events/s (median of {len(measured)}: {low:,.0f}–{high:,.0f}; "
                     f"{result['events']:,} events in {result['seconds']:.2f} s; {ratio:.1f}× direct; "
                     f"collector CPU {result['cpu_us']:.0f} µs/event)",
                     f"≥ {TARGET:,} events/s", result["rate"] >= TARGET))
    rows.append((f"  direct store.ingest_events, {batch}-event batches one by one",
                 f"{direct['rate']:,.0f} events/s", "", None))
    return rows


def main(argv: list[str] | None = None) -> int:
    from bench.run import print_table

    options = argparse.ArgumentParser(prog="python -m bench.ingest")
    options.add_argument("--events", type=int, default=120_000)
    options.add_argument("--batch", type=int, default=500, help="events per batch (the shipper's default: 500)")
    options.add_argument("--agents", type=int, nargs="+", default=[1, 4])
    options.add_argument("--runs", type=int, default=3, help="runs of each gRPC configuration (median shown)")
    args = options.parse_args(argv)
    print_table(measure(args.events, args.batch, tuple(args.agents), args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
