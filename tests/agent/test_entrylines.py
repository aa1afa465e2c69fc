"""EntryLines (dnswatch/feeds/entrylines.py): the line of a newline-delimited body that gives an entry."""

from __future__ import annotations

import gzip

import pytest

from dnswatch.feeds.entrylines import EntryLines

BODY = ("# c2\r\n0.0.0.0 notevil.example\r\n0.0.0.0 Evil.Example\r\n*.Wild.Example.\r\n||block.example^\r\n"
        "Bücher.example\r\na.sub.example\r\nsub.example  # after its subdomain\r\nhttps://url.example/x\r\n"
        "address=/dnsmasq.example/0.0.0.0\r\n").encode()


@pytest.mark.parametrize(("entry", "found"), [
    ("evil.example", (3, "0.0.0.0 Evil.Example")),  # not line 2, where it is part of a longer name
    ("notevil.example", (2, "0.0.0.0 notevil.example")),
    ("*.wild.example", (4, "*.Wild.Example.")),
    ("block.example", (5, "||block.example^")),  # `.block.example`, reported as matches report it
    ("xn--bcher-kva.example", (6, "Bücher.example")),
    ("sub.example", (8, "sub.example  # after its subdomain")),  # not within a.sub.example
    ("url.example", (9, "https://url.example/x")),
    ("dnsmasq.example", (10, "address=/dnsmasq.example/0.0.0.0")),
    ("missing.example", None),
    ("wild.example", None),  # the wildcard's line gives `*.wild.example`, not the name itself
])
def test_the_line_that_gives_an_entry(entry, found):
    lines = EntryLines.from_body(BODY, "DomainNameSet")
    assert lines.locate(entry) == found
    assert lines.locate(entry) == found  # and again, from the cache


def test_a_gzip_body_and_an_ipset():
    assert EntryLines.from_body(gzip.compress(BODY), "DomainNameSet").locate("evil.example")[0] == 3
    ips = EntryLines.from_body(b"# bad\n192.0.2.7\n198.51.100.0/24\n2001:db8::/32\n", "IPSet")
    assert ips.locate("192.0.2.7/32") == (2, "192.0.2.7")
    assert ips.locate("2001:db8::/32") == (4, "2001:db8::/32")
    assert ips.locate("203.0.113.0/24") is None


def test_a_body_that_cannot_be_read_gives_no_lines():
    assert EntryLines.from_body(b"\x1f\x8b truncated gzip", "DomainNameSet") is None


def test_memory_is_the_text_of_the_body():
    body = b"".join(f"n{i}.example\n".encode() for i in range(10_000))
    assert len(body) <= EntryLines.from_body(body, "DomainNameSet").nbytes < len(body) + 100
