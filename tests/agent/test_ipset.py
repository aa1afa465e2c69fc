"""IP sets (dnswatch.feeds.ipset): lookups of raw A/AAAA rdata, most specific entry first."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dnswatch.feeds.lines import FeedError, parse_ip_lines
from dnswatch.feeds.ipset import IPSet, _ipv4_ints


def raw(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


FEED = IPSet.from_entries(
    [
        "10.0.0.0/8",
        "10.1.0.0/16",
        "10.1.2.0/24",
        "192.0.2.7/32",
        "198.51.100.0/31",
        "2001:db8::/32",
        "2001:db8:1::/48",
        "2001:db8:1::5/128",
        "203.0.113.0/24",
    ]
)


@pytest.mark.parametrize(
    ("address", "entry"),
    [
        # IPv4: CIDR boundaries, most specific first
        ("10.0.0.0", "10.0.0.0/8"),
        ("10.255.255.255", "10.0.0.0/8"),
        ("11.0.0.0", None),
        ("9.255.255.255", None),
        ("10.1.0.0", "10.1.0.0/16"),
        ("10.1.255.255", "10.1.0.0/16"),
        ("10.1.2.0", "10.1.2.0/24"),
        ("10.1.2.255", "10.1.2.0/24"),
        ("10.1.3.0", "10.1.0.0/16"),
        ("192.0.2.7", "192.0.2.7/32"),
        ("192.0.2.6", None),
        ("192.0.2.8", None),
        ("198.51.100.0", "198.51.100.0/31"),
        ("198.51.100.1", "198.51.100.0/31"),
        ("198.51.100.2", None),
        # IPv6
        ("2001:db8::", "2001:db8::/32"),
        ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db8::/32"),
        ("2001:db9::", None),
        ("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", None),
        ("2001:db8:1::", "2001:db8:1::/48"),
        ("2001:db8:1::5", "2001:db8:1::5/128"),
        ("2001:db8:1::6", "2001:db8:1::/48"),
        ("::1", None),
        # IPv4-mapped IPv6 answers match IPv4 entries
        ("::ffff:10.1.2.3", "10.1.2.0/24"),
        ("::ffff:192.0.2.7", "192.0.2.7/32"),
        ("::ffff:192.0.2.8", None),
        # ...but the IPv4-compatible form (::a.b.c.d) and NAT64 are other addresses
        ("::10.1.2.3", None),
        ("64:ff9b::10.1.2.3", None),
    ],
)
def test_lookup(address, entry):
    assert FEED.lookup(raw(address)) == entry
    assert (address in FEED) == (entry is not None)


@pytest.mark.parametrize("addr", [b"", b"\x0a", b"\x0a\x01\x02", b"\x0a\x01\x02\x03\x04", b"\x20" * 15, b"\x20" * 17])
def test_rdata_of_the_wrong_size_matches_nothing(addr):
    assert FEED.lookup(addr) is None


def test_len_counts_distinct_networks():
    assert len(FEED) == 9
    assert len(IPSet.from_entries(["192.0.2.7", "192.0.2.7/32", "10.1.2.3/8", "10.0.0.0/8"])) == 2
    assert len(IPSet.from_entries([])) == 0


def test_contains_takes_text_only():
    assert "10.1.2.3" in FEED
    assert "not an address" not in FEED
    assert raw("10.1.2.3") not in FEED  # bytes go through lookup()
    assert 167837955 not in FEED


def test_entries_in_any_form_ip_entry_accepts():
    ipset = IPSet.from_entries(["10.1.2.3/8", "2001:DB8::1", "::ffff:192.0.2.0/120", "192.0.2.200/32"])
    assert ipset.lookup(raw("10.200.0.1")) == "10.0.0.0/8"
    assert ipset.lookup(raw("2001:db8::1")) == "2001:db8::1/128"
    assert ipset.lookup(raw("192.0.2.9")) == "192.0.2.0/24"
    assert ipset.lookup(raw("192.0.2.200")) == "192.0.2.200/32"


def test_a_mapped_address_also_matches_ipv6_entries_that_cover_it():
    assert IPSet.from_entries(["::/0"]).lookup(raw("::ffff:1.2.3.4")) == "::/0"
    assert IPSet.from_entries(["::/0", "1.2.3.0/24"]).lookup(raw("::ffff:1.2.3.4")) == "1.2.3.0/24"


def test_default_routes_match_everything_of_their_family():
    ipset = IPSet.from_entries(["0.0.0.0/0", "::/0"])
    assert ipset.lookup(raw("255.255.255.255")) == "0.0.0.0/0"
    assert ipset.lookup(raw("0.0.0.0")) == "0.0.0.0/0"
    assert ipset.lookup(raw("ffff::1")) == "::/0"
    assert ipset.lookup(raw("::ffff:1.2.3.4")) == "0.0.0.0/0"


@pytest.mark.parametrize("entry", ["evil.com", "256.0.0.1", "010.0.0.1", "1.2.3.4/33", "", "0.0.0.0 evil.com"])
def test_an_invalid_entry_is_a_feed_error_naming_it(entry):
    with pytest.raises(FeedError, match="neither an IP address nor a CIDR"):
        IPSet.from_entries(["192.0.2.1", entry])


def test_built_from_a_parsed_feed():
    parsed = parse_ip_lines(b"# feed\n192.0.2.7\n10.0.0.0/8\n2001:db8::/32\n::ffff:198.51.100.1\n")
    ipset = IPSet.from_entries(parsed.entries)
    assert len(ipset) == len(parsed.entries) == 4
    assert ipset.lookup(raw("198.51.100.1")) == "198.51.100.1/32"
    assert ipset.lookup(raw("::ffff:198.51.100.1")) == "198.51.100.1/32"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=50))
def test_bulk_ipv4_conversion_agrees_with_ipaddress(values):
    texts = [str(ipaddress.IPv4Address(value)) for value in values]
    assert _ipv4_ints(texts) == values
    assert _ipv4_ints([text + "/32" for text in texts]) == values


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.builds(lambda a, n: f"{ipaddress.IPv4Address(a)}/{n}", st.integers(0, 2**32 - 1), st.integers(0, 32)),
            st.builds(lambda a, n: f"{ipaddress.IPv6Address(a)}/{n}", st.integers(0, 2**128 - 1), st.integers(0, 128)),
        ),
        max_size=12,
    ),
    st.lists(st.one_of(st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address), st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address)), max_size=12),
)
def test_lookup_agrees_with_ipaddress(entries, addresses):
    networks = [ipaddress.ip_network(entry, strict=False) for entry in entries]
    ipset = IPSet.from_entries(entries)
    for address in addresses:
        containing = [net for net in networks if net.version == address.version and address in net]
        best = max(containing, key=lambda net: net.prefixlen, default=None)
        assert ipset.lookup(address.packed) == (str(best) if best else None)
