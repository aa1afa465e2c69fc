"""Event watches (`dnswatch events watch`): how fast one catches up, and what attached watches cost the ingest.

Every part is real: a `dnswatch-collector` process (SQLite on disk, --insecure, 127.0.0.1), agents as
EventIngest.Send streams from this process (bench/ingest.py's), and watchers that are either real
`dnswatch events watch -o json` processes, whose stdout lines this script counts, or, for a hundred of them,
Events.Watch streams in one separate process (`--watchers`), each on its own connection.

- catch-up: N events stored, then one `dnswatch events watch -o json` resumes from before the first; its
  rate from the first line to the N-th. The baseline, in the same script and on the same store: a client
  asking one event per response (`max_events` 0, what every watch got before responses held pages).
- 20 watchers: 20 `events watch` processes attached from now while 4 agents ship 32,000 events; how long
  after the last ack every one of them has printed every event.
- 100 watchers: the ingest rate (first batch sent to last ack, 4 agents) into a fresh collector with none
  attached, and into other fresh ones with 1 or 100 attached (following from now: every event to each, or
  each one pod's events, a fiftieth), asking for compressed pages as `dnswatch events watch` does, and 100
  taking every event uncompressed beside them; the ratios, and how long after the last ack the watchers
  have every event; and the collector's CPU per ingested event. Runs alternate, medians shown (for the
  slowdowns, of each run's ratio to the run with none just before it). Every watcher here shares the
  machine's cores with the collector, and on loopback the kernel's work of receiving is done in the
  sender's system calls too: a hundred watchers each taking every event uncompressed (a hundred times the
  ingest's bytes) cost more here than remote consumers would.

    python -m bench.watch [--events 60000] [--runs 3]
    python -m bench.watch --watchers N ADDRESS     (the watchers' process: used by the above)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc

from bench.ingest import ROOT, Collector, _count, _cpu_seconds, agent_batches, ship_concurrently, stop_process
from dnswatch.pbconvert.events import decode_resume_token, encode_resume_token
from dnswatch_pb.v1 import events_pb2, events_pb2_grpc

CATCH_UP_TARGET = 20_000
SLOWDOWN_TARGET = 0.20
DNSWATCH = [sys.executable, "-m", "consumer.cli"]


def ingest(address: str, agents: int, events: int, batch: int = 500, first: int = 0) -> dict:
    """`events` events shipped by `agents` streams; events/s from the first batch to the last ack."""
    streams = [agent_batches(first + agent, events // agents, batch) for agent in range(agents)]
    seconds = ship_concurrently(address, streams, 32)
    return {"events": events // agents * agents, "seconds": seconds, "rate": events // agents * agents / seconds,
            "ended": time.monotonic()}


def latest_seq(collector: Collector) -> int:
    """The store's latest change number, read from its file as another replica would."""
    return asyncio.run(_count(collector.db))


# -- a real `dnswatch events watch` -----------------------------------------------------------------------------


class CliWatch:
    """`dnswatch events watch -o json` as a process; a thread counts its stdout lines."""

    def __init__(self, address: str, *args: str) -> None:
        self.process = subprocess.Popen([*DNSWATCH, "--collector", address, "--insecure", "events", "watch",
                                         "-o", "json", *args], cwd=ROOT, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE)
        self.lines = 0
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.started = threading.Event()
        self.changed = threading.Condition()
        threading.Thread(target=self._count, daemon=True).start()
        threading.Thread(target=self._stderr, daemon=True).start()

    def _count(self) -> None:
        assert self.process.stdout is not None
        for _ in self.process.stdout:
            now = time.monotonic()
            with self.changed:
                self.lines += 1
                self.first_at = self.first_at or now
                self.last_at = now
                self.changed.notify_all()

    def _stderr(self) -> None:
        assert self.process.stderr is not None
        self.stderr = self.process.stderr.read()

    def wait_for(self, lines: int, seconds: float) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: self.lines >= lines, timeout=seconds):
                raise RuntimeError(f"the watch printed {self.lines} of {lines} events in {seconds:.0f} s")

    def stop(self) -> None:
        stop_process(self.process)


def measure_catch_up(folder: Path, events: int) -> dict:
    collector = Collector(folder)
    try:
        ingest(collector.address, 4, events)
        stored = latest_seq(collector)
        watch = CliWatch(collector.address, "--resume-token", encode_resume_token(0))
        try:
            watch.wait_for(stored, 600)
        finally:
            watch.stop()
        assert watch.first_at is not None and watch.last_at is not None
        cli_rate = (stored - 1) / max(watch.last_at - watch.first_at, 1e-9)
        single_rate = _one_event_per_response(collector.address, stored)
    finally:
        collector.close()
    return {"events": stored, "cli_rate": cli_rate, "single_rate": single_rate}


def _one_event_per_response(address: str, stored: int) -> float:
    """The baseline: a client that takes one event per response, from the first stored to the last."""
    request = events_pb2.WatchEventsRequest(resume_token=encode_resume_token(0))
    got, first_at = 0, None
    with grpc.insecure_channel(address) as channel:
        call = events_pb2_grpc.EventsStub(channel).Watch(request)
        for response in call:
            if response.HasField("event"):
                got += 1
                first_at = first_at or time.monotonic()
                if got == stored:
                    break
        call.cancel()
    return (stored - 1) / max(time.monotonic() - first_at, 1e-9) if first_at else 0.0


def measure_twenty(folder: Path, events: int = 32_000, watchers: int = 20) -> dict:
    collector = Collector(folder)
    watches: list[CliWatch] = []
    try:
        # From the empty store's token: a watch still starting when the marker is stored gets it all the same.
        watches = [CliWatch(collector.address, "--resume-token", encode_resume_token(0)) for _ in range(watchers)]
        # Attached once each has printed one event (from a node of its own).
        ingest(collector.address, 1, 1, batch=1, first=99)
        for watch in watches:
            watch.wait_for(1, 120)
        done = ingest(collector.address, 4, events)
        for watch in watches:
            watch.wait_for(1 + done["events"], 900)
        caught_up = max(watch.last_at for watch in watches if watch.last_at) - done["ended"]
    finally:
        for watch in watches:
            watch.stop()
        collector.close()
    return {"events": done["events"], "watchers": watchers, "ingest_rate": done["rate"],
            "caught_up_s": max(caught_up, 0.0)}


# -- a hundred watchers in one process --------------------------------------------------------------------------


class WatchersProcess:
    """`python -m bench.watch --watchers N ADDRESS`: says `attached` once every stream has its first response,
    then, told the last seq on stdin, `done SECONDS` once every stream has reached it."""

    def __init__(self, address: str, watchers: int, pods: int = 0, compressed: bool = True) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "bench.watch", "--watchers", str(watchers), address,
                                         "--pods", str(pods), *(["--uncompressed"] if not compressed else [])],
                                        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline().strip()  # type: ignore[union-attr]
        if line != "attached":
            raise RuntimeError(f"the watchers did not attach: {line!r}")

    def finish(self, last_seq: int) -> float:
        """Seconds (monotonic clock) at which the last watcher reached `last_seq`."""
        self.process.stdin.write(f"{last_seq}\n")  # type: ignore[union-attr]
        self.process.stdin.flush()  # type: ignore[union-attr]
        line = self.process.stdout.readline().split()  # type: ignore[union-attr]
        self.process.wait(60)
        if line[:1] != ["done"]:
            raise RuntimeError(f"the watchers failed: {line}")
        return float(line[1])

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _resume_point(response: bytes) -> int:
    """The resume token's number of an encoded EventWatchResponse. The collector puts the token first, as
    protobuf's encoder does (field 2 before field 3), so it is read from the head: a watcher that parsed
    every event it gets would measure its own parsing, a hundred times over, on the collector's cores."""
    if response[:1] == b"\x12" and response[1] < 0x80:
        return decode_resume_token(response[2:2 + response[1]].decode())
    return decode_resume_token(events_pb2.EventWatchResponse.FromString(response).resume_token)


async def _run_watchers(address: str, count: int, pods: int = 0, compressed: bool = True) -> int:
    reached = [0] * count
    received = [0] * count
    attached = [asyncio.Event() for _ in range(count)]
    target: list[int | None] = [None]
    all_there = asyncio.Event()

    async def follow(index: int) -> None:
        # A channel of its own, on a connection of its own, as separate consumers would have.
        channel = grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
        watch = channel.unary_stream("/dnswatch.v1.Events/Watch",
                                     request_serializer=events_pb2.WatchEventsRequest.SerializeToString,
                                     response_deserializer=None)  # the bytes as they came
        # With `pods`, watcher i follows the pod i % pods of bench_event's 50 (1/50 of the events each).
        where = events_pb2.EventFilter(pod=f"web-7d4b9c-{index % pods:05d}") if pods else None
        # Compressed pages are counted by their tokens, not decompressed: as with parsing, decompressing a
        # hundred copies here would measure this process on the collector's cores (the CLI does decompress).
        compression = events_pb2.WATCH_COMPRESSION_ZSTD if compressed else events_pb2.WATCH_COMPRESSION_NONE
        call = watch(events_pb2.WatchEventsRequest(filter=where, max_events=10_000 if compressed else 1000,
                                                   compression=compression))
        try:
            async for response in call:
                received[index] += len(response)
                reached[index] = _resume_point(response)
                attached[index].set()
                if target[0] is not None and reached[index] >= target[0]:
                    if all(seq >= target[0] for seq in reached):
                        all_there.set()
                    break
        finally:
            call.cancel()
            await channel.close()

    tasks = [asyncio.create_task(follow(index)) for index in range(count)]
    await asyncio.gather(*(event.wait() for event in attached))
    print("attached", flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    target[0] = int(line)
    if all(seq >= target[0] for seq in reached):
        all_there.set()
    await all_there.wait()
    at = time.monotonic()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(f"done {at} {min(received)} {max(received)}", flush=True)
    return 0


def measure_hundred(folder: Path, events: int, watchers: int = 100, pods: int = 0, compressed: bool = True) -> dict:
    """One run with `watchers` attached (0: none), each following every event or, with `pods`, one pod's,
    in compressed pages or not: the ingest rate and when they all had everything."""
    collector = Collector(folder)
    crowd = None
    try:
        if watchers:
            crowd = WatchersProcess(collector.address, watchers, pods, compressed)
        cpu_before = _cpu_seconds(collector.process.pid)
        done = ingest(collector.address, 4, events)
        cpu = _cpu_seconds(collector.process.pid) - cpu_before
        caught_up = None
        if crowd is not None:
            caught_up = max(0.0, crowd.finish(latest_seq(collector)) - done["ended"])
    finally:
        if crowd is not None:
            crowd.close()
        collector.close()
    return {"rate": done["rate"], "caught_up_s": caught_up, "cpu_us": cpu / done["events"] * 1e6}


def measure(events: int = 60_000, runs: int = 5, hundred: int = 100) -> list[tuple]:
    """Rows for the bench table: (what, measured, target, ok or None)."""
    crowds = {"none": (0, 0, True), "one": (1, 0, True), "every": (hundred, 0, True), "pod": (hundred, 50, True),
              "plain": (hundred, 0, False)}
    with tempfile.TemporaryDirectory(prefix="dnswatch-bench-watch-", dir=os.environ.get("BENCH_TMP")) as tmp:
        folder = Path(tmp)

        def fresh(name: str) -> Path:
            path = folder / name
            path.mkdir()
            return path

        catch_up = measure_catch_up(fresh("catch-up"), events)
        twenty = measure_twenty(fresh("twenty"))
        results: dict[str, list[dict]] = {name: [] for name in crowds}
        for run in range(runs):  # interleaved, so that a slow spell of the machine does not hit one alone
            for name, (watchers, pods, compressed) in crowds.items():
                results[name].append(measure_hundred(fresh(f"{name}-{run}"), events, watchers, pods, compressed))
    rate = {name: statistics.median(one["rate"] for one in measured) for name, measured in results.items()}
    caught = {name: statistics.median(one["caught_up_s"] or 0.0 for one in measured)
              for name, measured in results.items()}
    cpu = {name: statistics.median(one["cpu_us"] for one in measured) for name, measured in results.items()}

    def slower(name: str) -> float:
        # The median of each run's ratio to the run with none beside it: the machine's slow and fast spells
        # move both of a pair, and a ratio of medians mixed them.
        return statistics.median(1 - one["rate"] / none["rate"] for one, none in zip(results[name], results["none"]))

    ratio = catch_up["cli_rate"] / max(catch_up["single_rate"], 1e-9)
    return [
        ("events watch catch-up, one `dnswatch events watch -o json`",
         f"{catch_up['cli_rate']:,.0f} events/s ({catch_up['events']:,} stored events; {ratio:.1f}× one event "
         "per response)", f"≥ {CATCH_UP_TARGET:,} events/s", catch_up["cli_rate"] >= CATCH_UP_TARGET),
        ("  one event per response (max_events 0), the baseline", f"{catch_up['single_rate']:,.0f} events/s", "",
         None),
        (f"  {twenty['watchers']} `events watch` processes, 4 agents ship {twenty['events']:,} events",
         f"all caught up {twenty['caught_up_s']:.1f} s after the last ack (ingest {twenty['ingest_rate']:,.0f} "
         "events/s)", "", None),
        (f"ingest, {hundred} watchers attached, every event to each (compressed pages)",
         f"{slower('every') * 100:.0f} % slower ({rate['every']:,.0f} vs {rate['none']:,.0f} events/s with none; "
         f"all had every event {caught['every']:.1f} s after the last ack; collector CPU {cpu['every']:.0f} vs "
         f"{cpu['none']:.0f} µs/event)",
         f"≤ {SLOWDOWN_TARGET * 100:.0f} % slower", slower("every") <= SLOWDOWN_TARGET),
        (f"  {hundred} watchers, each one pod's events (1/50)",
         f"{slower('pod') * 100:.0f} % slower ({rate['pod']:,.0f} events/s; caught up {caught['pod']:.1f} s after; "
         f"collector CPU {cpu['pod']:.0f} µs/event)",
         f"≤ {SLOWDOWN_TARGET * 100:.0f} % slower", slower("pod") <= SLOWDOWN_TARGET),
        (f"  {hundred} watchers, every event to each, uncompressed",
         f"{slower('plain') * 100:.0f} % slower ({rate['plain']:,.0f} events/s; caught up {caught['plain']:.1f} s "
         f"after; collector CPU {cpu['plain']:.0f} µs/event)", "", None),
        ("  1 watcher, every event", f"{slower('one') * 100:.0f} % slower ({rate['one']:,.0f} events/s; collector "
         f"CPU {cpu['one']:.0f} µs/event)", "", None),
        (f"  (medians of {runs} runs each, fresh collectors, {events:,} events from 4 agents)", "", "", None),
    ]


def main(argv: list[str] | None = None) -> int:
    from bench.run import print_table

    options = argparse.ArgumentParser(prog="python -m bench.watch")
    options.add_argument("--events", type=int, default=60_000)
    options.add_argument("--runs", type=int, default=5)
    options.add_argument("--hundred", type=int, default=100, help="watchers attached in the ingest comparison")
    options.add_argument("--watchers", nargs=2, metavar=("N", "ADDRESS"), help=argparse.SUPPRESS)
    options.add_argument("--pods", type=int, default=0, help=argparse.SUPPRESS)
    options.add_argument("--uncompressed", action="store_true", help=argparse.SUPPRESS)
    args = options.parse_args(argv)
    if args.watchers:
        return asyncio.run(_run_watchers(args.watchers[1], int(args.watchers[0]), args.pods, not args.uncompressed))
    print_table(measure(args.events, args.runs, args.hundred))
    return 0


if __name__ == "__main__":
    sys.exit(main())
