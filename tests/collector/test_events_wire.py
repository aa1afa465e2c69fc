"""The Watch responses the Events service joins by hand from encoded parts are the messages protobuf would
encode: each event's encoding (encode_watched_event), a page of them with its token, compressed or not, and a
single event; and a client reads compressed pages back, refusing damaged or oversized ones."""

from __future__ import annotations

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.shell.batchwire import BatchWire, events_elements
from collector.shell.grpc_events import _as_single, _page, _token_field, encode_watched_event
from collector.store.eventqueries import EventChange
from collector.store.eventrows import json_event_row
from dnswatch.pbconvert.events import BadWatchResponse, decompressed_events
from dnswatch_pb.v1 import events_pb2

texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)
# Bodies across the varint's one-, two- and three-byte lengths (127 and 16383 bytes are the edges).
bodies = st.one_of(texts, st.integers(100, 20_000).map(lambda n: "é" * (n // 2) + "x" * (n % 2)))


def change(seq: int, event_id: str, body: str | bytes) -> EventChange:
    return EventChange(seq, event_id, body, 0.0, "", "", "", "", "")


@settings(max_examples=300, deadline=None)
@given(event_id=texts, body=bodies, as_bytes=st.booleans())
def test_an_event_encodes_as_protobuf_encodes_it(event_id, body, as_bytes) -> None:
    expected = events_pb2.EventWatchResponse(events=[events_pb2.Event(id=event_id, json=body)]).SerializeToString()
    assert encode_watched_event(change(1, event_id, body.encode() if as_bytes else body)) == expected


@settings(max_examples=100, deadline=None)
@given(events=st.lists(st.tuples(texts, bodies), max_size=8), seq=st.integers(0, 2**62))
def test_a_page_and_a_single_event_parse_as_the_messages_they_stand_for(events, seq) -> None:
    encoded = [encode_watched_event(change(n, i, b)) for n, (i, b) in enumerate(events)]
    page = events_pb2.EventWatchResponse.FromString(_page(seq, encoded))
    assert page.resume_token == events_pb2.EventWatchResponse.FromString(_token_field(seq)).resume_token
    assert [(e.id, e.json) for e in page.events] == events
    assert not page.HasField("event")
    for one, (event_id, body) in zip(encoded, events):
        single = events_pb2.EventWatchResponse.FromString(_as_single(one) + _token_field(seq))
        assert (single.event.id, single.event.json, list(single.events)) == (event_id, body, [])


@settings(max_examples=100, deadline=None)
@given(events=st.lists(st.tuples(texts, bodies), max_size=8), seq=st.integers(0, 2**62))
def test_a_compressed_page_holds_the_same_events(events, seq) -> None:
    encoded = [encode_watched_event(change(n, i, b)) for n, (i, b) in enumerate(events)]
    page = events_pb2.EventWatchResponse.FromString(_page(seq, encoded, compress=True))
    assert page.resume_token == events_pb2.EventWatchResponse.FromString(_token_field(seq)).resume_token
    assert not page.events and not page.HasField("event")
    assert bool(page.compressed_events) == bool(events)  # a page of no events is a bookmark
    assert [(e.id, e.json) for e in decompressed_events(page)] == events


def test_damaged_or_oversized_compressed_events_are_refused() -> None:
    page = events_pb2.EventWatchResponse.FromString(
        _page(5, [encode_watched_event(change(1, "a", "x" * 5000))], compress=True))
    assert len(decompressed_events(page, max_bytes=6000)) == 1
    with pytest.raises(BadWatchResponse, match="at most 4000"):
        decompressed_events(page, max_bytes=4000)
    for damaged in (page.compressed_events[:-3], b"not zstd", page.compressed_events[:4] + bytes(20)):
        with pytest.raises(BadWatchResponse, match="compressed_events"):
            decompressed_events(events_pb2.EventWatchResponse(compressed_events=damaged))
    unsized = zstandard.ZstdCompressor(write_content_size=False).compress(b"\x1a\x00")
    with pytest.raises(BadWatchResponse, match="size in its header"):
        decompressed_events(events_pb2.EventWatchResponse(compressed_events=unsized))
    not_a_response = zstandard.ZstdCompressor().compress(b"\xff\xff\xff")
    with pytest.raises(BadWatchResponse, match="compressed_events"):
        decompressed_events(events_pb2.EventWatchResponse(compressed_events=not_a_response))


# -- events sent on as the agent sent them ----------------------------------------------------------------------

events_of = st.lists(st.tuples(texts, bodies), max_size=6)
# Fields a newer agent might add, which a cut must skip: a varint, a fixed64, a fixed32 and a string, some
# numbered past 15 (a two-byte tag).
unknown_fields = st.lists(st.sampled_from([b"\x20\x96\x01", b"\x29" + bytes(8), b"\x35" + bytes(4),
                                           b"\xfa\x01\x03abc", b"\x80\x02\x01"]), max_size=3)


def batch_bytes(events, batch_id: int, node: str, unknown: list[bytes]) -> bytes:
    batch = events_pb2.EventBatch(batch_id=batch_id, node=node,
                                  events=[events_pb2.Event(id=i, json=b) for i, b in events])
    return b"".join(unknown) + batch.SerializeToString() + b"".join(unknown)


@settings(max_examples=200, deadline=None)
@given(events=events_of, batch_id=st.integers(0, 2**64 - 1), node=texts, unknown=unknown_fields)
def test_a_batch_is_cut_into_its_events_as_protobuf_encodes_them(events, batch_id, node, unknown) -> None:
    cut = events_elements(batch_bytes(events, batch_id, node, unknown))
    assert cut == [events_pb2.EventWatchResponse(events=[events_pb2.Event(id=i, json=b)]).SerializeToString()
                   for i, b in events]


@settings(max_examples=100, deadline=None)
@given(events=events_of.filter(bool), data=st.data())
def test_a_batch_that_ends_inside_a_field_is_not_cut(events, data) -> None:
    raw = batch_bytes(events, 7, "node-a", [])
    last = events_pb2.EventWatchResponse(events=[events_pb2.Event(id=events[-1][0], json=events[-1][1])])
    inside_the_last_event = data.draw(st.integers(len(raw) - last.ByteSize() + 1, len(raw) - 1))
    assert events_elements(raw[:inside_the_last_event]) is None


def test_a_watched_event_is_the_agents_own_encoding_when_it_is_exact() -> None:
    body = '{"id":"e1","time":"2026-01-01T00:00:00Z"}'
    raw = batch_bytes([("e0", body.replace("e1", "e0")), ("e1", body)], 3, "node-a", [b"\x20\x01"])
    wire = BatchWire(raw)
    row = json_event_row(body, (wire, 1))
    encoded = encode_watched_event(row)
    assert encoded is wire.element(1)  # the cut itself, not an encoding made again
    assert encoded == encode_watched_event(change(1, "e1", body))


def test_an_event_with_fields_of_its_own_is_encoded_again() -> None:
    """An Event holding a field the store does not keep is not sent on: a watch gets what List would give."""
    body = '{"id":"e1","time":"2026-01-01T00:00:00Z"}'
    event = events_pb2.Event(id="e1", json=body).SerializeToString() + b"\x18\x05"  # an unknown field 3
    raw = b"\x1a" + bytes([len(event)]) + event
    row = json_event_row(body, (BatchWire(raw), 0))
    assert encode_watched_event(row) == encode_watched_event(change(1, "e1", body))
    assert encode_watched_event(row) != BatchWire(raw).element(0)
