"""Each line format keeps its own matching semantics (docs/feeds.md "Line formats", docs/detection.md "Entries"),
lines that cannot be honoured are rejected with their reason, and wildcards over a public suffix are refused.

The lists under pcaps/feeds/ are excerpts in each publisher's own syntax (hagezi and oisd adblock and dnsmasq
lists, hagezi's RPZ zone, an AdGuard DNS filter with the rules dnswatch cannot follow).
"""

from __future__ import annotations

from pathlib import Path

import dnslib
import pytest

from agent.core.scanner import Matcher
from agent.shell import assembly
from agent.shell.config import PipelineOptions
from agent.shell.feeds import build_matcher, load_feed_file, load_manifest
from dnswatch.feeds.domainset import DomainSet
from dnswatch.feeds.lines import ParsedFeed, parse_domain_lines
from dnswatch.feeds.publicsuffixes import refuse_public_suffixes
from dnswatch.feeds.status import FeedStatus, after_success, describe_samples

FEEDS = Path(__file__).resolve().parents[2] / "pcaps" / "feeds"


def hit(matcher: Matcher, name: str) -> set[tuple[str, str]]:
    _, matches = matcher.scan(bytes(dnslib.DNSRecord.question(name).pack()))
    return {(m.feed, m.entry) for m in matches}


def matcher_of(filename: str, match_subdomains: bool = False) -> Matcher:
    parsed = refuse_public_suffixes(parse_domain_lines((FEEDS / filename).read_bytes()), match_subdomains)
    return Matcher([("feed", DomainSet.from_names(parsed.entries, match_subdomains))])


@pytest.mark.parametrize("filename", ["hagezi-pro.adblock.txt", "hagezi-pro.dnsmasq.conf"])
def test_hagezi_adblock_and_dnsmasq_lists_cover_every_subdomain(filename):
    matcher = matcher_of(filename)
    for name in ("doubleclick.net", "ad.doubleclick.net", "a.b.doubleclick.net", "x.y.z.metrics.icloud.com"):
        entry = "metrics.icloud.com" if "icloud" in name else "doubleclick.net"
        assert hit(matcher, name) == {("feed", entry)}, name
    assert hit(matcher, "notdoubleclick.net") == set()
    assert hit(matcher, "icloud.com") == set()  # a listed subdomain covers neither its parent nor its siblings


@pytest.mark.parametrize("filename", ["oisd-small.adblock.txt", "oisd-small.dnsmasq.conf"])
def test_oisd_adblock_and_dnsmasq_lists_cover_every_subdomain(filename):
    matcher = matcher_of(filename)
    assert hit(matcher, "a.b.popads.net") == {("feed", "popads.net")}
    assert hit(matcher, "popads.net") == {("feed", "popads.net")}
    assert hit(matcher, "deep.ads.oisd-example.net") == {("feed", "ads.oisd-example.net")}
    assert hit(matcher, "oisd-example.net") == set()


def test_rpz_zone_keeps_rpz_semantics_exact_names_and_wildcards():
    matcher = matcher_of("hagezi-pro.rpz")
    assert hit(matcher, "doubleclick.net") == {("feed", "doubleclick.net")}
    assert hit(matcher, "a.b.doubleclick.net") == {("feed", "*.doubleclick.net")}
    assert hit(matcher, "exact-only.example") == {("feed", "exact-only.example")}
    assert hit(matcher, "a.exact-only.example") == set()  # RPZ `name` is the name alone
    assert hit(matcher, "subdomains-only.example") == set()  # RPZ `*.name` is its strict subdomains
    assert hit(matcher, "a.b.subdomains-only.example") == {("feed", "*.subdomains-only.example")}
    assert hit(matcher, "allowed.example") == set()


def test_hosts_and_plain_lines_stay_exact_and_match_subdomains_widens_every_entry():
    parsed = parse_domain_lines(b"0.0.0.0 hosts.example\nplain.example\n*.wild.example\n||adblock.example^\n")
    assert parsed.entries == ("hosts.example", "plain.example", "*.wild.example", ".adblock.example")
    exact = Matcher([("feed", DomainSet.from_names(parsed.entries))])
    assert hit(exact, "a.hosts.example") == hit(exact, "a.plain.example") == hit(exact, "wild.example") == set()
    assert hit(exact, "a.adblock.example") == {("feed", "adblock.example")}
    wide = Matcher([("feed", DomainSet.from_names(parsed.entries, match_subdomains=True))])
    assert hit(wide, "a.hosts.example") == {("feed", "hosts.example")}
    assert hit(wide, "a.plain.example") == {("feed", "plain.example")}
    assert hit(wide, "wild.example") == set()  # a wildcard stays a wildcard
    assert hit(wide, "a.adblock.example") == {("feed", "adblock.example")}


def test_a_name_listed_both_exact_and_with_subdomains_takes_both():
    domains = DomainSet.from_names(["evil.example", ".evil.example", "*.other.example"])
    assert len(domains) == 2 and ".evil.example" in domains and "evil.example" in domains
    assert ".other.example" not in domains and ".missing.example" not in domains


# (line of pcaps/feeds/adguard-dns-filter.txt, what its reason says)
ADGUARD_REJECTED = [
    (7, "the adblock modifier $important cannot be honoured"),
    (8, "the adblock modifier $client= cannot be honoured"),
    (9, "the adblock modifier $denyallow= cannot be honoured"),
    (10, "the adblock modifier $dnstype= cannot be honoured"),
    (11, "the adblock modifier $third-party cannot be honoured"),
    (12, "an exception (@@) asks for allow-listing"),
    (13, "an exception (@@) asks for allow-listing"),
    (14, "a /regex/ rule"),
    (15, "a /regex/ rule"),
    (16, "an adblock rule without ^ also matches longer names"),
]


def test_adblock_rules_that_cannot_be_honoured_are_rejected_with_their_reason():
    parsed = parse_domain_lines((FEEDS / "adguard-dns-filter.txt").read_bytes())
    assert parsed.entries == (".ads.plain-rule.example", "*.wildcard-rule.example")  # nothing widened or narrowed
    assert parsed.rejected == 12  # the path rule and the element-hiding rule too
    assert [number for number, _ in parsed.rejected_reasons] == [number for number, _ in ADGUARD_REJECTED]
    for (number, reason), (expected_number, expected) in zip(parsed.rejected_reasons, ADGUARD_REJECTED):
        assert number == expected_number and reason.startswith(expected), (number, reason)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("||path-rule.example/ads^", "an adblock pattern or path"),
        ("||ad*.pattern.example^", "an adblock pattern or path"),
        ("example.org##.banner", "an element-hiding rule"),
        ("server=/corp.example/10.0.0.53", "forwards the domain to another server"),
        ("ipset=/video.example/streaming", "a dnsmasq option that is not a domain block"),
        ("address=/*.pattern.example/0.0.0.0", "a dnsmasq wildcard pattern"),
        ("allowed.example CNAME rpz-passthru.", "an RPZ passthru asks for allow-listing"),
        ("32.1.2.0.192.rpz-ip CNAME .", "an RPZ trigger on addresses"),
    ],
)
def test_each_refused_line_says_why(line, reason):
    parsed = parse_domain_lines(f"ok.example\n{line}\n".encode())
    assert parsed.entries == ("ok.example",) and parsed.rejected == 1
    assert parsed.rejected_reasons[0][0] == 2 and parsed.rejected_reasons[0][1].startswith(reason)


def test_the_status_message_quotes_the_reason():
    parsed = parse_domain_lines(b"ok.example\n||x.example^$client=10.0.0.1\n")
    status = after_success(FeedStatus(), parsed, __import__("datetime").datetime(2026, 11, 27), "sha")
    assert status.error_conditions[-1].message == (
        "1 line could not be an entry (e.g. line 2: '||x.example^$client=10.0.0.1' (the adblock modifier $client= "
        "cannot be honoured: dnswatch matches names only))"
    )


# ---------------------------------------------------------------------------------------------- public suffixes


def test_wildcards_over_a_public_suffix_are_refused_and_the_rest_stands():
    parsed = refuse_public_suffixes(parse_domain_lines((FEEDS / "public-suffix-wildcards.txt").read_bytes()))
    assert parsed.entries == ("*.bad-actor.co.uk", ".bad-actor.com", "github.io")
    assert parsed.rejected == 6
    assert [text for _, text in parsed.rejected_samples] == ["*.co.uk", "*.com", ".com", ".co.uk", ".net", "*.x.ck"]
    assert describe_samples(parsed)[:3] == [
        "entry '*.co.uk' (*.co.uk covers a public suffix: every name under it would match)",
        "entry '*.com' (*.com covers a public suffix: every name under it would match)",
        "entry '.com' (com with its subdomains covers a public suffix: every name under it would match)",
    ]


def test_match_subdomains_on_a_public_suffix_is_refused_but_an_exact_one_is_kept():
    parsed = parse_domain_lines(b"com\nevil.example\nco.uk\nduckdns.org\n")
    assert refuse_public_suffixes(parsed).entries == ("com", "evil.example", "co.uk", "duckdns.org")
    wide = refuse_public_suffixes(parsed, match_subdomains=True)
    assert wide.entries == ("evil.example", "duckdns.org")  # private suffixes (dynamic DNS) may be flagged
    assert wide.rejected_reasons[0] == (0, "com with matchSubdomains covers a public suffix: every name under it "
                                           "would match")


@pytest.mark.parametrize("entry", ["*.lan", ".lan", "*.example", "*.foo.ck", ".kawasaki.jp", "*.xn--p1ai"])
def test_unknown_tlds_and_wildcard_rules_count_as_public_suffixes(entry):
    assert refuse_public_suffixes(ParsedFeed((entry, "ok.example"))).entries == ("ok.example",)


@pytest.mark.parametrize("entry", ["*.www.ck", "*.city.kawasaki.jp", "*.evil.example", ".bbc.co.uk"])
def test_names_below_a_public_suffix_are_kept(entry):
    assert refuse_public_suffixes(ParsedFeed((entry,))).entries == (entry,)


# ---------------------------------------------------------------------------------------------- replay --feed


def test_replay_feed_flag_gives_adblock_lists_their_meaning_and_refuses_public_suffixes(tmp_path):
    feed = tmp_path / "mixed.txt"
    feed.write_bytes((FEEDS / "hagezi-pro.adblock.txt").read_bytes() + b"||co.uk^\n")
    loaded = load_feed_file("hagezi", feed, "DomainNameSet")
    assert loaded.parsed.rejected == 1 and loaded.problem is None
    matcher = build_matcher([loaded])
    assert hit(matcher, "a.b.doubleclick.net") == {("hagezi", "doubleclick.net")}
    assert hit(matcher, "anything.co.uk") == set()


def test_replay_feed_manifest_refuses_match_subdomains_over_a_public_suffix(tmp_path):
    (tmp_path / "list.txt").write_bytes(b"com\nevil.example\n")
    (tmp_path / "feeds.yaml").write_text(
        "apiVersion: dnswatch.dev/v1\nkind: GlobalThreatFeed\nmetadata: {name: wide}\n"
        "spec: {content: DomainNameSet, matchSubdomains: true, pull: {http: {url: 'file:list.txt'}}}\n"
    )
    [loaded] = load_manifest(tmp_path / "feeds.yaml")
    assert loaded.parsed.entries == ("evil.example",) and loaded.parsed.rejected == 1
    assert hit(build_matcher([loaded]), "www.example.com") == set()


def test_replay_warns_on_stderr_about_refused_rules_and_an_unusable_feed(tmp_path, capsys):
    adguard = tmp_path / "adguard.txt"
    adguard.write_bytes((FEEDS / "adguard-dns-filter.txt").read_bytes())
    csv = tmp_path / "export.csv"
    csv.write_bytes(b"id,domain,first_seen\n1,evil.example,2026-11-01\n2,bad.example,2026-11-02\n")
    assembly.local_matcher(PipelineOptions(feeds=(f"adguard={adguard}", f"export={csv}")))
    err = capsys.readouterr().err.splitlines()
    assert "feed adguard: 2 DomainNameSet entries, 12 lines rejected" in err
    assert ("warning: feed adguard: line 8: '||client-rule.example^$client=192.168.1.10' (the adblock modifier "
            "$client= cannot be honoured: dnswatch matches names only)") in err
    assert ("warning: feed adguard: 12 of 14 lines (86 %) could not be an entry: most lines are rules dnswatch "
            "cannot honour (the adblock modifier $important cannot be honoured: dnswatch matches names only)") in err
    assert ("warning: feed export: none of the 3 lines could be an entry: this looks like CSV: set format.csv "
            "with the column of the entries") in err
