"""The feed context fields of distribution.proto between versions: an agent built before them reads a new
collector's stream, and a new agent reads an old collector's messages as "no labels, severity 100".

The previous version of the contract is the current one without the new fields (FeedSnapshot 10-11,
FeedDelta 11-12), built into a pool of its own: what an agent compiled from the previous proto parses with.
"""

from __future__ import annotations

from pathlib import Path

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, duration_pb2, message_factory, timestamp_pb2

from agent.core.heldfeeds import HeldFeeds
from dnswatch.feeds.domainset import DomainSet
from dnswatch.feeds.wire import domain_delta, domain_snapshot, domains_from_snapshot, FeedSnapshot
from dnswatch.pbconvert.feeds import update_from_pb, update_to_pb
from dnswatch_pb.v1 import distribution_pb2, feeds_pb2
from harness.collector import RunningCollector, pulled
from harness.feedserver import FeedServer
from tests.agent.test_replay_feedcontext import C2_BODY, c2_manifest
from tests.collector.running import db_url  # noqa: F401

_NEW_FIELDS = {"FeedSnapshot": {"labels", "severity"}, "FeedDelta": {"labels", "severity"}}


def previous_messages() -> tuple[type, type]:
    """(FeedUpdate, SubscribeRequest) as an agent built from the proto before the context fields has them."""
    pool = descriptor_pool.DescriptorPool()
    for module in (duration_pb2, timestamp_pb2, feeds_pb2):
        pool.Add(_file_proto(module))
    proto = _file_proto(distribution_pb2)
    for message in proto.message_type:
        dropped = _NEW_FIELDS.get(message.name, set())
        if not dropped:
            continue
        kept = [f for f in message.field if f.name not in dropped]
        assert len(kept) == len(message.field) - len(dropped), f"{message.name} lacks a field this test drops"
        del message.field[:]
        message.field.extend(kept)
        nested = [n for n in message.nested_type if n.name != "LabelsEntry"]
        del message.nested_type[:]
        message.nested_type.extend(nested)
        oneofs = [o for o in message.oneof_decl if o.name != "_severity"]  # proto3 `optional`'s synthetic oneof
        del message.oneof_decl[:]
        message.oneof_decl.extend(oneofs)
    pool.Add(proto)
    return (message_factory.GetMessageClass(pool.FindMessageTypeByName("dnswatch.v1.FeedUpdate")),
            message_factory.GetMessageClass(pool.FindMessageTypeByName("dnswatch.v1.SubscribeRequest")))


def _file_proto(module) -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto()
    module.DESCRIPTOR.CopyToProto(proto)
    return proto


OldUpdate, OldRequest = previous_messages()
DOMAINS = DomainSet.from_names([f"n{i}.example" for i in range(50)])
MORE = DomainSet.from_names([f"n{i}.example" for i in range(60)])


def test_the_previous_contract_has_none_of_the_new_fields():
    snapshot = OldUpdate.DESCRIPTOR.fields_by_name["snapshot"].message_type
    assert "labels" not in snapshot.fields_by_name and "severity" not in snapshot.fields_by_name
    assert "labels" in distribution_pb2.FeedSnapshot.DESCRIPTOR.fields_by_name


def test_an_old_agent_reads_a_new_collectors_snapshot_and_delta():
    snapshot = FeedSnapshot(**{**_fields(domain_snapshot("c2", 3, "ab", DOMAINS)), "labels": (("team", "red"),),
                               "severity": 40})
    change = domain_delta("c2", 3, 4, "cd", DOMAINS, MORE)
    for new in (update_to_pb(snapshot), update_to_pb(change)):
        old = OldUpdate.FromString(new.SerializeToString())
        kind = old.WhichOneof("update")
        assert kind == new.WhichOneof("update")
        for field in getattr(new, kind).DESCRIPTOR.fields:
            if field.name not in ("labels", "severity"):
                assert getattr(getattr(old, kind), field.name) == getattr(getattr(new, kind), field.name)


def test_a_new_agent_reads_an_old_collectors_messages_as_no_labels_and_severity_100():
    new = update_to_pb(domain_snapshot("c2", 3, "ab", DOMAINS))
    old = OldUpdate.FromString(new.SerializeToString())  # what an old collector sends: no context fields
    update = update_from_pb(distribution_pb2.FeedUpdate.FromString(old.SerializeToString()))
    assert (update.labels, update.severity) == ((), None)
    held = HeldFeeds()
    held.apply(update)
    [feed] = held.feeds()
    assert (feed.labels, feed.severity) == ((), 100)
    assert held.contexts()["c2"].severity == 100
    old_delta = OldUpdate.FromString(update_to_pb(domain_delta("c2", 3, 4, "cd", DOMAINS, MORE)).SerializeToString())
    held.apply(update_from_pb(distribution_pb2.FeedUpdate.FromString(old_delta.SerializeToString())))
    assert (held.feeds()[0].version, held.feeds()[0].severity) == (4, 100)


def test_an_old_agent_syncs_from_a_real_new_collector(tmp_path: Path, db_url: str):  # noqa: F811
    feeds_dir = tmp_path / "feeds"
    feeds_dir.mkdir()
    with FeedServer() as server:
        server.serve("/c2.txt", C2_BODY)
        (feeds_dir / "c2.yaml").write_text(c2_manifest(server.url("/c2.txt"), 60))
        with RunningCollector(db_url, feeds_dir) as collector:
            collector.wait_for(pulled("c2"), "c2 pulled")
            with grpc.insecure_channel(collector.address) as channel:
                subscribe = channel.unary_stream("/dnswatch.v1.FeedDistribution/Subscribe",
                                                 request_serializer=OldRequest.SerializeToString,
                                                 response_deserializer=OldUpdate.FromString)
                call = subscribe(OldRequest(node="old-agent"), timeout=10)
                messages = []
                for message in call:
                    messages.append(message)
                    if message.WhichOneof("update") == "synced":
                        break
                call.cancel()
    [snapshot, synced] = messages
    assert synced.WhichOneof("update") == "synced"
    # What the old agent decodes is the set itself, checked against the collector's count and digest.
    old = snapshot.snapshot
    domains = domains_from_snapshot(FeedSnapshot(name=old.name, content="DomainNameSet", version=old.version,
                                                 sha256=old.sha256, payload=old.payload, entries=old.entries,
                                                 digest=old.digest, encoding="GAPS_ZLIB"))
    assert len(domains) == 2 and "evil.example" in domains


def _fields(snapshot: FeedSnapshot) -> dict:
    return {name: getattr(snapshot, name) for name in FeedSnapshot.__slots__}
