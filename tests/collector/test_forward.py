"""Forwarding every event to a SIEM (docs/forwarding.md), with real parts: the store on SQLite and on a real
PostgreSQL server, the collector as a process killed with SIGKILL, and a real rsyslogd over TCP and TLS."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
import trustme

from agent.core.events import schema
from collector.core.forwardline import EVENT_FIELDS, FORWARD_FIELDS, RECORD_FIELDS, forwarded_event
from collector.core.forwardtarget import parse_target
from collector.core.rfc5424 import octet_counted, syslog_message, syslog_severity
from collector.shell import main as collector_main
from collector.shell.eventbell import EventBell
from collector.shell.forwarder import Forwarder, ForwarderSettings
from collector.shell.forwardfile import FileSink
from collector.shell.forwardmetrics import ForwardMetrics
from collector.store import open_store
from dnswatch_pb.v1 import events_pb2, events_pb2_grpc
from harness.collector import RunningCollector, free_port
from harness.rsyslog import RsyslogReceiver, RsyslogUnavailable, rsyslogd_path
from prometheus_client import CollectorRegistry
from tests.collector.eventdata import event as make_event

REPO = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------------------------- helpers


def ship(address: str, events: list[dict], *, first_batch: int = 1, batch: int = 50) -> None:
    """Send the events to the collector's EventIngest as an agent does, and wait for every ack."""
    batches = [events_pb2.EventBatch(batch_id=first_batch + n, node="node-1", events=[
        events_pb2.Event(id=item["id"], json=json.dumps(item)) for item in events[start:start + batch]])
        for n, start in enumerate(range(0, len(events), batch))]
    with grpc.insecure_channel(address) as channel:
        acks = list(events_pb2_grpc.EventIngestStub(channel).Send(iter(batches), timeout=60))
    assert len(acks) == len(batches)


def file_lines(path: Path) -> list[dict]:
    """Every line of the file target and its rotations, oldest first: PATH.N ... PATH.1, then PATH."""
    rotated = sorted(path.parent.glob(path.name + ".*"), key=lambda p: int(p.suffix[1:]), reverse=True)
    lines = []
    for part in [*rotated, path]:
        if part.exists():
            data = part.read_bytes()
            assert not data or data.endswith(b"\n"), f"{part} ends with half a line"
            lines += [json.loads(line) for line in data.splitlines()]
    return lines


def emissions(lines: list[dict]) -> list[tuple[str, int]]:
    return [(line["id"], line["record"]["count"]) for line in lines]


def first_occurrences(lines: list[dict]) -> list[dict]:
    """The lines with every repeated emission (same seq) after its first dropped."""
    seen: set[int] = set()
    kept = []
    for line in lines:
        if line["seq"] not in seen:
            seen.add(line["seq"])
            kept.append(line)
    return kept


def wait_until(condition, what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------------- the pure parts


def test_forwarded_fields_follow_the_event_schema_then_the_forwarders_own() -> None:
    documented = [path for path, _ in schema()]
    assert list(EVENT_FIELDS) == [path for path in documented if "." not in path]
    assert list(RECORD_FIELDS) == [path[len("record."):] for path in documented
                                   if path.startswith("record.") and path.count(".") == 1]
    stored = make_event(1)
    as_sent = forwarded_event(json.dumps(stored), 42, "2026-12-03T17:00:00.000Z")
    shuffled = dict(reversed(list({**stored, "extra": 1}.items())))
    shuffled["record"] = dict(reversed(list(stored["record"].items())))
    reordered = forwarded_event(json.dumps(shuffled, indent=2), 43, "2026-12-03T17:00:00.000Z")
    for forwarded, tail in ((as_sent, []), (reordered, ["extra"])):
        assert b"\n" not in forwarded.line
        line = json.loads(forwarded.line)
        assert list(line) == [*EVENT_FIELDS, *tail, *FORWARD_FIELDS]
        assert list(line["record"]) == list(RECORD_FIELDS)
    assert json.loads(as_sent.line)["seq"] == 42 and json.loads(as_sent.line)["forwarded_at"].endswith("Z")


def test_syslog_messages_are_rfc5424_and_octet_counted() -> None:
    stored = make_event(3, domains=("a]b\"c\\.example",))
    forwarded = forwarded_event(json.dumps(stored), 7, "2026-12-03T17:00:00.000Z")
    message = syslog_message(forwarded.body, forwarded.line, hostname="collector 0", procid="12")
    header, _, rest = message.partition(b" [")
    assert header == (b"<130>1 " + stored["record"]["last_seen"].encode()
                      + b" collector_0 dnswatch 12 gtf_suspicious_dns_query")
    sd, _, msg = rest.partition(b"] {")
    assert sd.startswith(b"dnswatch@32473 id=\"" + stored["id"].encode() + b"\" count=\"1\"")
    assert b' feed="c2" domain="a\\]b\\"c\\\\.example' in sd
    assert json.loads(b"{" + msg) == json.loads(forwarded.line)
    assert octet_counted(message) == str(len(message)).encode() + b" " + message
    assert [syslog_severity(s) for s in (100, 80, 79, 60, 40, 20, 0, "high", None)] == [2, 2, 3, 3, 4, 5, 6, 4, 4]


@pytest.mark.parametrize(("text", "says"), [
    ("file:", "needs a file's path"), ("syslog://h:514", "expected file:PATH"),
    ("syslog+tcp://host", "expected syslog+tcp://HOST:PORT"), ("syslog+tls://h:99999", "HOST:PORT"),
])
def test_a_bad_target_is_refused_with_the_forms(text, says) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        parse_target(text)
    assert parse_target("syslog+tls://[::1]:6514").host == "::1"
    assert parse_target("file:///var/log/x.jsonl").path == "/var/log/x.jsonl"


def test_bad_forward_flags_are_one_line_and_exit_2(capsys, tmp_path) -> None:
    base = ["--db", f"sqlite:///{tmp_path / 'db.sqlite'}", "--listen", "127.0.0.1:0", "--insecure",
            "--feeds-dir", str(tmp_path)]
    for flags, says in ((["--forward", "ftp://x"], "--forward 'ftp://x'"),
                        (["--forward", "file:/tmp/a", "--forward", "file:/tmp/a"], "given twice"),
                        (["--forward", "file:/tmp/a", "--forward-keep", "0"], "--forward-keep 0"),
                        (["--forward", "syslog+tls://h:1", "--forward-ca", str(tmp_path / "no.pem")], "no such file")):
        assert collector_main.main([*base, *flags]) == 2
        _, err = capsys.readouterr()
        assert err.count("\n") == 1 and says in err, err


# ---------------------------------------------------------------------------------------------- the cursor


@pytest.mark.anyio
async def test_the_cursor_is_kept_per_target_and_never_moves_back(store_url) -> None:
    store = await open_store(store_url)
    try:
        assert await store.forward_cursor("file:/a") is None
        await store.save_forward_cursor("file:/a", 10)
        await store.save_forward_cursor("syslog+tcp://h:1", 3)
        await store.save_forward_cursor("file:/a", 7)  # a late save of an older position
        assert await store.forward_cursor("file:/a") == 10
    finally:
        await store.close()
    again = await open_store(store_url)
    try:
        assert (await again.forward_cursor("file:/a"), await again.forward_cursor("syslog+tcp://h:1")) == (10, 3)
    finally:
        await again.close()


@pytest.mark.anyio
async def test_a_forwarder_resumes_from_its_cursor_in_store_order(store_url, tmp_path) -> None:
    """On each backend: a target far behind catches up in pages, a grown event is forwarded again, the file
    rotates by rename, and a forwarder started again after a clean stop repeats nothing."""
    path = tmp_path / "out" / "events.jsonl"
    registry = CollectorRegistry()
    metrics = ForwardMetrics(registry)
    settings = ForwarderSettings(page_events=7, poll_seconds=0.2, read_interval_seconds=0.01)
    store = await open_store(store_url)

    async def forward_until(count: int) -> None:
        bell = EventBell()
        sink = FileSink(path, max_bytes=6000, keep=100)
        forwarder = Forwarder("file:" + str(path), sink, lambda page: [f.line for f in page], store, bell,
                              metrics, settings)
        forwarder.start()
        deadline = time.monotonic() + 30
        while len(file_lines(path)) < count:
            assert time.monotonic() < deadline, "the forwarder did not catch up"
            await asyncio.sleep(0.02)
        await forwarder.close()

    try:
        await store.ingest_events([make_event(n) for n in range(40)])
        await forward_until(40)
        await store.ingest_events([make_event(5, count=3), make_event(40), make_event(6, count=2)])
        await forward_until(43)
    finally:
        await store.close()
    lines = file_lines(path)
    # In store order: the store numbers a write's new events before its grown ones.
    assert emissions(lines) == [(f"{n:032x}", 1) for n in range(40)] + [
        (f"{40:032x}", 1), (f"{5:032x}", 3), (f"{6:032x}", 2)]
    assert [line["seq"] for line in lines] == list(range(1, 44))
    assert len(list(path.parent.glob("events.jsonl.*"))) >= 5  # rotated along the way
    assert all(len(p.read_bytes()) <= 6000 for p in path.parent.iterdir())
    label = {"target": "file:" + str(path)}
    assert registry.get_sample_value("dnswatch_collector_forward_events_total", label) == 43
    assert registry.get_sample_value("dnswatch_collector_forward_lag_events", label) == 0


# ---------------------------------------------------------------------------------------------- a file, across kill -9


def _collector_process(db: str, port: int, feeds: Path, *flags: str) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "collector.shell.main", "--db", db, "--listen", f"127.0.0.1:{port}",
         "--feeds-dir", str(feeds), "--insecure", "--log-level", "WARNING", *flags],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)})
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        grpc.channel_ready_future(channel).result(timeout=60)
    return process


def _saved_cursor(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(db, timeout=10)) as conn:
        row = conn.execute("SELECT MAX(seq) FROM forward_cursors").fetchone()
    return row[0] or 0


def test_the_file_target_gets_every_emission_across_a_kill_9(tmp_path) -> None:
    """Events ingested over gRPC reach the file and its rotations in store order, once per emission. After the
    collector is killed with SIGKILL, what it had written since it last saved its cursor (the last 100 events
    here, shipped after the cursor passed the first 200) may be written again, as whole lines; nothing is lost,
    and nothing else repeats."""
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    out = tmp_path / "siem" / "events.jsonl"
    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    flags = ("--forward", f"file:{out}", "--forward-max-bytes", "50000", "--forward-keep", "100")
    port = free_port()
    first = [make_event(n) for n in range(300)]
    process = _collector_process(db, port, feeds, *flags)
    try:
        ship(f"127.0.0.1:{port}", first[:200])
        wait_until(lambda: len(file_lines(out)) >= 200, "the first events in the file")
        wait_until(lambda: _saved_cursor(tmp_path / "db.sqlite") >= 200, "the cursor saved past them")
        ship(f"127.0.0.1:{port}", first[200:], first_batch=100)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    grown = [make_event(n, count=4) for n in range(0, 300, 30)]
    later = [make_event(n) for n in range(300, 400)]
    process = _collector_process(db, port, feeds, *flags)
    try:
        ship(f"127.0.0.1:{port}", grown, first_batch=200)
        ship(f"127.0.0.1:{port}", later, first_batch=300)
        expected = 300 + len(grown) + len(later)
        wait_until(lambda: len(first_occurrences(file_lines(out))) >= expected, "every emission in the file")
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    lines = file_lines(out)
    unique = first_occurrences(lines)
    assert [line["seq"] for line in unique] == sorted(line["seq"] for line in unique)  # store order
    assert sorted(emissions(unique)) == sorted(emissions(first) + emissions(grown) + emissions(later))
    repeated = len(lines) - len(unique)
    assert repeated <= 100, f"{repeated} lines repeated: more than what the kill could have left unsaved"
    assert len(list(out.parent.glob("events.jsonl.*"))) >= 3


# ---------------------------------------------------------------------------------------------- syslog to rsyslogd


@pytest.fixture(params=["tcp", "tls"])
def receiver(request, tmp_path):
    tls = request.param == "tls"
    try:
        rsyslogd_path(tls)
    except RsyslogUnavailable as missing:
        pytest.skip(str(missing))
    pki: tuple[Path, Path, Path] | None = None
    if tls:
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1")
        folder = tmp_path / "pki"
        folder.mkdir()
        pki = (folder / "ca.pem", folder / "cert.pem", folder / "key.pem")
        ca.cert_pem.write_to_path(str(pki[0]))
        cert.cert_chain_pems[0].write_to_path(str(pki[1]))
        cert.private_key_pem.write_to_path(str(pki[2]))
    with RsyslogReceiver(tmp_path / "rsyslog", tls=pki) as running:
        running.scheme = "syslog+tls" if tls else "syslog+tcp"
        running.ca = pki[0] if pki else None
        yield running


def test_syslog_receivers_get_every_event_in_order_though_away_for_a_while(receiver, tmp_path) -> None:
    """Over TCP and over TLS: rsyslogd is stopped while events arrive and started again; every event reaches it,
    in store order. What was sent in the seconds before the receiver went away is sent again (it may have
    been lost in flight), so a receiver may see a few events twice, each time in order from where it resumed."""
    target = f"{receiver.scheme}://127.0.0.1:{receiver.port}"
    extra = ["--forward", target] + (["--forward-ca", str(receiver.ca)] if receiver.ca else [])

    def received() -> list[dict]:
        return [json.loads(message.msg) for message in receiver.messages()]

    feeds = tmp_path / "feeds"
    feeds.mkdir()
    with RunningCollector(f"sqlite:///{tmp_path / 'db.sqlite'}", feeds, *extra) as collector:
        ship(collector.address, [make_event(n) for n in range(100)])
        wait_until(lambda: len(received()) >= 100, "the first events at rsyslogd")
        receiver.stop()
        ship(collector.address, [make_event(n) for n in range(100, 200)], first_batch=10)
        ship(collector.address, [make_event(n, count=2) for n in range(0, 10)], first_batch=20)
        time.sleep(1.0)  # the forwarder finds the receiver away, and backs off
        receiver.start()
        ship(collector.address, [make_event(n) for n in range(200, 250)], first_batch=30)
        wait_until(lambda: len(first_occurrences(received())) >= 260, "every event at rsyslogd", seconds=60)
    messages = receiver.messages()
    lines = [json.loads(message.msg) for message in messages]
    unique = first_occurrences(lines)
    assert [line["seq"] for line in unique] == list(range(1, 261))
    expected = ([(f"{n:032x}", 1) for n in range(200)] + [(f"{n:032x}", 2) for n in range(10)]
                + [(f"{n:032x}", 1) for n in range(200, 250)])
    assert emissions(unique) == expected
    # Each run of what arrived is in order: a repeat only goes back to where the forwarder resumed.
    seqs = [line["seq"] for line in lines]
    assert sum(1 for a, b in zip(seqs, seqs[1:]) if b <= a) <= 2
    first = messages[0]
    assert (first.severity, first.app_name, first.msgid) == (2, "dnswatch", "gtf_suspicious_dns_query")
    assert first.structured_data.startswith(f'[dnswatch@32473 id="{0:032x}" count="1"')


def test_known_fields_in_any_order_are_put_in_order_with_their_values_as_stored() -> None:
    stored = make_event(4, domains=("caf\u00e9.example",))
    shuffled = dict(reversed(list(stored.items())))
    shuffled["record"] = dict(reversed(list(stored["record"].items())))
    body = json.dumps(shuffled, separators=(",", ":"), ensure_ascii=True)  # no line break, escapes kept
    line = forwarded_event(body, 7, "2026-12-03T17:00:00.000Z").line
    assert list(json.loads(line)) == [*EVENT_FIELDS, *FORWARD_FIELDS]
    assert list(json.loads(line)["record"]) == list(RECORD_FIELDS)
    assert b'"caf\\u00e9.example"' in line  # the value's text as stored, not decoded and encoded again
    # An event's own field named as one of the forwarder's gives way to it.
    own = forwarded_event(json.dumps({**stored, "seq": "mine"}), 8, "2026-12-03T17:00:00.000Z").line
    assert json.loads(own)["seq"] == 8 and list(json.loads(own))[-2:] == list(FORWARD_FIELDS)


def test_an_older_agents_event_keeps_its_order_without_the_fields_added_since() -> None:
    stored = make_event(2)
    stored.pop("mitigations", None)
    stored["record"].pop("answers")
    line = json.loads(forwarded_event(json.dumps(stored), 5, "2026-12-03T17:00:00.000Z").line)
    assert list(line) == [name for name in EVENT_FIELDS if name in stored] + list(FORWARD_FIELDS)
    assert list(line["record"]) == [name for name in RECORD_FIELDS if name != "answers"]


# ---------------------------------------------------------------------------------------------- events left out


def test_excepted_and_dismissed_events_are_not_forwarded_when_emitted(tmp_path) -> None:
    """A real collector with an AlertException in its folder and a file target: events the exception matches
    and an event dismissed through the CLI (and its growth, which stays dismissed) never reach the file;
    removing the exception afterwards does not send the events it hid, while a later emission is forwarded."""
    from tests.collector.test_alerting_cli import exception
    from tests.collector.test_events_cli import dnswatch

    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "ci.yaml").write_text(exception("ci", "source_namespace = ci"))
    out = tmp_path / "siem" / "events.jsonl"
    shop = [make_event(n, namespace="shop") for n in range(4)]
    ci = [make_event(n, namespace="ci") for n in range(4, 7)]
    with RunningCollector(f"sqlite:///{tmp_path / 'db.sqlite'}", folder, "--forward", f"file:{out}") as running:
        def exception_active() -> bool:
            shown = dnswatch(running.address, "exceptions", "get", "ci", "-o", "json")
            return shown.returncode == 0 and json.loads(shown.stdout)["status"]["active"] is True

        wait_until(exception_active, "the exception loaded")
        ship(running.address, shop + ci)
        wait_until(lambda: len(file_lines(out)) >= len(shop), "the shop events in the file")
        dismissed = dnswatch(running.address, "events", "dismiss", shop[0]["id"])
        assert dismissed.returncode == 0, dismissed.stderr
        (folder / "ci.yaml").unlink()
        wait_until(lambda: dnswatch(running.address, "exceptions", "get", "ci").returncode != 0,
                   "the exception removed")
        # After both: the dismissed event grows, an event hidden before grows, and one more arrives last.
        ship(running.address, [make_event(0, namespace="shop", count=5), make_event(4, namespace="ci", count=2)],
             first_batch=10)
        ship(running.address, [make_event(9, namespace="shop")], first_batch=20)
        wait_until(lambda: any(line["id"] == f"{9:032x}" for line in file_lines(out)), "the last event")
    assert emissions(file_lines(out)) == [(e["id"], 1) for e in shop] + [(f"{4:032x}", 2), (f"{9:032x}", 1)]
