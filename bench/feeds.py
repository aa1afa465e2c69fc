"""The feed path (docs/architecture.md), measured with the real parts: an HTTP server on 127.0.0.1 serving the 1M-domain
feed, the collector's puller, a real collector (SQLite, loopback) and the agent's feed stream client.

- pull and parse: `FeedPuller.pull` of the 1M-line feed (HTTP, parse, canonical entries);
- snapshot push: an agent holding nothing subscribes and holds the compiled 1M-domain set;
- 1 % delta: 1 % of the feed's lines replaced, the collector synced, an agent holding the old version
  resubscribes and is brought up to date;
- agent memory per domain: what the received set holds.
Bytes on the wire are the serialized sizes of the stream's messages, received through the same stub.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import grpc

from dnswatch.feeds.spec import feed_spec_from_manifest
from agent.shell.feedclient import FeedStream, FeedStreamSettings
from dnswatch.grpcchannel import PLAINTEXT, connector
from collector.shell.main import serve, settings_from_args
from collector.shell.puller import FeedPuller
from dnswatch_pb.v1 import distribution_pb2, distribution_pb2_grpc, feeds_pb2, feeds_pb2_grpc
from pcaps.demo import feed_site

FEED = "bench"


def manifest(url: str) -> dict:
    return {
        "apiVersion": "dnswatch.dev/v1",
        "kind": "GlobalThreatFeed",
        "metadata": {"name": FEED},
        "spec": {"content": "DomainNameSet", "pull": {"period": "24h", "http": {"url": url}}},
    }


@contextmanager
def running_collector(db: Path, feeds_dir: Path):
    settings = settings_from_args(["--db", f"sqlite:///{db}", "--listen", "127.0.0.1:0", "--feeds-dir",
                                   str(feeds_dir), "--feeds-dir-poll", "0.2", "--insecure"])
    ready = threading.Event()
    state: dict = {}

    def run() -> None:
        async def main() -> None:
            state["loop"], state["stop"] = asyncio.get_running_loop(), asyncio.Event()
            await serve(settings, state["stop"], on_listening=lambda port: (state.update(port=port), ready.set()))

        try:
            asyncio.run(main())
        finally:
            ready.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not ready.wait(60) or "port" not in state:
        raise RuntimeError("the collector did not start")
    try:
        yield f"127.0.0.1:{state['port']}"
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(60)


def feed_version(address: str) -> int:
    with grpc.insecure_channel(address) as channel:
        feeds = feeds_pb2_grpc.FeedsStub(channel).List(feeds_pb2.ListFeedsRequest(), timeout=30).feeds
    return next((feed.status.version for feed in feeds if feed.name == FEED), 0)


def wire_bytes(address: str, have: dict[str, int]) -> tuple[int, str]:
    """Serialized bytes of the initial state an agent holding `have` receives, and what it was."""
    total, kinds = 0, set()
    options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    with grpc.insecure_channel(address, options=options) as channel:
        stub = distribution_pb2_grpc.FeedDistributionStub(channel)
        for update in stub.Subscribe(distribution_pb2.SubscribeRequest(node="bench", have=have), timeout=120):
            kind = update.WhichOneof("update")
            if kind == "synced":
                break
            kinds.add(kind)
            total += update.ByteSize()
    return total, ",".join(sorted(kinds))


def measure_feed_path(feed: Path) -> dict:
    lines = feed.read_bytes().splitlines(keepends=True)
    with tempfile.TemporaryDirectory(prefix="dnswatch-bench-") as work:
        work = Path(work)
        (work / "www").mkdir()
        (work / "feeds").mkdir()
        (work / "www" / "feed.txt").write_bytes(b"".join(lines))
        with feed_site(work / "www") as base:
            figures = {"pull_parse_s": _pull_and_parse(manifest(f"{base}/feed.txt"))}
            import yaml

            (work / "feeds" / "bench.yaml").write_text(yaml.safe_dump(manifest(f"{base}/feed.txt")))
            with running_collector(work / "db.sqlite", work / "feeds") as address:
                _wait(lambda: feed_version(address) >= 1, "the first pull")
                started = time.perf_counter()
                stream = FeedStream(FeedStreamSettings(address, node="bench"), connect=connector(PLAINTEXT))
                held = stream.sync_once(timeout=120)
                figures["snapshot_s"] = time.perf_counter() - started
                figures["snapshot_bytes"], _ = wire_bytes(address, {})
                domains = dict((f.name, f.domains) for f in held.feeds())[FEED]
                figures["entries"] = len(domains)
                figures["bytes_per_domain"] = domains.nbytes / len(domains)
                version = feed_version(address)

                changed = len(lines) // 100  # 1 %: that many lines replaced by new names
                fresh = [f"fresh-{i}.changed.example\n".encode() for i in range(changed)]
                (work / "www" / "feed.txt").write_bytes(b"".join(fresh + lines[changed:]))
                with grpc.insecure_channel(address) as channel:
                    feeds_pb2_grpc.FeedsStub(channel).Sync(feeds_pb2.SyncFeedRequest(name=FEED), timeout=120)
                _wait(lambda: feed_version(address) > version, "the changed feed")
                started = time.perf_counter()
                stream = FeedStream(FeedStreamSettings(address, node="bench"), held, connect=connector(PLAINTEXT))
                stream.sync_once(timeout=120)
                figures["delta_s"] = time.perf_counter() - started
                figures["delta_bytes"], figures["delta_kind"] = wire_bytes(address, {FEED: version})
    return figures


def _pull_and_parse(manifest_obj: dict) -> float:
    spec = feed_spec_from_manifest(manifest_obj)

    async def pull() -> float:
        async with FeedPuller() as puller:
            puller.set_feed(spec)
            started = time.perf_counter()
            result = await puller.pull(spec.name)
            elapsed = time.perf_counter() - started
            if result.parsed is None:
                raise RuntimeError(f"the bench pull failed: {result.outcome} {result.message}")
            return elapsed

    return asyncio.run(pull())


def _wait(condition, what: str, deadline: float = 120.0) -> None:
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)
