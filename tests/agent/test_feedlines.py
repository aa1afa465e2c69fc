"""Feed line parsing (dnswatch.feeds.lines): every line format of docs/feeds.md, decoding, rejected counting."""

from __future__ import annotations

import codecs
import gzip

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dnswatch.feeds import lines as feedlines
from dnswatch.feeds.lines import (
    FeedError,
    ParsedFeed,
    domain_entry,
    ip_entry,
    parse_domain_lines,
    parse_ip_lines,
    parse_lines,
    parse_values,
)
from dnswatch.errors import DnswatchError

IGNORED = "ignored"
REJECTED = "rejected"

# (line, what it gives): a tuple of canonical entries, IGNORED (no entry, not rejected) or REJECTED.
DOMAIN_LINES = [
    # plain names, case, trailing dot, repeated dots, underscores
    ("evil.com", ("evil.com",)),
    ("Evil.COM", ("evil.com",)),
    ("evil.com.", ("evil.com",)),
    ("a..evil.com", ("a.evil.com",)),
    ("_dmarc.evil.com", ("_dmarc.evil.com",)),
    ("  evil.com  ", ("evil.com",)),
    ("\tevil.com", ("evil.com",)),
    ("x", ("x",)),
    ("host1.example.com1", ("host1.example.com1",)),
    ("a" * 63 + ".com", ("a" * 63 + ".com",)),
    ("a" * 64 + ".com", REJECTED),
    (".".join(["abcdefghi"] * 25) + ".com", ("abcdefghi." * 25 + "com",)),
    (".".join(["abcdefghi"] * 26) + ".com", REJECTED),
    # comments and blanks
    ("", IGNORED),
    ("   ", IGNORED),
    ("# a comment", IGNORED),
    ("#evil.com", IGNORED),
    ("! adblock comment", IGNORED),
    ("; zone comment", IGNORED),
    ("evil.com # inline", ("evil.com",)),
    ("evil.com#inline", ("evil.com",)),
    ("evil.com ; inline", ("evil.com",)),
    ("[Adblock Plus 2.0]", IGNORED),
    # wildcards
    ("*.evil.com", ("*.evil.com",)),
    ("*.Evil.com.", ("*.evil.com",)),
    ("*", REJECTED),
    ("*.", REJECTED),
    ("ad*.evil.com", REJECTED),
    ("a.*.evil.com", REJECTED),
    # hosts files
    ("0.0.0.0 evil.com", ("evil.com",)),
    ("127.0.0.1 evil.com", ("evil.com",)),
    ("127.0.0.1\tevil.com", ("evil.com",)),
    ("0.0.0.0   evil.com   ", ("evil.com",)),
    ("::1 evil.com", ("evil.com",)),
    (":: evil.com", ("evil.com",)),
    ("192.0.2.1 evil.com", ("evil.com",)),
    ("0.0.0.0 a.evil.com b.evil.com", ("a.evil.com", "b.evil.com")),
    ("0.0.0.0 evil.com # blocked", ("evil.com",)),
    ("127.0.0.1 localhost", IGNORED),
    ("127.0.0.1 localhost.localdomain localhost", IGNORED),
    ("::1 localhost ip6-localhost ip6-loopback", IGNORED),
    ("ff02::1 ip6-allnodes", IGNORED),
    ("255.255.255.255 broadcasthost", IGNORED),
    ("0.0.0.0 0.0.0.0", IGNORED),
    ("127.0.0.1 local", IGNORED),
    ("0.0.0.0 localhost evil.com", ("evil.com",)),
    ("0.0.0.0 local.evil.com", ("local.evil.com",)),
    ("0.0.0.0 good.com bad/name", ("good.com",)),  # valid names kept, the line counts as rejected too
    ("0.0.0.0", REJECTED),
    # adblock: `||name^` is the name and its subdomains (`.name`)
    ("||evil.com^", (".evil.com",)),
    ("||Evil.com^$third-party", REJECTED),  # modifiers cannot be honoured (REFUSED_LINES has the reasons)
    ("||evil.com^$important,domain=a.com|b.com", REJECTED),
    ("||evil.com^|", (".evil.com",)),
    ("||evil.com", REJECTED),  # without `^` it also matches evil.community
    ("||*.evil.com^", ("*.evil.com",)),
    ("/^ad[0-9]+\\./", REJECTED),
    ("/ads/$client=10.0.0.1", REJECTED),
    ("||evil.com/ads^", REJECTED),
    ("||ad*.evil.com^", REJECTED),
    ("@@||allowed.com^", REJECTED),
    ("example.com##.banner", REJECTED),
    ("example.com#@#.banner", REJECTED),
    ("example.com#?#div:has(.ad)", REJECTED),
    ("|http://evil.com^", REJECTED),
    # dnsmasq: a blocked domain is the name and its subdomains (`.name`)
    ("address=/evil.com/0.0.0.0", (".evil.com",)),
    ("address=/evil.com/::", (".evil.com",)),
    ("address=/evil.com/", (".evil.com",)),
    ("address=/evil.com/192.0.2.1", (".evil.com",)),  # a walled garden: still a block of the domain
    ("address=/a.evil.com/b.evil.com/127.0.0.1", (".a.evil.com", ".b.evil.com")),
    ("server=/evil.com/", (".evil.com",)),
    ("local=/evil.com/", (".evil.com",)),
    ("address=/evil.com", REJECTED),
    ("address=/#/0.0.0.0", REJECTED),
    ("address=/evil.com/not-an-address", REJECTED),
    ("server=/evil.com/192.0.2.53", REJECTED),  # forwarding, not blocking
    ("local=/evil.com/192.0.2.53", REJECTED),
    ("server=/evil.com/0.0.0.0", REJECTED),
    ("address=/*.evil.com/0.0.0.0", REJECTED),
    ("ipset=/evil.com/blocked", REJECTED),
    # URLs: the host
    ("http://evil.com/path", ("evil.com",)),
    ("https://Evil.com:8443/x?y=1#frag", ("evil.com",)),
    ("http://user:secret@evil.com/login", ("evil.com",)),
    ("ftp://files.evil.com", ("files.evil.com",)),
    ("http://evil.com.", ("evil.com",)),
    ("http://", REJECTED),
    ("https://", REJECTED),
    ("http://192.0.2.1/payload", REJECTED),
    ("http://[2001:db8::1]/x", REJECTED),
    ("http://evil.com:99999/", REJECTED),
    ("http://[::1/x", REJECTED),
    ("http://evil.com/a b", REJECTED),
    ("evil.com/path", REJECTED),  # no scheme: not a URL, and a path is no name
    # RPZ records (zone structure is covered by test_rpz_zone)
    ("evil.com CNAME .", ("evil.com",)),
    ("*.evil.com CNAME .", ("*.evil.com",)),
    ("evil.com 300 IN CNAME .", ("evil.com",)),
    ("evil.com IN 300 CNAME *.", ("evil.com",)),
    ("evil.com CNAME rpz-drop.", ("evil.com",)),
    ("evil.com A 127.0.0.1", ("evil.com",)),
    ("evil.com CNAME rpz-passthru.", REJECTED),
    ("32.1.2.0.192.rpz-ip CNAME .", REJECTED),
    ("ns.evil.com.rpz-nsdname CNAME .", REJECTED),
    ("@ IN NS localhost.", IGNORED),
    ("IN NS ns1.example.", IGNORED),
    ("  IN NS ns1.example.", IGNORED),
    ("\t300 IN NS ns1.example.", IGNORED),
    ("  IN CNAME .", IGNORED),
    ("caa CNAME .", ("caa",)),  # an owner named like a type: only indentation makes a line ownerless
    ("evil.com NS ns1.example.", IGNORED),
    ("not a name", REJECTED),
    ("evil.com a 192.0.2.1 extra", REJECTED),
    ("evil.com AAAA 2001:db8::1", ("evil.com",)),
    ("evil.com AAAA 192.0.2.1", REJECTED),
    ('evil.com TXT "blocked"', ("evil.com",)),
    ("txt file here", REJECTED),
    ("2024 list of domains", REJECTED),
    ("evil.com CNAME walled-garden.example.", ("evil.com",)),
    ("evil.com CNAME", REJECTED),
    ("evil.com MX 10 mail.example.", REJECTED),
    # not names at all
    ("foo bar baz", REJECTED),
    ("1.2.3.4", REJECTED),
    ("10.0.0", REJECTED),
    ("2001:db8::1", REJECTED),
    ("evil.com:443", REJECTED),
    ("<html>", REJECTED),
    ("evil\x00.com", REJECTED),
    ("ev\ufffdil.com", REJECTED),
    # IDNA: Unicode becomes the A-label form that travels on the wire; A-labels stay
    ("Bücher.example", ("xn--bcher-kva.example",)),
    ("*.bücher.example", ("*.xn--bcher-kva.example",)),
    ("xn--bcher-kva.example", ("xn--bcher-kva.example",)),
    ("0.0.0.0 bücher.example", ("xn--bcher-kva.example",)),
    ("||bücher.example^", (".xn--bcher-kva.example",)),
    ("https://bücher.example/x", ("xn--bcher-kva.example",)),
    ("пример.рф", ("xn--e1afmkfd.xn--p1ai",)),
]


def _expected(outcome) -> tuple[tuple[str, ...], int]:
    if outcome == IGNORED:
        return (), 0
    if outcome == REJECTED:
        return (), 1
    return outcome, 0


@pytest.mark.parametrize(("line", "outcome"), DOMAIN_LINES)
def test_domain_line_alone(line, outcome):
    parsed = parse_domain_lines(line.encode())
    entries, rejected = _expected(outcome)
    assert parsed.entries == entries
    if line == "0.0.0.0 good.com bad/name":
        rejected = 1
    assert parsed.rejected == rejected
    assert len(parsed.rejected_samples) == rejected


FILLERS = {
    "plain": lambda i: f"filler{i}.example.org",
    "hosts": lambda i: f"0.0.0.0 filler{i}.example.org",
    "hosts127": lambda i: f"127.0.0.1 filler{i}.example.org",
    "adblock": lambda i: f"||filler{i}.example.org^",
    "rpz": lambda i: f"filler{i}.example.org CNAME .",
    "dnsmasq": lambda i: f"address=/filler{i}.example.org/0.0.0.0",
    "dnsmasq-local": lambda i: f"local=/filler{i}.example.org/",
    "dnsmasq-server": lambda i: f"server=/filler{i}.example.org/",
    "url": lambda i: f"https://filler{i}.example.org:8443/path/{i}?u=http://other.example/",
}


def test_every_fast_shape_has_a_filler():
    assert len(FILLERS) == len(feedlines._DOMAIN_FORMS) + 2  # three dnsmasq variants share one shape


@pytest.mark.parametrize("dominant", sorted(FILLERS))
@pytest.mark.parametrize(("line", "outcome"), DOMAIN_LINES)
def test_domain_line_inside_a_feed_of_another_shape(dominant, line, outcome):
    # The same line amid many lines of each fast shape: runs taken in bulk must not change what a line gives,
    # nor the order of entries or the line numbers of rejected lines.
    filler = FILLERS[dominant]
    lines = [filler(i) for i in range(30)] + [line] + [filler(i) for i in range(30, 60)]
    parsed = parse_domain_lines("\n".join(lines).encode())
    entries, rejected = _expected(outcome)
    if line == "0.0.0.0 good.com bad/name":
        rejected = 1
    mark = "." if dominant in ("adblock", "dnsmasq", "dnsmasq-local", "dnsmasq-server") else ""
    fill = [f"{mark}filler{i}.example.org" for i in range(60)]
    assert parsed.entries == tuple(dict.fromkeys(fill[:30] + list(entries) + fill[30:]))
    assert parsed.rejected == rejected
    assert parsed.rejected_samples == (((31, line.strip().lower()[:200]),) if rejected else ())


def test_everything_in_one_file_keeps_first_appearance_order_and_deduplicates():
    body = b"""# mixed feed
b.example
0.0.0.0 a.example
||c.example^
b.example
*.d.example
address=/a.example/
https://e.example/x
e.example CNAME .
"""
    assert parse_domain_lines(body).entries == ("b.example", "a.example", ".c.example", "*.d.example", ".a.example",
                                                "e.example")


def test_a_long_comment_header_does_not_hide_the_shape_of_the_body():
    body = "\n".join(["# " + "x" * 70] * 2000 + [f"n{i}.example" for i in range(3000)] + ["bad line"])
    form = feedlines._choose_form(body, feedlines._DOMAIN_FORMS)
    assert form is feedlines._DOMAIN_FORMS[0]
    parsed = parse_domain_lines(body.encode())
    assert len(parsed.entries) == 3000
    assert parsed.rejected_samples == ((5001, "bad line"),)


def test_rpz_zone():
    body = b"""$TTL 2h
$ORIGIN rpz.example.org.
@ SOA ns.rpz.example.org. hostmaster.rpz.example.org. (
      2024010101 ; serial
      3600       ; refresh
      admin.rpz.example.org
      600 86400 300 )
@         IN NS   ns.rpz.example.org.
          IN NS   ns2.rpz.example.org.
rpz.example.org. IN NS ns3.rpz.example.org.
evil.com          CNAME .
*.evil.com        CNAME .
tracker.net.rpz.example.org. 300 IN CNAME .
absolute.example.  CNAME .
allowed.org       CNAME rpz-passthru.
24.0.2.0.192.rpz-ip CNAME .
local-data.example A 127.0.0.1
"""
    parsed = parse_domain_lines(body)
    assert parsed.entries == ("evil.com", "*.evil.com", "tracker.net", "absolute.example", "local-data.example")
    assert [number for number, _ in parsed.rejected_samples] == [15, 16]
    assert parsed.rejected == 2


def test_an_unclosed_soa_parenthesis_does_not_swallow_the_feed():
    lines = ["@ IN SOA ns. host. ("] + [f"n{i}.example" for i in range(100)]
    parsed = parse_domain_lines("\n".join(lines).encode())
    assert parsed.entries == tuple(f"n{i}.example" for i in range(11, 100))


def test_single_line_soa_does_not_swallow_the_rest():
    body = b"@ IN SOA ns. host. (1 3600 600 86400 300)\nevil.com CNAME .\n"
    assert parse_domain_lines(body).entries == ("evil.com",)


def test_hosts_file_as_published():
    body = b"""# Title: a hosts list
127.0.0.1 localhost
127.0.0.1 localhost.localdomain
127.0.0.1 local
255.255.255.255 broadcasthost
::1 localhost
::1 ip6-localhost ip6-loopback
fe80::1%lo0 localhost
ff00::0 ip6-localnet
ff00::0 ip6-mcastprefix
ff02::1 ip6-allnodes
ff02::2 ip6-allrouters
ff02::3 ip6-allhosts
0.0.0.0 0.0.0.0

# Start of entries
0.0.0.0 ads.example.com
0.0.0.0 tracker.example.net # comment
0.0.0.0\tTabbed.Example.org
"""
    parsed = parse_domain_lines(body)
    assert parsed.entries == ("ads.example.com", "tracker.example.net", "tabbed.example.org")
    assert parsed.rejected == 0


# ---------------------------------------------------------------------------------------------- decoding

TEXT = "evil.com\nBücher.example\n# c\nbad name here\n"
EXPECTED = ParsedFeed(("evil.com", "xn--bcher-kva.example"), 1, ((4, "bad name here"),))


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(TEXT.encode("utf-8"), id="utf-8"),
        pytest.param(codecs.BOM_UTF8 + TEXT.encode("utf-8"), id="utf-8 BOM"),
        pytest.param(codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"), id="utf-16 LE BOM"),
        pytest.param(codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"), id="utf-16 BE BOM"),
        pytest.param(TEXT.replace("\n", "\r\n").encode(), id="CRLF"),
        pytest.param(TEXT.replace("\n", "\r").encode(), id="CR"),
        pytest.param(gzip.compress(TEXT.encode()), id="gzip"),
        pytest.param(gzip.compress(codecs.BOM_UTF16_LE + TEXT.replace("\n", "\r\n").encode("utf-16-le")), id="gzip utf-16 CRLF"),
        pytest.param(gzip.compress(TEXT[:12].encode()) + gzip.compress(TEXT[12:].encode()), id="gzip two members"),
        pytest.param(gzip.compress(TEXT.encode()) + b"\x00\x00 trailing", id="gzip trailing garbage"),
    ],
)
def test_body_decodings(body):
    assert parse_domain_lines(body) == EXPECTED


def test_first_line_after_a_bom_is_an_entry():
    assert parse_domain_lines(codecs.BOM_UTF8 + b"evil.com").entries == ("evil.com",)


def test_invalid_utf8_rejects_only_its_line():
    parsed = parse_domain_lines(b"good.com\nev\xffil.com\nalso.good.com\n")
    assert parsed.entries == ("good.com", "also.good.com")
    assert parsed.rejected == 1
    assert parsed.rejected_samples[0][0] == 2


def test_gzip_bomb_stops_at_the_cap():
    bomb = gzip.compress(b"a.example\n" * 200_000)  # 2 MB of text in a few kB
    assert len(bomb) < 20_000
    with pytest.raises(FeedError, match="beyond the limit of 1000000 bytes"):
        parse_domain_lines(bomb, max_bytes=1_000_000)
    assert len(parse_domain_lines(bomb, max_bytes=2_000_000).entries) == 1


def test_gzip_exactly_at_the_cap_is_accepted():
    text = b"a.example\n" * 100
    assert parse_domain_lines(gzip.compress(text), max_bytes=len(text)).entries == ("a.example",)
    with pytest.raises(FeedError):
        parse_domain_lines(gzip.compress(text), max_bytes=len(text) - 1)


def test_plain_body_over_the_cap_is_refused():
    with pytest.raises(FeedError, match="over the limit"):
        parse_domain_lines(b"a.example\n" * 10, max_bytes=50)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(gzip.compress(b"evil.com\n" * 1000)[:-30], id="truncated"),
        pytest.param(b"\x1f\x8b\x08\x00garbage-garbage-garbage", id="corrupt"),
    ],
)
def test_broken_gzip_is_a_feed_error(body):
    with pytest.raises(FeedError, match="gzip"):
        parse_domain_lines(body)


def test_feed_error_is_a_dnswatch_error():
    assert issubclass(FeedError, DnswatchError)


# ---------------------------------------------------------------------------------------------- rejected counting


def test_rejected_lines_are_counted_with_ten_samples_and_their_line_numbers():
    lines = ["# header", ""] + [f"bad line {i}" if i % 2 else f"good{i}.example" for i in range(40)]
    parsed = parse_domain_lines("\n".join(lines).encode())
    assert parsed.rejected == 20
    assert len(parsed.rejected_samples) == feedlines.MAX_REJECTED_SAMPLES
    assert parsed.rejected_samples[0] == (4, "bad line 1")
    assert parsed.rejected_samples[-1] == (22, "bad line 19")
    assert len(parsed.entries) == 20


def test_line_numbers_count_blank_lines_inside_fast_runs():
    lines = [f"n{i}.example" for i in range(10)] + ["", "", "bad one", "n10.example", "", "bad two"]
    parsed = parse_domain_lines("\n".join(lines).encode())
    assert parsed.rejected_samples == ((13, "bad one"), (16, "bad two"))


def test_long_samples_are_cut():
    parsed = parse_domain_lines(("x " * 500).encode())
    assert parsed.rejected == 1
    assert len(parsed.rejected_samples[0][1]) == 200


def test_empty_and_comment_only_bodies():
    assert parse_domain_lines(b"") == ParsedFeed(())
    assert parse_domain_lines(b"# nothing\n\n! here\n") == ParsedFeed(())
    assert parse_ip_lines(b"") == ParsedFeed(())


# ---------------------------------------------------------------------------------------------- fast path = slow path

_LINE_ALPHABET = "abcxz019-_.*|^#!;$=/: \t@"
_PREFIXES = ["", "0.0.0.0 ", "127.0.0.1 ", "||", "*.", "address=/", "local=/", "server=/", "http://", "https://u@",
             "::1 ", "# "]
_SUFFIXES = ["", "^", "/", "/0.0.0.0", "/::", "/1.2.3.4", ".", "..", " cname .", " cname rpz-passthru.",
             "^$third-party", " # c", ":8080/x", ":99999/", ":/", "/a#@#b", "/p?u=http://x.org/", "/p;q", "/p\x0bq"]


@st.composite
def _feed_lines(draw):
    lines = []
    for _ in range(draw(st.integers(1, 25))):
        core = draw(st.text(_LINE_ALPHABET, max_size=12))
        lines.append(draw(st.sampled_from(_PREFIXES)) + core + draw(st.sampled_from(_SUFFIXES)))
    return "\n".join(lines)


@settings(max_examples=300, deadline=None)
@given(_feed_lines())
def test_fast_runs_give_what_line_by_line_parsing_gives(text):
    for forms in (feedlines._DOMAIN_FORMS[i : i + 1] for i in range(len(feedlines._DOMAIN_FORMS))):
        fast = feedlines._scan(text, forms, feedlines._DomainLineParser())
        slow = feedlines._scan(text, (), feedlines._DomainLineParser())
        assert fast == slow


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text("0123456789./:af \t#", max_size=16), max_size=20))
def test_fast_ipv4_runs_give_what_line_by_line_parsing_gives(lines):
    text = "\n".join(lines)
    assert feedlines._scan(text, feedlines._IP_FORMS, feedlines._IpLineParser()) == feedlines._scan(
        text, (), feedlines._IpLineParser()
    )


@settings(max_examples=300, deadline=None)
@given(st.text("abcz09-_.", min_size=1, max_size=70))
def test_fast_name_shape_only_accepts_canonical_names(text):
    # Every line the fast shape takes must be a name canonical_name returns unchanged.
    if feedlines._DOMAIN_FORMS[0].probe.fullmatch(text) and ".." not in text:
        assert domain_entry(text) == text


# ---------------------------------------------------------------------------------------------- IP lines

IP_LINES = [
    ("192.0.2.7", ("192.0.2.7/32",)),
    ("192.0.2.7/32", ("192.0.2.7/32",)),
    ("10.0.0.0/8", ("10.0.0.0/8",)),
    ("10.1.2.3/8", ("10.0.0.0/8",)),  # host bits set: masked
    ("0.0.0.0/0", ("0.0.0.0/0",)),
    ("255.255.255.255", ("255.255.255.255/32",)),
    ("2001:DB8::1", ("2001:db8::1/128",)),
    ("2001:0db8:0000:0000:0000:0000:0000:0001", ("2001:db8::1/128",)),
    ("2001:db8::1/32", ("2001:db8::/32",)),
    ("::/0", ("::/0",)),
    ("::ffff:192.0.2.7", ("192.0.2.7/32",)),
    ("::ffff:192.0.2.0/120", ("192.0.2.0/24",)),
    ("::ffff:0:0/96", ("0.0.0.0/0",)),
    ("10.0.0.0/255.0.0.0", ("10.0.0.0/8",)),
    ("  192.0.2.7  ", ("192.0.2.7/32",)),
    ("192.0.2.7 # inline", ("192.0.2.7/32",)),
    ("1.10.16.0/20 ; SBL256894", ("1.10.16.0/20",)),
    ("", IGNORED),
    ("# comment", IGNORED),
    ("; Spamhaus DROP header", IGNORED),
    ("// comment", IGNORED),
    ("! comment", IGNORED),
    ("256.1.1.1", REJECTED),
    ("010.1.1.1", REJECTED),  # ambiguous (octal?): refused
    ("1.2.3", REJECTED),
    ("192.0.2.7/33", REJECTED),
    ("evil.com", REJECTED),
    ("0.0.0.0 evil.com", REJECTED),  # a hosts file given as an IP feed must not become 0.0.0.0/32
    ("192.0.2.7 192.0.2.8", REJECTED),
    ("2001:db8::g", REJECTED),
    ("1.2.3.4\ufffd", REJECTED),
]


@pytest.mark.parametrize(("line", "outcome"), IP_LINES)
def test_ip_line(line, outcome):
    entries, rejected = _expected(outcome)
    parsed = parse_ip_lines(line.encode())
    assert (parsed.entries, parsed.rejected) == (entries, rejected)
    # and amid a run of bare IPv4 addresses, taken in bulk
    lines = [f"198.51.100.{i}" for i in range(20)] + [line] + [f"203.0.113.{i}" for i in range(20)]
    parsed = parse_ip_lines("\n".join(lines).encode())
    fill = [f"198.51.100.{i}/32" for i in range(20)] + list(entries) + [f"203.0.113.{i}/32" for i in range(20)]
    assert parsed.entries == tuple(dict.fromkeys(fill))
    assert parsed.rejected_samples == (((21, line.strip()),) if rejected else ())


def test_ip_feed_deduplicates_address_and_host_cidr():
    assert parse_ip_lines(b"192.0.2.7\n192.0.2.7/32\n10.1.0.0/8\n10.0.0.0/8\n").entries == ("192.0.2.7/32", "10.0.0.0/8")


def test_ip_feed_gzip_and_utf16():
    body = codecs.BOM_UTF16_LE + "192.0.2.7\r\n2001:db8::/32\r\n".encode("utf-16-le")
    assert parse_ip_lines(gzip.compress(body)).entries == ("192.0.2.7/32", "2001:db8::/32")


# ---------------------------------------------------------------------------------------------- helpers


def test_parse_lines_dispatches_on_content():
    assert parse_lines(b"evil.com", "DomainNameSet").entries == ("evil.com",)
    assert parse_lines(b"192.0.2.7", "IPSet").entries == ("192.0.2.7/32",)
    with pytest.raises(ValueError, match="content"):
        parse_lines(b"x", "Hosts")


def test_parse_values_reads_each_value_as_a_line():
    parsed = parse_values([(1, "Evil.com"), (2, "http://b.org/x"), (3, "not a name"), (5, "evil.com")], "DomainNameSet")
    assert parsed == ParsedFeed(("evil.com", "b.org"), 1, ((3, "not a name"),))
    assert parse_values([(1, "10.1.2.3/8")], "IPSet").entries == ("10.0.0.0/8",)


@pytest.mark.parametrize(
    ("text", "entry"),
    [("Evil.com", "evil.com"), ("*.x.org", "*.x.org"), ("1.2.3.4", None), ("a/b", None), ("", None)],
)
def test_domain_entry(text, entry):
    assert domain_entry(text) == entry


@pytest.mark.parametrize(
    ("text", "entry"), [("192.0.2.7", "192.0.2.7/32"), ("::ffff:1.2.3.4", "1.2.3.4/32"), ("x", None), ("", None)]
)
def test_ip_entry(text, entry):
    assert ip_entry(text) == entry


@pytest.mark.timeout(60)  # the old pattern takes 2^59 steps for the first line: this guard is the failure
@pytest.mark.parametrize("line", ["x 999999999999999999999999999999999999999999999999999999999999cname .",
                                  "x 1 in 666666666666666666666666666666666666666666666666666666666666h1x a 1.2.3.4",
                                  "  777777777777777777777777777777777777777777777777777777777777. cname ."])
def test_a_zone_line_with_a_long_number_that_is_no_ttl_is_refused_at_once(line):
    # Found by fuzzing (fuzz/feeds.py): the TTL pattern could split a run of digits in 2^(n-1) ways and tried
    # them all before refusing the token: one such line of a feed (or a CSV value) stalled the parser.
    body = f"evil.example\n{line}\nafter.example\n".encode()
    parsed = parse_domain_lines(body)
    assert parsed.entries == ("evil.example", "after.example") and parsed.rejected == 1
