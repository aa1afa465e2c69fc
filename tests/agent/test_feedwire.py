"""Feed sets on the wire (dnswatch/feeds/wire.py): snapshots and deltas round-trip exactly, stay small, and a
delta that does not fit the held set is refused rather than silently applied."""

import random
import zlib
from dataclasses import fields, replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dnswatch.feeds import wire as feedwire
from dnswatch.feeds.domainset import DomainSet
from dnswatch.feeds.wire import WireError

# ------------------------------------------------------------------------------------------------ helpers


def suffix_starts(name: str) -> list[int]:
    starts, position = [], 0
    for label in name.split(".")[:-1]:
        position += len(label) + 1
        starts.append(position)
    return starts


def matches(domains: DomainSet, probes: list[str]) -> list[str | None]:
    return [domains.match(probe.encode(), suffix_starts(probe)) for probe in probes]


def feed_names(count: int, seed: int) -> list[str]:
    """Names as feeds hold them: plain, `*.` wildcards, a few deep ones, some sharing parents."""
    rng = random.Random(seed)
    names = []
    for index in range(count):
        apex = f"{rng.getrandbits(32):08x}.{rng.choice(['com', 'net', 'xn--p1ai', 'example'])}"
        shape = index % 5
        names.append(f"*.{apex}" if shape == 0 else f"a{index}.{apex}" if shape == 1 else apex)
    return names


def probes_for(names: list[str]) -> list[str]:
    """Every entry, its subdomains, its parent and near misses: where the semantics of §2 differ."""
    probes = []
    for name in names:
        bare = name.removeprefix("*.")
        probes += [bare, f"x.{bare}", f"y.x.{bare}", bare.split(".", 1)[1], f"not{bare}"]
    return probes


def table_of(tagged: np.ndarray) -> DomainSet:
    """The DomainSet of tagged hashes given in any order (np.unique is avoided: it is slow in numpy 2.4)."""
    ordered = np.sort(tagged)
    return DomainSet.from_bytes(ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))].astype("<u8").tobytes())


def random_table(count: int, seed: int) -> DomainSet:
    """A DomainSet of about `count` uniformly random plain entries, built without hashing names (fast at 1M)."""
    rng = np.random.default_rng(seed)
    return table_of(rng.integers(0, 2**61, count, dtype=np.uint64) << np.uint64(3) | np.uint64(1))


# ------------------------------------------------------------------------------------- DomainSet wire form


@pytest.mark.parametrize("match_subdomains", [False, True])
def test_to_bytes_from_bytes_keeps_every_match(match_subdomains):
    names = feed_names(3000, seed=1)
    original = DomainSet.from_names(names, match_subdomains=match_subdomains)
    rebuilt = DomainSet.from_bytes(original.to_bytes())
    probes = probes_for(names)
    assert matches(rebuilt, probes) == matches(original, probes)
    assert len(rebuilt) == len(original) == len(set(names))
    assert rebuilt.to_bytes() == original.to_bytes()


def test_to_bytes_is_little_endian_sorted_uint64s():
    domains = DomainSet.from_names(["evil.com", "*.bad.net"])
    values = np.frombuffer(domains.to_bytes(), dtype="<u8")
    assert len(domains.to_bytes()) == 16
    assert list(values) == sorted(values)
    assert sorted(int(v) & 7 for v in values) == [1, 2]  # APEX, WILDCARD


def test_tagged_is_a_read_only_view():
    domains = DomainSet.from_names(["evil.com"])
    view = domains.tagged()
    assert view.dtype == np.uint64 and len(view) == 1
    with pytest.raises(ValueError):
        view[0] = 0


def test_empty_set_round_trips():
    empty = DomainSet.from_names([])
    assert empty.to_bytes() == b""
    assert len(DomainSet.from_bytes(b"")) == 0
    assert len(feedwire.domains_from_snapshot(feedwire.domain_snapshot("f", 1, "", empty))) == 0


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x01" * 7, "8 bytes per entry"),
        (np.array([17, 9], dtype="<u8").tobytes(), "sorted"),
        (np.array([9, 10], dtype="<u8").tobytes(), "one entry per name"),  # same name, two slots
        (np.array([8], dtype="<u8").tobytes(), "without a kind"),
    ],
)
def test_from_bytes_refuses_what_no_domainset_writes(data, reason):
    with pytest.raises(ValueError, match=reason):
        DomainSet.from_bytes(data)


def test_with_changes_equals_the_set_built_from_the_new_names():
    names = feed_names(4000, seed=2)
    rng = random.Random(3)
    new_names = rng.sample(names, len(names) - 40) + feed_names(40, seed=99)
    old, new = DomainSet.from_names(names), DomainSet.from_names(new_names)
    added, removed = feedwire.delta(old, new)
    assert len(added) == len(removed) == 40 * 8
    assert old.with_changes(added, removed).to_bytes() == new.to_bytes()


def test_with_changes_refuses_a_delta_made_for_another_set():
    old = DomainSet.from_names(["a.com", "b.com"])
    other = DomainSet.from_names(["c.com"])
    added, removed = feedwire.delta(other, DomainSet.from_names(["d.com"]))
    with pytest.raises(ValueError, match="does not hold"):
        old.with_changes(added, removed)
    with pytest.raises(ValueError, match="already holds"):
        old.with_changes(DomainSet.from_names(["a.com"], match_subdomains=True).to_bytes(), b"")


def test_a_kind_change_is_one_removal_and_one_addition():
    exact = DomainSet.from_names(["evil.com", "ok.net"])
    wide = DomainSet.from_names(["evil.com", "ok.net"], match_subdomains=True)
    added, removed = feedwire.delta(exact, wide)
    assert len(added) == len(removed) == 16
    changed = exact.with_changes(added, removed)
    assert changed.match(b"x.evil.com", [2]) == "evil.com"
    assert changed.to_bytes() == wide.to_bytes()


# ------------------------------------------------------------------------------------- snapshots and deltas


@pytest.mark.parametrize("match_subdomains", [False, True])
def test_domain_snapshot_round_trip(match_subdomains):
    names = feed_names(3000, seed=4)
    original = DomainSet.from_names(names, match_subdomains=match_subdomains)
    snapshot = feedwire.domain_snapshot("c2", 7, "ab" * 32, original)
    assert (snapshot.name, snapshot.content, snapshot.version, snapshot.encoding) == (
        "c2",
        "DomainNameSet",
        7,
        "GAPS_ZLIB",
    )
    assert snapshot.entries == len(original)
    rebuilt = feedwire.domains_from_snapshot(snapshot)
    probes = probes_for(names)
    assert matches(rebuilt, probes) == matches(original, probes)


def test_domain_delta_of_one_percent_equals_the_new_set():
    names = feed_names(5000, seed=5)
    rng = random.Random(6)
    gone = set(rng.sample(names, 25))
    new_names = [name for name in names if name not in gone] + feed_names(25, seed=77)
    old, new = DomainSet.from_names(names), DomainSet.from_names(new_names)
    change = feedwire.domain_delta("c2", 1, 2, "", old, new)
    applied = feedwire.apply_domain_delta(old, change)
    assert applied.to_bytes() == new.to_bytes()
    probes = probes_for(names + new_names)
    assert matches(applied, probes) == matches(new, probes)
    assert (change.from_version, change.to_version, change.entries) == (1, 2, len(new))


def test_a_delta_applied_to_another_set_is_refused():
    old = DomainSet.from_names(feed_names(500, seed=8))
    new = DomainSet.from_names(feed_names(500, seed=8)[10:] + ["fresh.example"])
    change = feedwire.domain_delta("c2", 1, 2, "", old, new)
    wrong_base = DomainSet.from_names(feed_names(500, seed=9))  # same size, other names: positions still fit
    with pytest.raises(WireError, match="differs|holds"):
        feedwire.apply_domain_delta(wrong_base, change)
    too_small = DomainSet.from_names(["only.example"])
    with pytest.raises(WireError, match="outside"):
        feedwire.apply_domain_delta(too_small, change)


def test_a_corrupt_snapshot_is_refused():
    snapshot = feedwire.domain_snapshot("c2", 1, "", DomainSet.from_names(feed_names(200, seed=10)))
    with pytest.raises(WireError):
        feedwire.domains_from_snapshot(replace(snapshot, payload=snapshot.payload[:-5]))
    with pytest.raises(WireError):
        feedwire.domains_from_snapshot(replace(snapshot, payload=b"not zlib"))
    with pytest.raises(WireError, match="differs"):
        feedwire.domains_from_snapshot(replace(snapshot, digest=snapshot.digest ^ 1))
    with pytest.raises(WireError, match="expected a DomainNameSet"):
        feedwire.domains_from_snapshot(replace(snapshot, encoding="LINES"))


def test_a_zlib_bomb_is_refused_before_it_inflates():
    bomb = zlib.compress(bytes(8 * 1000))
    assert len(feedwire.decode_increasing(bomb)) == 1000
    with pytest.raises(ValueError, match="more than 999"):
        feedwire.decode_increasing(bomb, max_values=999)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=2**64 - 1), max_size=300))
def test_encode_increasing_round_trips(values):
    ordered = np.array(sorted(values), dtype=np.uint64)
    assert feedwire.decode_increasing(feedwire.encode_increasing(ordered)).tolist() == ordered.tolist()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.booleans())
def test_arbitrary_bytes_are_refused_cleanly(data, compress):
    """Whatever arrives, the only error is WireError (the shell's cue to ask for a snapshot)."""
    payload = zlib.compress(data) if compress else data
    snapshot = feedwire.domain_snapshot("f", 1, "", DomainSet.from_names(["a.example"]))
    held = DomainSet.from_names(["a.example", "b.example"])
    change = feedwire.domain_delta("f", 1, 2, "", held, DomainSet.from_names(["c.example"]))
    for attempt in (
        lambda: feedwire.domains_from_snapshot(replace(snapshot, payload=payload)),
        lambda: feedwire.apply_domain_delta(held, replace(change, added=payload)),
        lambda: feedwire.apply_domain_delta(held, replace(change, removed=payload)),
        lambda: feedwire.ip_entries_from_snapshot(replace(feedwire.ip_snapshot("i", 1, "", []), payload=data)),
    ):
        try:
            attempt()
        except WireError:
            pass


label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=8)
entry = st.builds(lambda w, a, b: ("*." if w else "") + f"{a}.{b}", st.booleans(), label, label)


@settings(max_examples=60, deadline=None)
@given(st.sets(entry, max_size=60), st.sets(entry, max_size=60), st.booleans())
def test_any_delta_turns_old_into_new(old_names, new_names, match_subdomains):
    old = DomainSet.from_names(sorted(old_names), match_subdomains=match_subdomains)
    new = DomainSet.from_names(sorted(new_names), match_subdomains=not match_subdomains)
    change = feedwire.domain_delta("f", 3, 4, "", old, new)
    assert feedwire.apply_domain_delta(old, change).to_bytes() == new.to_bytes()


# ------------------------------------------------------------------------------------------------- sizes


@pytest.fixture(scope="module")
def million():
    return random_table(1_000_000, seed=11)


@pytest.fixture(scope="module")
def million_snapshot(million):
    return feedwire.domain_snapshot("big", 1, "", million)


def test_a_million_entry_snapshot_fits_the_spec_budget(million, million_snapshot):
    snapshot = million_snapshot
    assert len(million) > 999_000
    assert len(snapshot.payload) <= 16_000_000  # the feed push target (docs/architecture.md)
    assert len(snapshot.payload) <= 5.6 * len(million)  # measured 5.45 bytes per entry; raw would be 8
    assert feedwire.domains_from_snapshot(snapshot).to_bytes() == million.to_bytes()


def test_a_large_snapshot_travels_in_parts_under_the_grpc_message_limit(million, million_snapshot):
    parts = feedwire.snapshot_parts(million_snapshot)
    assert len(parts) == -(-len(million_snapshot.payload) // feedwire.SNAPSHOT_PART_BYTES) > 1
    assert all(len(part.payload) <= 1024 * 1024 for part in parts)
    assert [part.more for part in parts] == [True] * (len(parts) - 1) + [False]
    joined = feedwire.join_snapshot_parts(parts)
    assert joined == million_snapshot
    assert feedwire.domains_from_snapshot(joined).to_bytes() == million.to_bytes()


def test_broken_part_series_are_refused():
    snapshot = feedwire.domain_snapshot("c2", 1, "", DomainSet.from_names(feed_names(3000, seed=15)))
    parts = feedwire.snapshot_parts(snapshot, part_bytes=1000)
    assert len(parts) > 3
    assert feedwire.join_snapshot_parts(parts) == snapshot
    assert feedwire.snapshot_parts(feedwire.ip_snapshot("ips", 1, "", [])) == [feedwire.ip_snapshot("ips", 1, "", [])]
    for broken in (parts[:-1], parts[1:] + parts[:1], [parts[0], replace(parts[1], version=2), *parts[2:]], []):
        with pytest.raises(WireError):
            feedwire.join_snapshot_parts(broken)


def test_a_delta_is_worth_sending_only_when_much_smaller_than_a_snapshot():
    names = feed_names(2000, seed=16)
    old = DomainSet.from_names(names[:500])
    small, large = DomainSet.from_names(names[:520]), DomainSet.from_names(names)  # 20 or 1500 names added
    assert feedwire.delta_worth_sending(
        feedwire.domain_delta("f", 1, 2, "", old, small), feedwire.domain_snapshot("f", 2, "", small)
    )
    assert not feedwire.delta_worth_sending(
        feedwire.domain_delta("f", 1, 2, "", old, large), feedwire.domain_snapshot("f", 2, "", large)
    )


def test_a_one_percent_delta_costs_under_one_percent_of_the_snapshot(million, million_snapshot):
    snapshot = million_snapshot
    table = million.tagged()
    rng = np.random.default_rng(12)
    touched = len(table) // 100
    kept = np.delete(table, rng.choice(len(table), touched // 2, replace=False))
    fresh = random_table(touched // 2, seed=13).tagged()
    new = table_of(np.concatenate((kept, fresh)))
    change = feedwire.domain_delta("big", 1, 2, "", million, new)
    size = len(change.added) + len(change.removed)
    assert size <= 0.01 * len(snapshot.payload) + 1024  # 1 % of entries touched: half removed, half added
    assert len(change.removed) < len(change.added) / 3  # removals travel as small positions, not hashes
    assert feedwire.apply_domain_delta(million, change).to_bytes() == new.to_bytes()


def test_replacing_one_percent_stays_within_the_spec_budget(million):
    table = million.tagged()
    touched = len(table) // 100
    kept = table[touched:]
    new = table_of(np.concatenate((kept, random_table(touched, seed=14).tagged())))
    change = feedwire.domain_delta("big", 1, 2, "", million, new)
    # 1 % of the 16 MB budget (docs/architecture.md)
    assert len(change.added) + len(change.removed) <= 0.01 * 16_000_000


# ----------------------------------------------------------------------------------------------------- IPSet


IP_ENTRIES = ["192.0.2.7/32", "198.51.100.0/24", "2001:db8::/32", "10.0.0.0/8", "203.0.113.9/32"]


def test_ip_snapshot_round_trip():
    snapshot = feedwire.ip_snapshot("ips", 3, "", IP_ENTRIES + ["10.0.0.0/8"])
    assert snapshot.payload.decode().splitlines() == sorted(set(IP_ENTRIES))
    assert (snapshot.entries, snapshot.encoding, snapshot.content) == (5, "LINES", "IPSet")
    assert feedwire.ip_entries_from_snapshot(snapshot) == frozenset(IP_ENTRIES)


def test_ip_delta_round_trip_and_refusal():
    new = IP_ENTRIES[1:] + ["100.64.0.0/10"]
    change = feedwire.ip_delta("ips", 3, 4, "", IP_ENTRIES, new)
    assert change.added == b"100.64.0.0/10\n" and change.removed == b"192.0.2.7/32\n"
    assert feedwire.apply_ip_delta(frozenset(IP_ENTRIES), change) == frozenset(new)
    with pytest.raises(WireError, match="not held"):
        feedwire.apply_ip_delta(frozenset(new), change)
    with pytest.raises(WireError, match="differs"):
        feedwire.apply_ip_delta(frozenset(IP_ENTRIES) | {"1.1.1.1/32"}, change)


def test_empty_ip_set():
    snapshot = feedwire.ip_snapshot("ips", 1, "", [])
    assert snapshot.payload == b"" and feedwire.ip_entries_from_snapshot(snapshot) == frozenset()


# ---------------------------------------------------------------------------------- the contract they mirror


@pytest.mark.parametrize(
    ("dataclass", "message"), [(feedwire.FeedSnapshot, "FeedSnapshot"), (feedwire.FeedDelta, "FeedDelta")]
)
def test_dataclasses_carry_the_fields_of_their_messages(dataclass, message):
    from dnswatch_pb.v1 import distribution_pb2

    proto_fields = {field.name for field in getattr(distribution_pb2, message).DESCRIPTOR.fields}
    assert {field.name for field in fields(dataclass)} == proto_fields


def test_encoding_names_are_those_of_the_proto_enum():
    from dnswatch_pb.v1 import distribution_pb2

    for encoding in feedwire.ENCODINGS.values():
        assert distribution_pb2.SetEncoding.Value(f"SET_ENCODING_{encoding}")
