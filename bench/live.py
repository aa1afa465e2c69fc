"""Live capture under load (target: no kernel drops at 20,000 queries/s): dnsperf through the netns testbed.

    python -m bench.live [--rates 5000,10000,20000,30000] [--seconds 5] [--servers 2]

For each rate, `dnswatch-agent run` starts in the testbed's node namespace capturing on the pods'
interfaces; dnsperf in `--servers` load pods sends at that rate in total (`-Q`, split between them), each pod
to its own dnsmasq in the node (one dnsmasq answers about 8-10k queries/s on this machine, single-threaded);
then the agent is stopped with SIGTERM and its summary read. A row gives the rate asked for, what dnsperf
sent and got answered, the packets the agent captured, the kernel's drops (PACKET_STATISTICS) and the
agent's CPU (utime + stime from /proc/PID/stat over the load) — as a share of one core and per packet.

Kinds of rows: `agent` is `dnswatch-agent run` as shipped (a 2 MiB TPACKET_V3 ring per interface);
`agent, recvfrom` the same reading one packet per `recvfrom` (`--ring-mb 0`); `capture only` runs the capture
loop alone (sockets, kernel filter, ring, no decoding) to show what reading costs; `capture, recvfrom` the
same with recvfrom and its 2 ms coalescing wait (`CaptureSettings.coalesce`); `capture, recvfrom, no wait`
without the wait, to show what waking up for every packet or two costs at low rates.

Every part (dnsperf, dnsmasq, the agent) shares the machine's cores, so at high rates the servers fall
behind before the agent does: the `answered_qps` column says what load the agent really saw.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from harness.netns import DNS_IPV4, NamespacesUnavailable, Pod, Testbed

RATES = (5_000, 10_000, 20_000, 30_000)
AGENT = str(Path(sys.executable).with_name("dnswatch-agent"))
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_SUMMARY = re.compile(r"captured (\d+) packets .*?(\d+) DNS messages.*kernel: (\d+) packets, (\d+) drops")
_CAPTURE_ONLY = """
import logging, signal, sys
from agent.shell.capture import CaptureSettings, LiveCapture
logging.basicConfig(level="INFO")
stopping = []
signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
capture = LiveCapture(CaptureSettings(patterns=("cali*",), coalesce=float(sys.argv[1]), ring_bytes=int(sys.argv[2])))
count = 0
for _ in capture.frames(lambda: bool(stopping)):
    count += 1
capture.close()
print(f"captured {count} packets on 0 interfaces: 0 DNS messages; kernel: {capture.stats.kernel_packets} packets, "
      f"{capture.stats.kernel_drops} drops", file=sys.stderr, flush=True)
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14 and 15 of stat(5))


class _Agent:
    """A capturing process in the node namespace, its stderr followed (to know when it captures)."""

    def __init__(self, bed: Testbed, argv: list[str], interfaces: list[str]) -> None:
        self.process = bed.popen_in_node(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                         cwd=Path(__file__).resolve().parent.parent)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + 60
        while not all(any(f"capturing on {name}" in line for line in self.lines) for name in interfaces):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the agent did not start capturing: {self.lines}")
            time.sleep(0.05)

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def stop(self) -> dict:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)
        self._reader.join(timeout=10)
        for line in self.lines:
            found = _SUMMARY.search(line)
            if found:
                frames, messages, kernel_packets, drops = map(int, found.groups())
                return {"agent_packets": frames, "dns_messages": messages, "kernel_packets": kernel_packets,
                        "kernel_drops": drops}
        raise RuntimeError(f"no summary from the agent: {self.lines}")


def _dnsperf(bed: Testbed, pods: list[Pod], servers: list[str], rate: int, seconds: float,
             queries: Path) -> tuple[list[subprocess.Popen], float]:
    per_pod = max(1, rate // len(pods))
    processes = [
        bed.popen_in_pod(pod, ["dnsperf", "-s", server, "-d", str(queries), "-l", str(seconds), "-c", "4",
                               "-q", "2000", "-t", "2", "-Q", str(per_pod)], stdout=subprocess.PIPE, text=True)
        for pod, server in zip(pods, servers)
    ]
    return processes, time.monotonic()


def _dnsperf_figures(processes: list[subprocess.Popen], seconds: float) -> dict:
    sent = completed = lost = 0
    for process in processes:
        out, _ = process.communicate(timeout=seconds + 60)
        sent += int(re.search(r"Queries sent:\s+(\d+)", out).group(1))
        completed += int(re.search(r"Queries completed:\s+(\d+)", out).group(1))
        lost += int(re.search(r"Queries lost:\s+(\d+)", out).group(1))
    return {"sent_qps": sent / seconds, "answered_qps": completed / seconds, "lost": lost}


def _one_rate(bed: Testbed, pods: list[Pod], servers: list[str], rate: int, seconds: float, argv: list[str],
              queries: Path) -> dict:
    agent = _Agent(bed, argv, [pod.host_interface for pod in pods])
    try:
        before, started = cpu_seconds(agent.process.pid), time.monotonic()
        processes, _ = _dnsperf(bed, pods, servers, rate, seconds, queries)
        figures = _dnsperf_figures(processes, seconds)
        cpu, elapsed = cpu_seconds(agent.process.pid) - before, time.monotonic() - started
    finally:
        row = agent.stop()
    row.update(figures)
    row["target_qps"] = rate
    row["agent_cpu_pct"] = 100 * cpu / elapsed
    row["us_per_packet"] = 1e6 * cpu / max(row["agent_packets"], 1)
    return row


def measure(rates=RATES, seconds: float = 5.0, servers: int = 2, capture_only: bool = True) -> list[dict]:
    """One row per (kind, rate): kind `agent` (the whole `dnswatch-agent run`) or `capture only`."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="dnswatch-live-") as work, Testbed.create() as bed:
        work = Path(work)
        pods = [bed.add_pod(f"load-{i}", namespace="bench") for i in range(servers)]
        addresses = [DNS_IPV4] + [f"10.96.0.{11 + i}" for i in range(servers - 1)]
        for address in addresses[1:]:  # one more dnsmasq per load pod: a single one tops out first
            bed.start_dns(None, addresses=[address])
        queries = work / "queries.txt"
        # One query in a hundred is for a feed name: the pipeline does real work, and events stay few.
        queries.write_text("bench.example A\n" * 99 + "evil.example A\n")
        (work / "c2.txt").write_text("evil.example\n")
        pods_file = bed.write_pod_list(work / "pods.json")
        agent_argv = [AGENT, "run", "--interfaces", "cali*", "--pods", str(pods_file), "--feed",
                      f"c2={work / 'c2.txt'}", "--node", bed.node_name, "-o", "json"]
        ring = str(2 * 1024 * 1024)
        kinds = [("agent", agent_argv), ("agent, recvfrom", [*agent_argv, "--ring-mb", "0"])]
        if capture_only:
            kinds.append(("capture only", [sys.executable, "-c", _CAPTURE_ONLY, "0", ring]))
            kinds.append(("capture, recvfrom", [sys.executable, "-c", _CAPTURE_ONLY, "0.002", "0"]))
            kinds.append(("capture, recvfrom, no wait", [sys.executable, "-c", _CAPTURE_ONLY, "0", "0"]))
        for kind, argv in kinds:
            for rate in rates:
                row = _one_rate(bed, pods, addresses, rate, seconds, argv, queries)
                row["kind"] = kind
                rows.append(row)
    return rows


def highest_clean_rate(rows: list[dict], kind: str = "agent") -> dict | None:
    """The row of `kind` with the highest rate the agent really saw (answered queries/s: the servers may fall
    short of the target) and no kernel drop."""
    clean = [r for r in rows if r["kind"] == kind and r["kernel_drops"] == 0]
    return max(clean, key=lambda r: r["answered_qps"], default=None)


COLUMNS = ("kind", "target_qps", "sent_qps", "answered_qps", "lost", "agent_packets", "kernel_drops",
           "agent_cpu_pct", "us_per_packet")


def table(rows: list[dict]) -> str:
    cells = [COLUMNS] + [tuple(_cell(row[c]) for c in COLUMNS) for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells)


def _cell(value) -> str:
    return f"{value:,.1f}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else str(value)


def main(argv: list[str] | None = None) -> int:
    options = argparse.ArgumentParser(prog="python -m bench.live", description=__doc__.split("\n\n")[0])
    options.add_argument("--rates", default=",".join(map(str, RATES)))
    options.add_argument("--seconds", type=float, default=5.0)
    options.add_argument("--servers", type=int, default=2, help="load pods, each with its own dnsmasq")
    options.add_argument("--no-capture-only", action="store_true")
    args = options.parse_args(argv)
    load = os.getloadavg()[0]
    try:
        rows = measure([int(r) for r in args.rates.split(",")], args.seconds, args.servers,
                       not args.no_capture_only)
    except NamespacesUnavailable as reason:
        print(f"bench.live: skipped: {reason}", file=sys.stderr)
        return 0
    print(table(rows))
    print(f"machine: {os.cpu_count()} cores, load average {load:.1f} at the start (dnsperf, dnsmasq and the agent "
          "share them; `answered_qps` below the target means the servers, not the agent, were the limit)")
    best = highest_clean_rate(rows)
    if best is None:
        print("no rate ran without kernel drops")
    else:
        print(f"highest rate with zero kernel drops: {best['answered_qps']:,.0f} queries/s answered "
              f"({best['agent_packets'] / args.seconds:,.0f} packets/s captured; target {best['target_qps']:,}), "
              f"agent CPU {best['agent_cpu_pct']:.1f} % of a core, {best['us_per_packet']:.1f} µs per packet")
    return 0


if __name__ == "__main__":
    sys.exit(main())
