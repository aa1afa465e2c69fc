"""The agent's /metrics, /healthz and /readyz (docs/operations.md): a real HTTP server on 127.0.0.1 port 0, scraped with
httpx and read back with prometheus_client's own parser; the numbers come from a real replay, a real outbox
and spool, and real held feeds."""

from __future__ import annotations

import argparse
import errno
import json
import logging
import socket
import threading
from pathlib import Path

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.core.attribution import PodDirectory
from agent.core.eventpipeline import EventPipeline
from agent.core.heldfeeds import HeldFeed
from agent.core.outbox import Outbox, queued_event
from agent.shell import feeds as feed_loading
from dnswatch.logfmt import JsonFormatter, configure_logging
from agent.shell.metrics import AgentMetrics, InterfaceCounters
from dnswatch import metricsserver
from dnswatch.metricsserver import listen_failure, metrics_address, serve_metrics
from agent.shell.replay import replay
from agent.shell.shipper import EventShipper, ShipperSettings
from agent.shell.spool import Spool

PCAPS = Path(__file__).resolve().parents[2] / "pcaps"


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics as {(name, sorted labels): value}."""
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


@pytest.fixture
def metrics():
    return AgentMetrics(node="node-1")


@pytest.fixture
def server(metrics):
    with serve_metrics(metrics.registry, 0, host="127.0.0.1") as running:
        yield running


def demo_replay():
    loaded = feed_loading.load_manifest(PCAPS / "demo-feeds.yaml")
    matcher = feed_loading.build_matcher(loaded)
    pods = PodDirectory.from_pod_list(json.loads((PCAPS / "demo-pods.json").read_text()))
    pipeline = EventPipeline(node="node-1", pods=pods)
    events: list[dict] = []
    stats = replay([PCAPS / "demo.pcapng"], matcher, pipeline, frozenset({53}), events.append)
    return stats, events


def test_replay_counters_are_the_replays_own_totals(metrics, server):
    stats, events = demo_replay()
    assert stats.packets and stats.dns_messages and stats.events
    metrics.observe_replay_stats(stats)
    samples = scrape(server.port)
    assert samples[("dnswatch_agent_packets_total", ())] == stats.packets
    assert samples[("dnswatch_agent_dns_messages_total", ())] == stats.dns_messages
    assert samples[("dnswatch_agent_malformed_messages_total", ())] == stats.malformed
    assert samples[("dnswatch_agent_matched_messages_total", ())] == stats.matched_messages
    assert samples[("dnswatch_agent_events_emitted_total", ())] == stats.events == len(events)
    for counter, value in stats.decode.items():
        assert samples[("dnswatch_agent_decoder_total", (("counter", counter),))] == value
    assert samples[("dnswatch_agent_build_info", (("node", "node-1"), ("version", "0.1.0")))] == 1
    # The same totals observed again change nothing: observe_* takes totals, never increments.
    metrics.observe_replay_stats(stats)
    assert scrape(server.port)[("dnswatch_agent_packets_total", ())] == stats.packets


def test_a_live_run_hands_its_totals_one_by_one(metrics, server):
    metrics.observe_pipeline(packets=10, dns_messages=9, malformed=1, matched_messages=2, events=1,
                             decode={"non_dns": 1})
    samples = scrape(server.port)
    assert samples[("dnswatch_agent_dns_messages_total", ())] == 9
    assert samples[("dnswatch_agent_decoder_total", (("counter", "non_dns"),))] == 1


def test_kernel_counters_per_interface_and_a_vanished_interface_ends_its_series(metrics, server):
    metrics.observe_interface("cali1", packets=120, drops=0)
    metrics.observe_interface("veth7", InterfaceCounters(packets=5000, drops=37))
    samples = scrape(server.port)
    assert samples[("dnswatch_agent_interface_packets_total", (("interface", "cali1"),))] == 120
    assert samples[("dnswatch_agent_kernel_drops_total", (("interface", "cali1"),))] == 0
    assert samples[("dnswatch_agent_kernel_drops_total", (("interface", "veth7"),))] == 37
    assert samples[("dnswatch_agent_capture_interfaces", ())] == 2
    metrics.forget_interface("veth7")
    samples = scrape(server.port)
    assert ("dnswatch_agent_kernel_drops_total", (("interface", "veth7"),)) not in samples
    assert samples[("dnswatch_agent_capture_interfaces", ())] == 1
    metrics.set_interfaces({"lxc9": InterfaceCounters(1, 1)})
    samples = scrape(server.port)
    assert samples[("dnswatch_agent_kernel_drops_total", (("interface", "lxc9"),))] == 1
    assert ("dnswatch_agent_kernel_drops_total", (("interface", "cali1"),)) not in samples


def test_shipping_counters_and_queue_depths_from_a_real_outbox_and_spool(metrics, server, tmp_path):
    outbox = Outbox(max_events=3, max_bytes=1_000_000)
    for n in range(5):  # two over the bound: dropped
        outbox.offer(queued_event(f"e{n}", json.dumps({"id": f"e{n}"})))
    outbox.offer(queued_event("e4", json.dumps({"id": "e4", "record": {"count": 2}})))  # replaces e4
    batch = outbox.next_batch(max_events=2, max_bytes=1_000_000)
    outbox.ack(batch.batch_id)
    outbox.next_batch(max_events=1, max_bytes=1_000_000)
    spool = Spool.open(tmp_path / "spool", max_bytes=1 << 20)
    try:
        spool.append([{"id": "e3"}, {"id": "e4"}])
        metrics.observe_outbox(outbox.stats())
        metrics.observe_spool(spool.stats())
        metrics.observe_sent(3)
        metrics.set_collector_connected("events", True)
        metrics.set_collector_connected("feeds", False)
        stats, spooled = outbox.stats(), spool.stats()
    finally:
        spool.close()
    samples = scrape(server.port)
    assert samples[("dnswatch_agent_events_sent_total", ())] == 3
    assert samples[("dnswatch_agent_events_acknowledged_total", ())] == stats.acked == 2
    assert samples[("dnswatch_agent_events_dropped_total", (("where", "outbox"),))] == stats.dropped == 2
    assert samples[("dnswatch_agent_events_dropped_total", (("where", "spool"),))] == 0
    assert samples[("dnswatch_agent_events_replaced_total", ())] == stats.replaced
    assert samples[("dnswatch_agent_outbox_events", (("state", "queued"),))] == stats.queued
    assert samples[("dnswatch_agent_outbox_events", (("state", "in_flight"),))] == stats.in_flight == 1
    assert samples[("dnswatch_agent_outbox_bytes", (("state", "in_flight"),))] == stats.in_flight_bytes
    assert samples[("dnswatch_agent_spool_events", ())] == spooled.events == 2
    assert samples[("dnswatch_agent_spool_bytes", ())] == spooled.file_bytes
    assert samples[("dnswatch_agent_collector_connected", (("stream", "events"),))] == 1
    assert samples[("dnswatch_agent_collector_connected", (("stream", "feeds"),))] == 0
    # The outbox's totals arriving later keep the shipper's count of events sent.
    metrics.observe_outbox(outbox.stats())
    assert scrape(server.port)[("dnswatch_agent_events_sent_total", ())] == 3


def test_shipper_stats_from_a_real_shipper_whose_collector_is_unreachable(metrics, server, tmp_path):
    with socket.socket() as closed:  # a port nobody listens on: the shipper keeps trying, holding the events
        closed.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{closed.getsockname()[1]}"
    settings = ShipperSettings(node="node-1", spool_dir=tmp_path / "spool", backoff_min=0.05, backoff_max=0.1)
    shipper = EventShipper(lambda: grpc.insecure_channel(address), settings)
    try:
        _, events = demo_replay()
        for event in events:
            shipper.offer(event)
        assert not shipper.flush(timeout=0.3)
        stats = shipper.stats()
    finally:
        shipper.close(timeout=5)
    metrics.observe_shipper(stats)
    samples = scrape(server.port)
    assert stats.queued + stats.in_flight == len({event["id"] for event in events})
    assert samples[("dnswatch_agent_outbox_events", (("state", "queued"),))] == stats.queued
    assert samples[("dnswatch_agent_outbox_events", (("state", "in_flight"),))] == stats.in_flight
    assert samples[("dnswatch_agent_events_acknowledged_total", ())] == stats.acked == 0
    assert samples[("dnswatch_agent_events_dropped_total", (("where", "outbox"),))] == stats.dropped
    assert samples[("dnswatch_agent_events_dropped_total", (("where", "spool"),))] == stats.spool_dropped
    assert samples[("dnswatch_agent_events_replaced_total", ())] == stats.replaced
    assert samples[("dnswatch_agent_events_recovered_total", ())] == stats.recovered
    assert samples[("dnswatch_agent_event_streams_opened_total", ())] == stats.streams
    assert samples[("dnswatch_agent_spool_events", ())] == stats.spooled
    assert samples[("dnswatch_agent_collector_connected", (("stream", "events"),))] == 0
    # What a ShipperStats does not know is not shown as a 0 it never counted.
    assert ("dnswatch_agent_events_sent_total", ()) not in samples
    assert ("dnswatch_agent_outbox_bytes", (("state", "queued"),)) not in samples


def test_feed_versions_and_sizes_follow_the_feeds_held(metrics, server):
    metrics.set_feeds([HeldFeed("bad-ips", "IPSet", 4, ips=frozenset({"192.0.2.1", "2001:db8::1"})),
                       HeldFeed("c2", "IPSet", 1, ips=frozenset({"198.51.100.7"}))])
    metrics.set_pods(17)
    samples = scrape(server.port)
    assert samples[("dnswatch_agent_feed_version", (("content", "IPSet"), ("feed", "bad-ips")))] == 4
    assert samples[("dnswatch_agent_feed_entries", (("content", "IPSet"), ("feed", "bad-ips")))] == 2
    assert samples[("dnswatch_agent_feed_entries", (("content", "IPSet"), ("feed", "c2")))] == 1
    assert samples[("dnswatch_agent_feeds", ())] == 2
    assert samples[("dnswatch_agent_pods", ())] == 17
    metrics.set_feeds([HeldFeed("c2", "IPSet", 2, ips=frozenset())])
    samples = scrape(server.port)
    assert ("dnswatch_agent_feed_version", (("content", "IPSet"), ("feed", "bad-ips"))) not in samples
    assert samples[("dnswatch_agent_feed_version", (("content", "IPSet"), ("feed", "c2")))] == 2


def test_process_series_are_there_for_the_cpu_figure(metrics, server):
    assert ("process_cpu_seconds_total", ()) in scrape(server.port)


def test_two_agents_in_one_process_do_not_share_counters(server, metrics):
    other = AgentMetrics(node="node-2")
    other.observe_interface("cali1", packets=1, drops=1)
    with serve_metrics(other.registry, 0, host="127.0.0.1") as second:
        assert ("dnswatch_agent_kernel_drops_total", (("interface", "cali1"),)) in scrape(second.port)
        assert ("dnswatch_agent_kernel_drops_total", (("interface", "cali1"),)) not in scrape(server.port)


def test_probes_answer_from_their_callables():
    alive, ready = threading.Event(), threading.Event()
    alive.set()
    metrics = AgentMetrics()

    def broken() -> bool:
        raise RuntimeError("feed stream state unknown")

    with serve_metrics(metrics.registry, 0, host="127.0.0.1", healthy=alive.is_set, ready=ready.is_set) as server:
        base = f"http://127.0.0.1:{server.port}"
        assert httpx.get(f"{base}/healthz").status_code == 200
        answer = httpx.get(f"{base}/readyz")
        assert (answer.status_code, answer.text) == (503, "not ready\n")
        ready.set()
        assert httpx.get(f"{base}/readyz").status_code == 200
        alive.clear()
        assert httpx.get(f"{base}/healthz").status_code == 503
        assert httpx.get(f"{base}/nothing").status_code == 404
    with serve_metrics(metrics.registry, 0, host="127.0.0.1", ready=broken) as server:
        answer = httpx.get(f"http://127.0.0.1:{server.port}/readyz")
        assert answer.status_code == 503
        assert "RuntimeError: feed stream state unknown" in answer.text
        assert httpx.get(f"http://127.0.0.1:{server.port}/healthz").status_code == 200  # default: alive


def test_the_port_is_freed_on_close_and_a_port_in_use_is_an_oserror():
    metrics = AgentMetrics()
    server = serve_metrics(metrics.registry, 0, host="127.0.0.1")
    port = server.port
    with pytest.raises(OSError):
        serve_metrics(metrics.registry, port, host="127.0.0.1")
    server.close()
    server.close()  # twice is fine
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/metrics")
    with serve_metrics(metrics.registry, port, host="127.0.0.1"):  # the same port again at once
        pass


def test_ipv6_listen_address():
    metrics = AgentMetrics()
    try:
        server = serve_metrics(metrics.registry, 0, host="[::1]")
    except OSError as error:
        pytest.skip(f"no IPv6 loopback here: {error}")
    with server:
        assert httpx.get(f"http://[::1]:{server.port}/healthz").status_code == 200


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_by_default_every_address_ipv4_and_ipv6_on_one_port():
    if not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback here")
    with serve_metrics(AgentMetrics().registry, 0) as server:
        assert server.address == f"[::]:{server.port}"
        assert httpx.get(f"http://127.0.0.1:{server.port}/healthz").status_code == 200
        assert httpx.get(f"http://[::1]:{server.port}/healthz").status_code == 200
        with pytest.raises(OSError) as taken:  # the whole port, for either family
            serve_metrics(AgentMetrics().registry, server.port, host="0.0.0.0")
        assert listen_failure("0.0.0.0", server.port, taken.value) == (
            f"cannot listen on 0.0.0.0:{server.port} (the port is in use: stop what listens there or choose "
            "another --metrics-port)")


def test_an_ipv4_address_is_ipv4_only():
    if not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback here")
    with serve_metrics(AgentMetrics().registry, 0, host="127.0.0.1") as server:
        assert server.address == f"127.0.0.1:{server.port}"
        assert httpx.get(f"http://127.0.0.1:{server.port}/healthz").status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://[::1]:{server.port}/healthz")


def test_without_ipv6_every_address_is_every_ipv4_one(monkeypatch):
    def no_ipv6(self):
        raise OSError(errno.EAFNOSUPPORT, "Address family not supported by protocol")

    monkeypatch.setattr(metricsserver._ThreadingServer6, "server_bind", no_ipv6)
    with serve_metrics(AgentMetrics().registry, 0) as server:
        assert server.address == f"0.0.0.0:{server.port}"
        assert httpx.get(f"http://127.0.0.1:{server.port}/healthz").status_code == 200


@pytest.mark.parametrize(("given", "address"), [("::", "::"), ("[::1]", "::1"), ("0.0.0.0", "0.0.0.0"),
                                                ("127.0.0.1", "127.0.0.1")])
def test_metrics_address_takes_ip_addresses(given, address):
    assert metrics_address(given) == address


def test_metrics_address_refuses_a_name_with_examples():
    with pytest.raises(argparse.ArgumentTypeError, match="not an IP address: 'localhost' .e.g. :: for every"):
        metrics_address("localhost")


# -- structured logs


@pytest.fixture
def root_logging():
    """configure_logging replaces the root logger's handlers: put back pytest's own afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_log_lines_are_one_object_each_with_extra_fields_and_tracebacks(capsys, root_logging):
    logger = logging.getLogger("dnswatch.test.logfmt")
    configure_logging("INFO", "json")
    logger.info("feed %s synced", "c2", extra={"feed": "c2", "entries": 3, "path": object.__name__})
    logger.debug("not shown")
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        logger.exception("pull failed")
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "feed c2 synced" and first["level"] == "INFO"
    assert first["logger"] == "dnswatch.test.logfmt"
    assert (first["feed"], first["entries"], first["path"]) == ("c2", 3, "object")
    assert first["time"].endswith("Z") and first["time"][10] == "T"
    assert second["level"] == "ERROR" and "ValueError: bad\nvalue" in second["exception"]


def test_json_formatter_writes_values_json_cannot_hold_as_text():
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "peer %s", ("10.0.0.1",), None)
    record.peer = {1, 2}.__class__  # a type: not JSON
    line = JsonFormatter().format(record)
    assert json.loads(line)["peer"] == "<class 'set'>"
    assert "\n" not in line


def test_text_is_the_default_and_an_unknown_format_is_refused(capsys, root_logging):
    configure_logging("INFO")
    logging.getLogger("dnswatch.test.logfmt").warning("plain")
    assert "WARNING dnswatch.test.logfmt: plain" in capsys.readouterr().err
    with pytest.raises(ValueError, match="json"):
        configure_logging("INFO", "yaml")


def test_the_loop_progress_gauges_say_when_it_last_came_round(metrics, server):
    assert not any(name.startswith("dnswatch_agent_loop_") for name, _ in scrape(server.port)), \
        "no claim of progress before the loop reports any"
    metrics.set_liveness_timeout(30)
    metrics.observe_loop_progress(1_790_000_000.25)
    samples = scrape(server.port)
    assert samples[("dnswatch_agent_loop_last_progress_timestamp_seconds", ())] == 1_790_000_000.25
    assert samples[("dnswatch_agent_loop_liveness_timeout_seconds", ())] == 30
    metrics.observe_loop_progress(1_790_000_001.5)
    assert scrape(server.port)[("dnswatch_agent_loop_last_progress_timestamp_seconds", ())] == 1_790_000_001.5
