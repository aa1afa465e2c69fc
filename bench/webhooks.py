"""Webhook delivery (docs/webhooks.md, "Delivery"): how fast a webhook's queue reaches a local receiver, how fast
forwarding empties a backlog into a file beside it, and what three webhooks and a forwarder cost the ingest
(target: the ingest with them attached at least 80 % of the ingest without).

- delivery: a real `dnswatch-collector` process with one Generic webhook taking every event, pointed at a
  receiver in a process of its own (harness/webhookreceiver.py, Python's threading HTTP server answering
  200), fed `--events` events over gRPC (bench/ingest.py's, about 1 kB each); the clock runs from the first
  batch sent to the receiver's last acknowledgement.
- forwarding: a new file target draining a `--events` backlog (bench/forward.py's method).
- ingest: a real collector with no webhook and no forwarder, and with a file forwarder and three webhooks
  (Slack, Jira and Generic payloads, each to a path of the receiver), `--runs` times each, interleaved, each a
  fresh process (the median shown). Every event goes to the forwarder; each webhook's query takes about 1/500
  of the events (the target's run) or 1/50 (a stress); how long after the last ack every delivery had arrived
  is shown too.

    python -m bench.webhooks [--events 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

from bench.forward import _drain, _file_lines, _fill
from bench.ingest import ROOT, Collector, _cpu_seconds, agent_batches, bench_event, ship_concurrently, stop_process
from collector.shell.forwardfile import FileSink

TARGET_RATIO = 0.8
_PODS = ("web-7d4b9c-00007", "web-7d4b9c-00021", "web-7d4b9c-00042")


class Receiver:
    """harness/webhookreceiver.py in its own process, counting what it is sent."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "harness.webhookreceiver", "--quiet"], cwd=ROOT,
                                        stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()  # type: ignore[union-attr]
        found = re.search(r"listening on (http://\S+)/", line)
        if not found:
            raise RuntimeError(f"the webhook receiver did not start: {line!r}")
        self.base = found.group(1)

    def acknowledged(self) -> int:
        with urllib.request.urlopen(self.base + "/", timeout=10) as answer:
            return json.loads(answer.read())["acknowledged"]

    def close(self) -> None:
        stop_process(self.process)


def _manifest(name: str, consumer: str, url: str, query: str = "") -> dict:
    config = [{"name": "url", "value": url}]
    if consumer == "Jira":
        config += [{"name": "project", "value": "SEC"}, {"name": "issueType", "value": "Bug"},
                   {"name": "username", "value": "bench"}, {"name": "apiToken", "value": "t0ken"}]
    return {"apiVersion": "dnswatch.dev/v1", "kind": "SecurityEventWebhook", "metadata": {"name": name},
            "spec": {"consumer": consumer, "state": "Enabled", "query": query, "config": config}}


def _write_webhooks(folder: Path, manifests: list[dict]) -> None:
    feeds = folder / "feeds"
    feeds.mkdir(exist_ok=True)
    (feeds / "webhooks.yaml").write_text(yaml.safe_dump_all(manifests))


def _cursors(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=10) as conn:
            return conn.execute("SELECT COUNT(*) FROM webhook_cursors").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _wait(condition, what: str, seconds: float = 300.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.02)


def measure_delivery(folder: Path, events: int) -> tuple:
    receiver = Receiver()
    try:
        _write_webhooks(folder, [_manifest("bench-generic", "Generic", receiver.base + "/generic")])
        collector = Collector(folder)
        try:
            _wait(lambda: _cursors(folder / "ingest.sqlite") == 1, "the webhook's cursor")
            started = time.perf_counter()
            cpu_before = _cpu_seconds(collector.process.pid)
            ship_concurrently(collector.address, [agent_batches(0, events, 500)], 8)
            shipped = time.perf_counter() - started
            _wait(lambda: receiver.acknowledged() >= events, "every delivery")
            seconds = time.perf_counter() - started
            cpu = _cpu_seconds(collector.process.pid) - cpu_before
        finally:
            collector.close()
    finally:
        receiver.close()
    return ("webhook delivery, Generic, to a local receiver", f"{events / seconds:,.0f} events/s ({events:,} "
            f"events in {seconds:.1f} s from the first sent, ingested in {shipped:.1f} s; collector CPU "
            f"{cpu / events * 1e6:.0f} µs/event, ingest included)", "", None)


def measure_forwarding(folder: Path, events: int) -> tuple:
    db = f"sqlite:///{folder / 'backlog.sqlite'}"
    asyncio.run(_fill(db, events))
    out = folder / "siem" / "events.jsonl"
    count, seconds = asyncio.run(_drain(db, f"file:{out}", FileSink(out, max_bytes=100 << 20, keep=5),
                                        lambda page: [forwarded.line for forwarded in page]))
    assert _file_lines(out) == count, "the file lacks events"
    return ("forwarding, a backlog to a file", f"{count / seconds:,.0f} events/s ({count:,} events in "
            f"{seconds:.2f} s)", "", None)


# Which events the three webhooks take: one pod's (1/50 of the events) for the stress run; one pod's lookups of
# a tenth of the domains (about 1/500) for the target run: still some 50 deliveries a second per webhook at full
# ingest, fifty times what a Slack incoming webhook accepts (one message a second).
_SHARES = {"1/50": lambda pod: f"source_name = {pod}",
           "1/500": lambda pod: f"source_name = {pod} AND record.suspicious_domains IN {{{_TENTH}}}"}
_TENTH = ", ".join(f'"c2-{n}.evil.example"' for n in range(100))


def _wanted(number: int, share: str) -> int:
    event = bench_event(number)
    if event["source_name"] not in _PODS:
        return 0
    return 1 if share == "1/50" or number % 997 < 100 else 0


def _ingest(folder: Path, events: int, share: str | None) -> dict:
    """The ingest with neither webhooks nor a forwarder (`share` None), or with both."""
    out = folder / "siem" / "events.jsonl"
    receiver = Receiver() if share else None
    wanted = sum(_wanted(n, share) for n in range(events)) if share else 0
    try:
        flags: tuple[str, ...] = ()
        if receiver is not None and share is not None:
            flags = ("--forward", f"file:{out}")
            _write_webhooks(folder, [
                _manifest(f"bench-{consumer.lower()}", consumer, f"{receiver.base}/{consumer.lower()}",
                          _SHARES[share](pod)) for consumer, pod in zip(("Slack", "Jira", "Generic"), _PODS)])
        collector = Collector(folder, *flags)
        try:
            if receiver is not None:
                _wait(lambda: _cursors(folder / "ingest.sqlite") == 3, "the webhooks' cursors")
            cpu_before = _cpu_seconds(collector.process.pid)
            seconds = ship_concurrently(collector.address, [agent_batches(0, events, 500)], 8)
            acked = time.perf_counter()
            caught_up = None
            if receiver is not None:
                _wait(lambda: receiver.acknowledged() >= wanted and _file_lines(out) >= events,
                      "every delivery and the file")
                caught_up = time.perf_counter() - acked
            cpu = _cpu_seconds(collector.process.pid) - cpu_before
        finally:
            collector.close()
    finally:
        if receiver is not None:
            receiver.close()
    return {"rate": events / seconds, "caught_up": caught_up, "cpu_us": cpu / events * 1e6, "wanted": wanted}


def measure_ingest(folder: Path, events: int, runs: int) -> list[tuple]:
    configurations: tuple[str | None, ...] = (None, "1/500", "1/50")
    results: dict[str | None, list[dict]] = {share: [] for share in configurations}
    for run in range(runs):  # interleaved: a slow spell of the machine hits each
        for share in configurations:
            run_folder = folder / f"ingest-{(share or 'alone').replace('/', 'in')}-{run}"
            run_folder.mkdir()
            results[share].append(_ingest(run_folder, events, share))
    median = {share: sorted(measured, key=lambda one: one["rate"])[runs // 2] for share, measured in results.items()}
    alone = median[None]
    rows = [("  the same ingest with neither", f"{alone['rate']:,.0f} events/s; collector CPU "
             f"{alone['cpu_us']:.0f} µs/event", "", None)]
    for share in ("1/500", "1/50"):
        beside = median[share]
        ratio = beside["rate"] / alone["rate"]
        low, high = (min(one["rate"] for one in results[share]), max(one["rate"] for one in results[share]))
        head = share == "1/500"
        measured = (f"{beside['rate']:,.0f} events/s (median of {runs}: {low:,.0f}–{high:,.0f}); each webhook "
                    f"{share} of the events, {beside['wanted']:,} deliveries, all and the file complete "
                    f"{beside['caught_up']:.2f} s after the last ack; collector CPU {beside['cpu_us']:.0f} µs/event")
        if head:
            rows[:0] = [("collector ingest with 3 webhooks and a file forwarder", measured, "", None)]
            rows.append(("  ratio, with to without", f"{ratio:.0%}", f"≥ {TARGET_RATIO:.0%}", ratio >= TARGET_RATIO))
        else:
            rows += [("  the same, each webhook taking 1/50 of the events (a stress)", measured, "", None),
                     ("  ratio, with to without", f"{ratio:.0%}", "", None)]
    return rows


def measure(events: int = 100_000, runs: int = 3, delivery_events: int = 20_000) -> list[tuple]:
    """Rows for the bench table: (what, measured, target, ok or None)."""
    with tempfile.TemporaryDirectory(prefix="dnswatch-bench-webhooks-", dir=os.environ.get("BENCH_TMP")) as tmp:
        folder = Path(tmp)
        (folder / "delivery").mkdir()
        (folder / "forwarding").mkdir()
        return [measure_delivery(folder / "delivery", delivery_events),
                measure_forwarding(folder / "forwarding", events),
                *measure_ingest(folder, events, runs)]


def main(argv: list[str] | None = None) -> int:
    from bench.run import print_table

    options = argparse.ArgumentParser(prog="python -m bench.webhooks")
    options.add_argument("--events", type=int, default=100_000, help="events of the ingest and forwarding runs")
    options.add_argument("--delivery-events", type=int, default=20_000, help="events the delivery run sends")
    options.add_argument("--runs", type=int, default=3, help="runs of each ingest configuration (median shown)")
    args = options.parse_args(argv)
    print_table(measure(args.events, args.runs, args.delivery_events))
    return 0


if __name__ == "__main__":
    sys.exit(main())
