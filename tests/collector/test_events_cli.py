"""`dnswatch events list|watch` as a real process against a real collector (SQLite, 127.0.0.1).

Events reach the collector's store the way another replica's writes would: through a second store opened on
the same database, so the watch finds them by polling (the bell rings only for this collector's ingest).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dnswatch.pbconvert.events import encode_resume_token
from collector.store import open_store
from harness.collector import RunningCollector
from tests.collector.eventdata import T0, event, newest_first, stamp
from tests.collector.running import db_url  # noqa: F401

pytestmark = pytest.mark.timeout(90)

ROOT = Path(__file__).resolve().parents[2]
DNSWATCH = [sys.executable, "-m", "consumer.cli"]
TOKEN_LINE = re.compile(r"resume with --resume-token (\S+)")


def connection(address: str) -> list[str]:
    """The flags that reach a test collector (plaintext on loopback)."""
    return ["--collector", address, "--insecure"]


def dnswatch(address: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([*DNSWATCH, *connection(address), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def ingest(db: str, events: list[dict]) -> None:
    async def run() -> None:
        store = await open_store(db)
        try:
            await store.ingest_events(events)
        finally:
            await store.close()

    asyncio.run(run())


def latest_seq(db: str) -> int:
    async def run() -> int:
        store = await open_store(db)
        try:
            return await store.latest_event_seq()
        finally:
            await store.close()

    return asyncio.run(run())


def compact(e: dict) -> str:
    return json.dumps(e, separators=(",", ":"), ensure_ascii=False)


class Watch:
    """`dnswatch events watch` running; its stdout lines arrive in a queue."""

    def __init__(self, address: str, *args: str) -> None:
        self.process = subprocess.Popen([*DNSWATCH, *connection(address), "events", "watch", *args], cwd=ROOT,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def take(self, count: int, timeout: float = 20) -> list[str]:
        got = []
        end = time.monotonic() + timeout
        while len(got) < count:
            try:
                got.append(self.lines.get(timeout=max(0.01, end - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"{len(got)} of {count} lines came: {got}") from None
        return got

    def stop(self, signum: int = signal.SIGINT) -> tuple[int, str]:
        """Signal it; (exit status, stderr)."""
        self.process.send_signal(signum)
        try:
            code = self.process.wait(timeout=20)
            self.reader.join(timeout=10)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        return code, self.process.stderr.read()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()
        self.process.stderr.close()


EVENTS = [
    event(0, namespace="shop", pod="web-a-1", feeds=("c2",), domains=("evil.example",), host="node-1"),
    event(1, namespace="shop", pod="web-a-2", feeds=("c2", "malware"), domains=("bad.example",), host="node-2"),
    event(2, namespace="bank", pod="api-b-1", feeds=("malware",), domains=("evil.example",), host="node-1"),
    event(3, namespace="bank", pod="api-b-1", feeds=("phish",), domains=("phish.example",), host="node-2",
          type_="other_type"),
    event(4, namespace="ops", pod="db-c-1", feeds=("c2",), domains=("evil.example",), host="node-1"),
]
BY_ID = {e["id"]: e for e in EVENTS}


@pytest.fixture
def collector(db_url, tmp_path):  # noqa: F811
    ingest(db_url, EVENTS)
    with RunningCollector(db_url, tmp_path) as running:  # no feeds: the folder holds none
        yield running


def numbers(*n: int) -> list[str]:
    return [compact(EVENTS[i]) for i in n]


def test_list_json_prints_each_event_as_stored_newest_first(collector):
    result = dnswatch(collector.address, "events", "list", "-o", "json")
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.splitlines() == [compact(BY_ID[i]) for i in newest_first(EVENTS)]
    assert [json.loads(line) for line in result.stdout.splitlines()] == [BY_ID[i] for i in newest_first(EVENTS)]


@pytest.mark.parametrize("flags, expected", [
    (["--namespace", "shop"], [1, 0]),
    (["--pod", "api-b-1"], [3, 2]),
    (["--pod", "web-a-*"], [1, 0]),
    (["--feed", "malware"], [2, 1]),
    (["--domain", "Evil.Example."], [4, 2, 0]),
    (["--type", "other_type"], [3]),
    (["--node", "node-2"], [3, 1]),
    (["--since", stamp(T0 + dt.timedelta(seconds=2))], [4, 3, 2]),
    (["--until", "2026-11-27T21:00:02+01:00"], [1, 0]),
    (["--namespace", "bank", "--feed", "malware", "--node", "node-1"], [2]),
    (["--namespace", "ops", "--feed", "malware"], []),
])
def test_list_filters(collector, flags, expected):
    result = dnswatch(collector.address, "events", "list", "-o", "json", *flags)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == numbers(*expected)


def test_list_limit_and_table(collector):
    result = dnswatch(collector.address, "events", "list", "-o", "json", "--limit", "2")
    assert result.returncode == 0
    assert result.stdout.splitlines() == numbers(4, 3)
    assert "newest 2 shown" in result.stderr and "--limit" in result.stderr
    everything = dnswatch(collector.address, "events", "list", "-o", "json", "--limit", "0")
    assert everything.stdout.splitlines() == numbers(4, 3, 2, 1, 0) and everything.stderr == ""

    table = dnswatch(collector.address, "events", "list", "--feed", "c2")
    assert table.returncode == 0
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["TIME", "SOURCE", "QNAME", "FEEDS", "COUNT"]
    assert [row.split() for row in rows] == [
        ["2026-11-27T20:00:04Z", "ops/db-c-1", "evil.example", "c2", "1"],
        ["2026-11-27T20:00:01Z", "shop/web-a-2", "bad.example", "c2,malware", "1"],
        ["2026-11-27T20:00:00Z", "shop/web-a-1", "evil.example", "c2", "1"],
    ]


def test_relative_since_and_until(collector, db_url):  # noqa: F811
    now = dt.datetime.now(dt.timezone.utc)
    recent = event(50, namespace="rel", seconds=(now - dt.timedelta(minutes=30) - T0).total_seconds())
    older = event(51, namespace="rel", seconds=(now - dt.timedelta(hours=3) - T0).total_seconds())
    ingest(db_url, [recent, older])
    result = dnswatch(collector.address, "events", "list", "-o", "json", "--namespace", "rel", "--since", "1h")
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == [recent["id"]]
    result = dnswatch(collector.address, "events", "list", "-o", "json", "--namespace", "rel", "--until", "1h")
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == [older["id"]]
    result = dnswatch(collector.address, "events", "list", "-o", "json", "--namespace", "rel",
                      "--since", "1d", "--until", "2h30m")
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == [older["id"]]


@pytest.mark.parametrize("args, message", [
    (["events", "list", "--since", "yesterday"], "--since: 'yesterday' is neither an RFC 3339 time"),
    (["events", "list", "--until", "2026-11-27T20:00:00"], "has no timezone"),
    (["events", "list", "--limit", "many"], "--limit: 'many' is not a number"),
    (["events", "list", "--since", "1h", "--until", "2h"], "--since must be before --until"),
    (["events", "list", "-o", "xml"], "invalid choice: 'xml'"),
    (["events", "watch", "--resume-token", "garbage"], "resume_token: not a resume token"),
    (["events", "list"], None),  # the collector is unreachable
    (["events", "burn"], "invalid choice: 'burn'"),
    # Durations that reach back past the year 1 (or past what a timedelta holds).
    (["events", "list", "--since", "1000000d"], "--since: '1000000d' reaches back before the year 1"),
    (["events", "list", "--until", "1000000d"], "--until: '1000000d' reaches back before the year 1"),
    (["events", "watch", "--since", "99999999999999w"], "--since: '99999999999999w' reaches back before"),
    # Every file flag names itself and the path it was given.
    (["--ca", "nope.pem", "events", "list"], "--ca nope.pem: no such file"),
    (["--cert", "nope.pem", "--key", "nope.key", "events", "list"], "--cert nope.pem: no such file"),
    (["--cert", "README.md", "--key", "nope.key", "events", "list"], "--key nope.key: no such file"),
    (["--cert", "tests", "--key", "nope.key", "events", "list"], "--cert tests: is a folder, not a file"),
    (["--token-file", "nope.token", "events", "watch"], "--token-file nope.token: no such file"),
])
def test_bad_input_is_one_line_and_exit_2(collector, args, message):
    address = collector.address if message is not None else "127.0.0.1:1"
    secure = args[0].startswith("--")  # connection flags: TLS, not --insecure
    result = (subprocess.run([*DNSWATCH, "--collector", address, *args], cwd=ROOT, capture_output=True, text=True,
                             timeout=30) if secure else dnswatch(address, *args))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("dnswatch: error: "), result.stderr
    assert "Traceback" not in result.stderr
    assert (message or "cannot be reached") in lines[0]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_watch_prints_new_events_and_resumes_from_the_token_it_prints(collector, db_url, signum):  # noqa: F811
    watch = Watch(collector.address, "-o", "json", "--resume-token", encode_resume_token(latest_seq(db_url)))
    try:
        fresh = [event(10, namespace="w"), event(11, namespace="w", count=2)]
        ingest(db_url, fresh)
        assert watch.take(2) == [compact(e) for e in fresh]
        code, err = watch.stop(signum)
    finally:
        watch.close()
    assert code == 0, err
    token = TOKEN_LINE.search(err).group(1)
    assert "Traceback" not in err

    # While nobody watches: event 11 grows, 10 comes again unchanged, 12 is new.
    later = [event(11, namespace="w", count=5), event(10, namespace="w"), event(12, namespace="w")]
    ingest(db_url, later)
    resumed = Watch(collector.address, "-o", "json", "--resume-token", token)
    try:
        got = resumed.take(2)
        assert sorted(got) == sorted([compact(later[0]), compact(later[2])])
        ingest(db_url, [event(13, namespace="w")])
        assert resumed.take(1) == [compact(event(13, namespace="w"))]
        assert resumed.lines.empty()
        code, err = resumed.stop()
    finally:
        resumed.close()
    assert code == 0 and TOKEN_LINE.search(err)


def test_watch_with_filters_and_a_table(collector, db_url):  # noqa: F811
    watch = Watch(collector.address, "--namespace", "w", "--feed", "malware",
                  "--resume-token", encode_resume_token(latest_seq(db_url)))
    try:
        ingest(db_url, [event(20, namespace="w", feeds=("c2",)), event(21, namespace="x", feeds=("malware",)),
                        event(22, namespace="w", feeds=("malware",), pod="api-7-1", domains=("z.example",))])
        header, row = watch.take(2)
        assert header.split() == ["TIME", "SOURCE", "QNAME", "FEEDS", "COUNT"]
        assert row.split() == ["2026-11-27T20:00:22Z", "w/api-7-1", "z.example", "malware", "1"]
        code, _ = watch.stop()
    finally:
        watch.close()
    assert code == 0


def test_watch_from_now_then_stopped_before_any_event_resumes_from_where_it_started(collector, db_url):  # noqa: F811
    watch = Watch(collector.address, "-o", "json")
    try:
        # Wait until the watch is connected: it prints nothing, so look for the first event stored after it.
        deadline = time.monotonic() + 20
        number = 100
        while watch.lines.empty():
            assert time.monotonic() < deadline, "the watch never printed"
            ingest(db_url, [event(number, namespace="now")])
            number += 1
            time.sleep(0.3)
        code, err = watch.stop()
    finally:
        watch.close()
    token = TOKEN_LINE.search(err).group(1)
    ingest(db_url, [event(500, namespace="now")])
    resumed = Watch(collector.address, "-o", "json", "--resume-token", token)
    try:
        # What was stored after its last line (more ingests may have landed before the signal) and 500.
        lines = resumed.take(1)
        while json.loads(lines[-1])["id"] != event(500)["id"]:
            lines += resumed.take(1)
        printed = {json.loads(line)["id"] for line in watch_lines_seen(watch)}
        assert not printed & {json.loads(line)["id"] for line in lines}, "an event came twice"
        resumed.stop()
    finally:
        resumed.close()


def watch_lines_seen(watch: Watch) -> list[str]:
    seen = []
    while not watch.lines.empty():
        seen.append(watch.lines.get())
    return seen


def test_watch_reconnects_to_a_restarted_collector_and_misses_nothing(db_url, tmp_path):  # noqa: F811
    first = RunningCollector(db_url, tmp_path).__enter__()
    port = first.port
    watch = Watch(first.address, "-o", "json", "--resume-token", encode_resume_token(latest_seq(db_url)))
    try:
        ingest(db_url, [event(1)])
        assert watch.take(1) == [compact(event(1))]
        first.__exit__()
        # Stored while no collector serves: the watch must get them from the next one.
        ingest(db_url, [event(2), event(1, count=4)])
        with RunningCollector(db_url, tmp_path, "--listen", f"127.0.0.1:{port}"):
            got = watch.take(2, timeout=40)
            assert sorted(got) == sorted([compact(event(2)), compact(event(1, count=4))])
            ingest(db_url, [event(3)])
            assert watch.take(1) == [compact(event(3))]
            code, err = watch.stop()
    finally:
        first.__exit__()
        watch.close()
    assert code == 0
    assert "reconnecting" in err and TOKEN_LINE.search(err) and "Traceback" not in err


# -- the pure parts (consumer/eventview.py) ------------------------------------------------------------------


def test_table_row_shows_what_matched_beside_the_question():
    from consumer.eventview import table_row

    cname = event(1, pod="web-a-1", domains=("cdn.bad.example",))
    cname["record"]["qname"] = "static.partner.example"
    assert table_row(cname) == ("2026-11-27T20:00:01Z", "shop/web-a-1", "static.partner.example (cdn.bad.example)",
                                "c2", "1")
    by_ip = event(2, domains=())
    by_ip["record"].update(qname="img.example", suspicious_ips=["192.0.2.9"], feeds=["badips"])
    assert table_row(by_ip)[2:4] == ("img.example (192.0.2.9)", "badips")
    no_pod = event(3)
    no_pod.update(source_namespace="-", source_name="-", source_name_aggr="-", source_ip="10.244.1.250")
    assert table_row(no_pod)[1] == "10.244.1.250"
    by_workload = event(4)
    by_workload.update(source_name="-", source_name_aggr="web-7d4b9c-*")
    assert table_row(by_workload)[1] == "shop/web-7d4b9c-*"
    assert table_row({"id": "x"}) == ("-", "-", "-", "-", "-")


def test_the_wide_row_says_where_each_match_is_listed():
    from consumer.eventview import WIDE_COLUMNS, wide_row

    listed = event(1)
    listed["record"]["matches"] = [
        {"name": "a.bad.example", "feed": "c2", "entry": "a.bad.example", "feed_version": "7", "line": 4711},
        {"name": "b.bad.example", "feed": "c2", "entry": "b.bad.example", "feed_version": "7", "line": 4711},
        {"name": "192.0.2.9", "feed": "badips", "entry": "192.0.2.0/24", "feed_version": "3", "line": None},
        {"name": "c.bad.example", "feed": "local", "entry": "c.bad.example", "feed_version": "sha256:28d16fe33c4e",
         "line": 2}]
    row = dict(zip(WIDE_COLUMNS, wide_row(listed)))
    assert row["LISTED"] == "c2@7:4711,badips@3,local@28d16fe33c4e:2"
    old = event(2)  # stored by an agent older than feed versions
    old["record"]["matches"] = [{"name": "a.bad.example", "feed": "c2", "entry": "a.bad.example"}]
    assert dict(zip(WIDE_COLUMNS, wide_row(old)))["LISTED"] == "c2"
    assert dict(zip(WIDE_COLUMNS, wide_row({"id": "x"})))["LISTED"] == "-"


def test_parse_when_takes_rfc3339_and_durations_before_now():
    from consumer.eventview import parse_when

    now = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.timezone.utc)
    assert parse_when("15m", now) == now - dt.timedelta(minutes=15)
    assert parse_when("1h30m", now) == now - dt.timedelta(minutes=90)
    assert parse_when("2d", now) == now - dt.timedelta(days=2)
    assert parse_when("1w", now) == now - dt.timedelta(days=7)
    assert parse_when("90s", now) == now - dt.timedelta(seconds=90)
    assert parse_when("2026-11-27T20:00:00Z", now) == dt.datetime(2026, 11, 27, 20, tzinfo=dt.timezone.utc)
    assert parse_when("2026-11-27T21:00:00.5+01:00", now) == dt.datetime(2026, 11, 27, 20, 0, 0, 500000,
                                                                         tzinfo=dt.timezone.utc)
    for bad in ("", "15", "m", "1y", "2026-11-27", "2026-11-27T20:00:00", "yesterday", "-5m"):
        with pytest.raises(ValueError):
            parse_when(bad, now)


def ship(address: str, node: str, batches: list[list[dict]]) -> None:
    """One agent's EventIngest.Send stream: every batch, each acknowledged before this returns."""
    import grpc

    from dnswatch_pb.v1 import events_pb2, events_pb2_grpc

    requests = [events_pb2.EventBatch(batch_id=n + 1, node=node, events=[
        events_pb2.Event(id=e["id"], json=compact(e)) for e in batch]) for n, batch in enumerate(batches)]
    with grpc.insecure_channel(address) as channel:
        acks = list(events_pb2_grpc.EventIngestStub(channel).Send(iter(requests), timeout=60))
    assert [ack.batch_id for ack in acks] == [r.batch_id for r in requests]


def test_many_watches_with_agents_shipping_at_once_print_every_event_once(collector, db_url):  # noqa: F811
    """Five `events watch` processes (pages, a filter, a table) while two agents ship through the collector
    and another replica writes to the same database: each prints every emission once, in order."""
    start = encode_resume_token(latest_seq(db_url))
    watches = [Watch(collector.address, "-o", "json", "--resume-token", start) for _ in range(3)]
    watches.append(Watch(collector.address, "-o", "json", "--namespace", "bank", "--resume-token", start))
    table = Watch(collector.address, "--resume-token", start)
    agents = {node: [[event(1000 + 100 * a + 10 * b + i, namespace=("bank" if i % 3 == 0 else "shop"),
                            host=node) for i in range(10)] for b in range(8)]
              for a, node in enumerate(["node-a", "node-b"])}
    # Re-emissions of some of the first batch's events, grown, in a later batch of the same agent.
    agents["node-a"].append([event(1000 + i, count=3, namespace=("bank" if i % 3 == 0 else "shop"),
                                   host="node-a") for i in range(0, 10, 2)])
    replica = [event(5000 + i, namespace="bank") for i in range(20)]
    try:
        threads = [threading.Thread(target=ship, args=(collector.address, node, batches))
                   for node, batches in agents.items()]
        threads.append(threading.Thread(target=ingest, args=(db_url, replica)))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        emitted = [e for batches in agents.values() for batch in batches for e in batch] + replica
        final = {e["id"]: e for e in emitted if e["record"]["count"] == 1}
        final.update({e["id"]: e for e in emitted if e["record"]["count"] > 1})
        for watch, where in zip(watches, [None, None, None, "bank"]):
            wanted = {i: e["record"]["count"] for i, e in final.items()
                      if where is None or e["source_namespace"] == where}
            # Every event once, and a re-emission once more unless the watch came to it after it grew.
            counts: dict[str, int] = {}
            while counts != wanted:
                got = json.loads(watch.take(1)[0])
                assert got["id"] in wanted, f"{got['id']} does not match"
                assert got["record"]["count"] > counts.get(got["id"], 0), f"{got['id']} printed twice"
                counts[got["id"]] = got["record"]["count"]
        rows = table.take(1 + len(final))  # the header, then a row per event at least
        assert rows[0].split()[:2] == ["TIME", "SOURCE"]
    finally:
        for watch in [*watches, table]:
            watch.close()


def test_watch_prints_the_single_events_of_a_collector_from_before_pages():
    """A collector that predates pages answers `max_events` with one event per response, in `event`: a
    stand-in for it (a real gRPC server sending what such a collector sent) is still followed."""
    from concurrent import futures

    import grpc

    from dnswatch_pb.v1 import events_pb2

    singles = [event(70), event(71, count=2)]

    def watch(request, context):
        assert request.max_events > 0  # asked for pages, and gets singles all the same
        yield events_pb2.EventWatchResponse(resume_token=encode_resume_token(0))
        for n, one in enumerate(singles, 1):
            yield events_pb2.EventWatchResponse(event=events_pb2.Event(id=one["id"], json=compact(one)),
                                                resume_token=encode_resume_token(n))
        while context.is_active():
            context_done.wait(0.5)

    context_done = threading.Event()
    handler = grpc.method_handlers_generic_handler("dnswatch.v1.Events", {
        "Watch": grpc.unary_stream_rpc_method_handler(
            watch, request_deserializer=events_pb2.WatchEventsRequest.FromString,
            response_serializer=events_pb2.EventWatchResponse.SerializeToString)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), handlers=[handler])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    watcher = Watch(f"127.0.0.1:{port}", "-o", "json")
    try:
        assert watcher.take(2) == [compact(one) for one in singles]
        code, err = watcher.stop()
        assert code == 0 and f"--resume-token {encode_resume_token(2)}" in err
    finally:
        watcher.close()
        context_done.set()
        server.stop(None)
