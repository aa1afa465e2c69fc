"""The Watch responses the Events service joins by hand from encoded parts are the messages protobuf would
encode: each event's encoding (encode_watched_event), a page of them with its token, compressed or not, and a
single event; and a client reads compressed pages back, refusing damaged or oversized ones."""

from __future__ import annotations

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.shell.grpc_events import _as_single, _page, _token_field, encode_watched_event
from collector.store.eventqueries import EventChange
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
