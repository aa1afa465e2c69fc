"""End-to-end latency: from a DNS packet on a pod's interface to the event in `events watch`.

    python -m bench.e2e [--trials 20]

The whole path, every part real: the netns testbed (harness/netns.py) gives a pod and the cluster DNS; a
collector (SQLite, plaintext, in this process's namespace, reached over a veth) pulls a feed from a local
HTTP server; `dnswatch-agent run --collector` captures in the node namespace; this script holds an
Events.Watch stream open, as `dnswatch events watch` does. Each trial is one `dig` from the pod for a name
never asked before (`tN.lat.example`, under the feed's `*.lat.example`), so it is a new event, emitted at
once (docs/detection.md: the first occurrence is not held for the aggregation window).

Latency = the time the watch receives the event − the event's `record.first_seen`, which is the capture
timestamp the kernel put on the query packet. Both are read from the same machine's clock. The figure
includes the agent's transaction wait (the query is paired with its response), its batch linger before
shipping, the collector's durable write (an fsync) and the watch's wake-up.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

AGENT = str(Path(sys.executable).with_name("dnswatch-agent"))


def _epoch(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def measure(trials: int = 20) -> list[dict]:
    """One row: the latency's median, p95 and max over `trials` new events (or a row saying why not)."""
    import grpc

    from dnswatch_pb.v1 import events_pb2, events_pb2_grpc
    from harness.collector import RunningCollector, manifest, pulled
    from harness.feedserver import FeedServer
    from harness.netns import NamespacesUnavailable, Testbed

    try:
        bed = Testbed.create()
    except NamespacesUnavailable as error:
        return [{"what": "end-to-end latency", "skipped": str(error)}]
    arrivals: dict[str, float] = {}
    seen = threading.Condition()
    with bed, tempfile.TemporaryDirectory(prefix="dnswatch-e2e-") as folder, FeedServer() as feed_server:
        work = Path(folder)
        host_address, _ = bed.link_to_host()
        feed_server.serve("/lat.txt", b"*.lat.example\n")
        feeds_dir = work / "feeds"
        feeds_dir.mkdir()
        (feeds_dir / "lat.yaml").write_text(manifest("lat", feed_server.url("/lat.txt")))
        with RunningCollector(f"sqlite:///{work / 'db.sqlite'}", feeds_dir, "--listen", "0.0.0.0:0") as collector:
            collector.wait_for(pulled("lat"), "the lat feed pulled")
            pod = bed.add_pod("client", namespace="bench")
            pods = bed.write_pod_list(work / "pods.json")
            agent = bed.popen_in_node([AGENT, "run", "--interfaces", "cali*", "--pods", str(pods), "--node",
                                       bed.node_name, "--collector", f"{host_address}:{collector.port}",
                                       "--insecure"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            lines: list[str] = []
            threading.Thread(target=lambda: lines.extend(agent.stderr), daemon=True).start()
            _wait(lambda: any(f"capturing on {pod.host_interface}" in line for line in lines), 60,
                  lambda: f"the agent did not start capturing: {lines}")

            channel = grpc.insecure_channel(collector.address)
            watch = events_pb2_grpc.EventsStub(channel).Watch(events_pb2.WatchEventsRequest())

            def follow() -> None:
                try:
                    for response in watch:
                        if response.HasField("event"):
                            with seen:
                                arrivals.setdefault(response.event.json, time.time())
                                seen.notify_all()
                except grpc.RpcError:
                    pass

            threading.Thread(target=follow, daemon=True).start()
            time.sleep(1.0)  # the watch is open before the first packet
            try:
                for trial in range(trials):
                    before = len(arrivals)
                    bed.dig(pod, f"t{trial}.lat.example")
                    with seen:
                        if not seen.wait_for(lambda: len(arrivals) > before, timeout=10):
                            raise RuntimeError(f"trial {trial}: no event within 10 s; agent: {lines[-5:]}")
                    time.sleep(0.05)
            finally:
                watch.cancel()
                channel.close()
                agent.terminate()
                agent.wait(timeout=30)
    import json

    latencies = sorted((arrived - _epoch(json.loads(text)["record"]["first_seen"])) * 1000
                       for text, arrived in arrivals.items())
    return [{"what": "end-to-end latency, packet to events watch", "trials": len(latencies),
             "median_ms": statistics.median(latencies), "p95_ms": latencies[int(0.95 * (len(latencies) - 1))],
             "max_ms": latencies[-1]}]


def _wait(condition, seconds: float, message) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(message())
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.e2e", description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args(argv)
    for row in measure(args.trials):
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
