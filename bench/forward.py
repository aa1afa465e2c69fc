"""Forwarding to a SIEM (docs/forwarding.md): how fast a forwarder empties a backlog, and what it costs the
ingest beside it (target: the ingest with a forwarder attached at least 80 % of the ingest without).

- throughput: a SQLite store filled with `--events` events (bench/ingest.py's, about 1 kB of JSON each) and
  one forwarder starting from the beginning, as a new target or one back after an outage does: to a file
  (JSON lines, 100 MiB rotation, fsync before each cursor save), and over TCP to a local rsyslogd
  (harness/rsyslog.py, writing each message to a file) until every byte is sent, and until rsyslogd has
  written every message.
- ingest: a real `dnswatch-collector` process taking EventIngest streams (bench/ingest.py) with no
  forwarder and with a file forwarder, `--runs` times each, interleaved (median shown): both rates, their
  ratio, and how long after the last acknowledgement the file had every event.

    python -m bench.forward [--events 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.ingest import Collector, _cpu_seconds, agent_batches, bench_event, ship_concurrently
from collector.core.forwardtarget import parse_target
from collector.shell.eventbell import EventBell
from collector.shell.forwarder import Forwarder
from collector.shell.forwardfile import FileSink
from collector.shell.forwardmetrics import ForwardMetrics
from collector.shell.forwardsyslog import SyslogSink
from collector.core.rfc5424 import octet_counted, syslog_message
from collector.store import open_store
from harness.rsyslog import RsyslogReceiver, RsyslogUnavailable
from prometheus_client import CollectorRegistry

TARGET_RATIO = 0.8


async def _fill(db: str, events: int) -> None:
    store = await open_store(db)
    try:
        for start in range(0, events, 5000):
            await store.ingest_events([bench_event(n) for n in range(start, min(start + 5000, events))])
    finally:
        await store.close()


async def _drain(db: str, name: str, sink, render) -> tuple[int, float]:
    """(events, seconds) for a new forwarder to hand every stored event to `sink`."""
    store = await open_store(db)
    try:
        latest = await store.latest_event_seq()
        forwarder = Forwarder(name, sink, render, store, EventBell(), ForwardMetrics(CollectorRegistry()))
        started = time.perf_counter()
        forwarder.start()
        while forwarder.position < latest:
            await asyncio.sleep(0.005)
        seconds = time.perf_counter() - started
        await forwarder.close()
        return latest, seconds
    finally:
        await store.close()


def _file_lines(path: Path) -> int:
    return sum(part.read_bytes().count(b"\n") for part in path.parent.glob(path.name + "*"))


def measure_throughput(folder: Path, events: int) -> list[tuple]:
    db = f"sqlite:///{folder / 'backlog.sqlite'}"
    asyncio.run(_fill(db, events))
    out = folder / "siem" / "events.jsonl"
    count, seconds = asyncio.run(_drain(db, f"file:{out}", FileSink(out, max_bytes=100 << 20, keep=5),
                                        lambda page: [forwarded.line for forwarded in page]))
    assert _file_lines(out) == count, "the file lacks events"
    rows = [("forward a backlog to a file", f"{count / seconds:,.0f} events/s ({count:,} events in "
             f"{seconds:.2f} s)", "", None)]
    try:
        receiver = RsyslogReceiver(folder / "rsyslog")
    except RsyslogUnavailable as missing:
        return rows + [("forward a backlog to rsyslogd over TCP", f"not run: {missing}", "", None)]
    with receiver:
        target = parse_target(f"syslog+tcp://127.0.0.1:{receiver.port}")

        def frames(page):
            return [octet_counted(syslog_message(f.body, f.line, hostname="bench", procid="1")) for f in page]

        started = time.perf_counter()
        count, seconds = asyncio.run(_drain(db, target.name, SyslogSink(target), frames))
        deadline = time.monotonic() + 120
        while receiver.output.exists() is False or receiver.output.read_bytes().count(b"\n") < count:
            if time.monotonic() > deadline:
                raise RuntimeError("rsyslogd did not write every message")
            time.sleep(0.05)
        written = time.perf_counter() - started
    rows.append(("forward a backlog to rsyslogd over TCP", f"{count / seconds:,.0f} events/s sent; "
                 f"{count / written:,.0f} events/s written by rsyslogd ({count:,} events in {written:.2f} s)", "",
                 None))
    return rows


def _ingest(folder: Path, events: int, forward: bool) -> dict:
    out = folder / "siem" / "events.jsonl"
    flags = ("--forward", f"file:{out}") if forward else ()
    streams = [agent_batches(0, events, 500)]
    collector = Collector(folder, *flags)
    try:
        cpu_before = _cpu_seconds(collector.process.pid)
        seconds = ship_concurrently(collector.address, streams, 8)
        caught_up = None
        if forward:
            acked = time.perf_counter()
            deadline = time.monotonic() + 120
            while _file_lines(out) < events:
                if time.monotonic() > deadline:
                    raise RuntimeError("the forwarder did not catch up")
                time.sleep(0.02)
            caught_up = time.perf_counter() - acked
        cpu = _cpu_seconds(collector.process.pid) - cpu_before
    finally:
        collector.close()
    return {"rate": events / seconds, "caught_up": caught_up, "cpu_us": cpu / events * 1e6}


def measure_ingest(folder: Path, events: int, runs: int) -> list[tuple]:
    results: dict[bool, list[dict]] = {False: [], True: []}
    for run in range(runs):  # interleaved: a slow spell of the machine hits both
        for forward in (False, True):
            run_folder = folder / f"ingest-{'forward' if forward else 'alone'}-{run}"
            run_folder.mkdir()
            results[forward].append(_ingest(run_folder, events, forward))
    alone = sorted(results[False], key=lambda one: one["rate"])[runs // 2]
    beside = sorted(results[True], key=lambda one: one["rate"])[runs // 2]
    ratio = beside["rate"] / alone["rate"]
    low, high = (min(one["rate"] for one in results[True]), max(one["rate"] for one in results[True]))
    return [
        ("collector ingest with a file forwarder", f"{beside['rate']:,.0f} events/s (median of {runs}: "
         f"{low:,.0f}–{high:,.0f}); the file complete {beside['caught_up']:.2f} s after the last ack; "
         f"collector CPU {beside['cpu_us']:.0f} µs/event", "", None),
        ("  the same ingest without a forwarder", f"{alone['rate']:,.0f} events/s; collector CPU "
         f"{alone['cpu_us']:.0f} µs/event", "", None),
        ("  ratio, with to without", f"{ratio:.0%}", f"≥ {TARGET_RATIO:.0%}", ratio >= TARGET_RATIO),
    ]


def measure(events: int = 100_000, runs: int = 3) -> list[tuple]:
    """Rows for the bench table: (what, measured, target, ok or None)."""
    with tempfile.TemporaryDirectory(prefix="dnswatch-bench-forward-", dir=os.environ.get("BENCH_TMP")) as tmp:
        folder = Path(tmp)
        return measure_throughput(folder, events) + measure_ingest(folder, events, runs)


def main(argv: list[str] | None = None) -> int:
    from bench.run import print_table

    options = argparse.ArgumentParser(prog="python -m bench.forward")
    options.add_argument("--events", type=int, default=100_000)
    options.add_argument("--runs", type=int, default=3, help="runs of each ingest configuration (median shown)")
    args = options.parse_args(argv)
    print_table(measure(args.events, args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
