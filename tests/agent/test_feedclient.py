"""agent/shell/feedclient.py: the feed stream client against a scripted FeedDistribution server (to provoke
what a healthy collector never sends: sets that do not fit, unknown encodings, no `synced`) and against a real
collector (follow a change as a delta, resume after a collector restart from the versions held)."""

from __future__ import annotations

import queue
import random
import socket
import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import replace

import grpc
import pytest

from dnswatch.feeds.domainset import DomainSet
from dnswatch.feeds.formats import parse_feed_body
from dnswatch.feeds.lines import DOMAIN_NAME_SET
from dnswatch.feeds.wire import domain_delta, domain_snapshot, ip_snapshot
from agent.core.heldfeeds import HeldFeeds
from dnswatch.errors import BadInput
from agent.shell.feedclient import FeedStream, FeedStreamSettings
from dnswatch.grpcchannel import PLAINTEXT, connector
from dnswatch.pbconvert.feeds import SYNCED, update_to_pb
from dnswatch_pb.v1 import distribution_pb2, distribution_pb2_grpc, feeds_pb2, feeds_pb2_grpc
from harness.collector import RunningCollector, pulled
from tests.collector.running import BODY_V2, db_url, feed_server, feeds_dir  # noqa: F401

OLD = DomainSet.from_names([f"n{i}.example" for i in range(300)])
NEW = DomainSet.from_names([f"n{i}.example" for i in range(5, 310)])
IPS = ip_snapshot("ips", 1, "", ["192.0.2.1"])
HANG = object()
"""In a script: keep the stream open without sending anything more."""


class ScriptedDistribution(distribution_pb2_grpc.FeedDistributionServicer):
    """Answers the n-th Subscribe with the n-th script (the last one repeats); records each request's `have`."""

    def __init__(self, scripts: list[list]) -> None:
        self.scripts = scripts
        self.haves: list[dict[str, int]] = []
        self.stopping = threading.Event()

    def Subscribe(self, request, context):  # noqa: N802 - the gRPC method's name
        self.haves.append(dict(request.have))
        for item in self.scripts[min(len(self.haves), len(self.scripts)) - 1]:
            if item is HANG:
                self.stopping.wait(30)
                return
            yield item if isinstance(item, distribution_pb2.FeedUpdate) else update_to_pb(item)


@pytest.fixture
def scripted() -> Iterator[tuple[str, ScriptedDistribution]]:
    servicer = ScriptedDistribution([])
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    distribution_pb2_grpc.add_FeedDistributionServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        servicer.stopping.set()
        server.stop(grace=None).wait(5)


PLAIN = connector(PLAINTEXT)  # the test collectors and scripted servers talk plaintext


def held_with(*snapshots) -> HeldFeeds:
    held = HeldFeeds()
    for snapshot in snapshots:
        held.apply(snapshot)
    return held


def test_sync_once_takes_the_initial_state(scripted):
    address, servicer = scripted
    servicer.scripts = [[domain_snapshot("c2", 3, "", OLD), IPS, SYNCED, HANG]]
    held = FeedStream(FeedStreamSettings(address, node="node-1"), connect=PLAIN).sync_once(timeout=10)
    assert held.versions() == {"c2": 3, "ips": 1}
    assert servicer.haves == [{}]


def test_a_delta_that_does_not_fit_brings_a_resubscription_without_that_feed(scripted):
    address, servicer = scripted
    held = held_with(domain_snapshot("c2", 1, "", NEW), IPS)  # not the set the collector's delta starts from
    servicer.scripts = [[domain_delta("c2", 1, 2, "", OLD, NEW), SYNCED, HANG],
                        [domain_snapshot("c2", 2, "", NEW), SYNCED, HANG]]
    FeedStream(FeedStreamSettings(address), held, connect=PLAIN).sync_once(timeout=10)
    assert servicer.haves == [{"c2": 1, "ips": 1}, {"ips": 1}]
    assert held.versions() == {"c2": 2, "ips": 1}


def test_an_unknown_encoding_is_asked_for_again(scripted):
    address, servicer = scripted
    unknown = update_to_pb(domain_snapshot("c2", 1, "", OLD))
    unknown.snapshot.encoding = 99
    servicer.scripts = [[IPS, unknown, SYNCED], [domain_snapshot("c2", 1, "", OLD), SYNCED]]
    held = FeedStream(FeedStreamSettings(address), connect=PLAIN).sync_once(timeout=10)
    assert servicer.haves == [{}, {"ips": 1}]  # the IPSet that arrived first stays held
    assert held.versions() == {"c2": 1, "ips": 1}


def test_a_collector_that_keeps_sending_broken_sets_is_one_line(scripted):
    address, servicer = scripted
    broken = replace(domain_snapshot("c2", 1, "", OLD), digest=1)
    servicer.scripts = [[broken, SYNCED]]
    with pytest.raises(BadInput, match=f"^the collector at {address} keeps sending feeds that cannot be used: "
                                       "feed 'c2' version 1: the set built differs"):
        FeedStream(FeedStreamSettings(address), connect=PLAIN).sync_once(timeout=10)
    assert len(servicer.haves) == 4


def test_no_synced_within_the_timeout_is_one_line(scripted):
    address, servicer = scripted
    servicer.scripts = [[IPS, HANG]]
    with pytest.raises(BadInput, match=rf"^cannot reach the collector at {address}: not synced within 0.5s$"):
        FeedStream(FeedStreamSettings(address), connect=PLAIN).sync_once(timeout=0.5)


def test_a_stream_that_ends_before_synced_is_one_line(scripted):
    address, servicer = scripted
    servicer.scripts = [[IPS]]
    with pytest.raises(BadInput, match="ended the feed stream before the feeds were synced"):
        FeedStream(FeedStreamSettings(address), connect=PLAIN).sync_once(timeout=5)


# ---------------------------------------------------------------------------------------------- follow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Following:
    """`FeedStream.follow` in a thread; each yield's versions land in `versions` (a queue)."""

    def __init__(self, stream: FeedStream) -> None:
        self.stream = stream
        self.versions: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for held in self.stream.follow():
            self.versions.put(held.versions())

    def next(self) -> dict[str, int]:
        return self.versions.get(timeout=15)

    def __enter__(self) -> Following:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stream.stop()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive(), "follow did not stop"


def test_follow_syncs_follows_a_change_and_resumes_after_a_restart(db_url, feeds_dir, feed_server):
    port = free_port()
    stream = FeedStream(FeedStreamSettings(f"127.0.0.1:{port}", backoff_min=0.05, backoff_max=0.2),
                        rng=random.Random(1), connect=PLAIN)
    with RunningCollector(db_url, feeds_dir, "--listen", f"127.0.0.1:{port}") as collector:
        collector.wait_for(pulled("c2", "ips"), "both feeds pulled")
        with Following(stream) as following:
            assert following.next() == {"c2": 1, "ips": 1}

            feed_server.serve("/c2.txt", BODY_V2)
            with collector.channel() as channel:
                feeds_pb2_grpc.FeedsStub(channel).Sync(feeds_pb2.SyncFeedRequest(name="c2"), timeout=10)
            assert following.next() == {"c2": 2, "ips": 1}
            expected = DomainSet.from_names(parse_feed_body(BODY_V2, DOMAIN_NAME_SET).entries)
            assert stream.held.matcher_feeds()[0][0][1].to_bytes() == expected.to_bytes()

            collector.__exit__()  # the collector goes away; the agent keeps its sets and reconnects
            assert stream.held.versions() == {"c2": 2, "ips": 1}
            with RunningCollector(db_url, feeds_dir, "--listen", f"127.0.0.1:{port}"):
                assert following.next() == {"c2": 2, "ips": 1}  # synced again: nothing was missing


def test_stop_ends_follow_while_the_collector_is_away():
    stream = FeedStream(FeedStreamSettings(f"127.0.0.1:{free_port()}", backoff_min=0.05), rng=random.Random(1),
                        connect=PLAIN)
    with Following(stream):
        pass
    assert stream.held.versions() == {}



def test_follow_asks_again_for_a_feed_whose_change_does_not_fit(scripted):
    address, servicer = scripted
    servicer.scripts = [[domain_snapshot("c2", 1, "", NEW), IPS, SYNCED, domain_delta("c2", 1, 2, "", OLD, NEW)],
                        [domain_snapshot("c2", 2, "", NEW), SYNCED, HANG]]
    stream = FeedStream(FeedStreamSettings(address, backoff_min=0.05), rng=random.Random(1), connect=PLAIN)
    with Following(stream) as following:
        assert following.next() == {"c2": 1, "ips": 1}
        assert following.next() == {"c2": 2, "ips": 1}
    assert servicer.haves == [{}, {"ips": 1}]
