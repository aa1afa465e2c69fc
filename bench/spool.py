"""What shipping with a spool costs the replay loop: events written to the spool before they are printed.

    python -m bench.spool [--runs 5]

The replay runs in this process, as `dnswatch-agent replay --collector … --spool DIR -o json` does (printing to
/dev/null), against a real collector process (SQLite, bench.ingest's); three configurations, interleaved, each
run with a fresh spool: `print` (no shipper: the baseline), `ship` (the shipper, no spool) and `spool`. The
figure is the replay loop's own rate (what `replay` reports), so the shipper's cost is what its `offer` adds to
the loop plus whatever its threads take from it; and the CPU time of the whole process (every thread) from
the start of the replay until the collector has acknowledged every event, per packet, which a machine shared
with other work disturbs less than the rate. Two captures: the realistic 200k-packet bench workload with
its 1M-domain feed (few events: 0.1 % of lookups hit), and a capture where every exchange is a new event
(the spool's worst case: 20,000 names, one event each).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from dnswatch.feeds.domainset import DomainSet
from agent.core.eventpipeline import EventPipeline
from dnswatch.feeds.lines import parse_domain_lines
from agent.core.scanner import Matcher
from agent.shell.output import JsonLines
from agent.shell.replay import replay
from agent.shell.shipper import CHANNEL_OPTIONS, EventShipper, ShipperSettings
from bench.ingest import Collector
from bench.workload import ensure_workload
from pcaps.synth import write_tunnel_capture

CONFIGURATIONS = ("print", "ship", "spool")


def _run_once(capture: Path, matcher: Matcher, configuration: str, collector: Collector, work: Path) -> dict:
    import grpc

    pipeline = EventPipeline(node="bench", pods=None)
    shipper = None
    with open(os.devnull, "w") as devnull:
        output = JsonLines(devnull)
        emit = output
        if configuration != "print":
            spool_dir = work / f"spool-{os.urandom(4).hex()}" if configuration == "spool" else None
            shipper = EventShipper(lambda: grpc.insecure_channel(collector.address, CHANNEL_OPTIONS),
                                   ShipperSettings(node="bench", spool_dir=spool_dir))

            def emit(event: dict) -> None:  # the CLI's order: shipped (spooled) first, then printed
                shipper.offer(event)
                output(event)
        gc.collect()
        gc.freeze()
        cpu = time.process_time()
        try:
            stats = replay([capture], matcher, pipeline, frozenset({53}), emit)
        finally:
            gc.unfreeze()
        if shipper is not None:
            assert shipper.flush(120), "the collector did not acknowledge every event"
        cpu = time.process_time() - cpu  # every thread of this process, until every event is acknowledged
        if shipper is not None:
            shipper.close()
    return {"rate": stats.packets_per_second, "events": stats.events, "packets": stats.packets,
            "cpu_us": cpu / stats.packets * 1e6}


def measure(runs: int = 5) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="dnswatch-bench-spool-") as folder:
        work = Path(folder)
        workload = ensure_workload()
        realistic = Matcher([("bench", DomainSet.from_names(parse_domain_lines(workload.feed.read_bytes()).entries))])
        every_event = work / "every-exchange-an-event.pcap"
        write_tunnel_capture(every_event, 20_000)
        tunnel = Matcher([("c2", DomainSet.from_names(parse_domain_lines(b"*.tunnel.example\n").entries))])
        collector = Collector(work)
        try:
            for label, capture, matcher in (("realistic 200k packets", workload.capture, realistic),
                                            ("every exchange an event", every_event, tunnel)):
                results: dict[str, list[dict]] = {name: [] for name in CONFIGURATIONS}
                _run_once(capture, matcher, "print", collector, work)  # warm-up (page cache, imports): not counted
                for _ in range(runs):
                    for name in CONFIGURATIONS:
                        results[name].append(_run_once(capture, matcher, name, collector, work))
                medians = {name: statistics.median(r["rate"] for r in results[name]) for name in CONFIGURATIONS}
                cpu = {name: statistics.median(r["cpu_us"] for r in results[name]) for name in CONFIGURATIONS}
                rows.append({
                    "capture": label,
                    "packets": results["print"][0]["packets"],
                    "events": results["print"][0]["events"],
                    **{f"{name}_packets_per_s": round(medians[name]) for name in CONFIGURATIONS},
                    **{f"{name}_range": [round(min(r["rate"] for r in results[name])),
                                         round(max(r["rate"] for r in results[name]))] for name in CONFIGURATIONS},
                    **{f"{name}_cpu_us_per_packet": round(cpu[name], 3) for name in CONFIGURATIONS},
                    "spool_vs_print": round(medians["spool"] / medians["print"], 3),
                    "spool_vs_ship": round(medians["spool"] / medians["ship"], 3),
                    "spool_vs_ship_cpu": round(cpu["spool"] / cpu["ship"], 3),
                })
        finally:
            collector.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each configuration (default 5); the median counts")
    args = parser.parse_args(argv)
    for row in measure(args.runs):
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
