"""Feed lines: every newline-delimited format (docs/feeds.md), detected line by line, shared by agent and collector.

A domain feed may mix plain names, `#`/`!`/`;` comments, hosts-file lines, adblock `||name^` rules, `*.name`
wildcards, dnsmasq `address=/name/…` (also `server=/…/` and `local=/…/`), RPZ zone records and URLs. Each
line yields canonical entries (`dnswatch.names.canonical_name`, in the forms of `dnswatch.feeds.entries`), is
ignored (blank, comment, zone structure, localhost names) or is counted as rejected; no line is ever fatal.
Only a body that cannot be read at all (a gzip bomb, a truncated gzip stream) raises `FeedError`.

Decisions a reader may look for:
- every entry means what its format means (docs/feeds.md has the table): hosts, plain and URL lines and RPZ
  `name CNAME .` are exact (`name`), `*.name` lines and RPZ `*.name` strict subdomains, adblock `||name^` and
  dnsmasq `address=/name/` the name and its subdomains (`.name`);
- a line whose meaning cannot be honoured is *rejected* with its reason, never widened or narrowed into an
  entry: adblock `@@` exceptions and RPZ `rpz-passthru.` (allow-listing, which is not done), adblock `$`
  modifiers (`$client=`, `$denyallow=`, `$important`...), `/regex/` rules, a `||name` without `^` (it also
  matches `name` followed by anything), dnsmasq lines that forward a domain rather than block it; the reason
  goes with the line's sample (`ParsedFeed.rejected_reasons`), so nobody believes the rule was applied;
- a hosts or dnsmasq line with several names keeps its valid names and counts as rejected once if any other
  name on it is invalid;
- a name whose last label is all digits (`1.2.3.4`, `10.0.0`) is an address literal, never a domain: rejected;
- IP entries are `ipaddress` network strings, always with a prefix (`192.0.2.7/32`, `2001:db8::/32`): one
  form, so `192.0.2.7` and `192.0.2.7/32` are one entry; host bits are masked (`10.1.2.3/8` is `10.0.0.0/8`)
  and IPv4-mapped IPv6 networks become IPv4 ones (`::ffff:192.0.2.0/120` is `192.0.2.0/24`);
- rejected samples show the line lower-cased (the body is lower-cased once, for speed).

Speed (the whole 1M-domain load has 2 s: docs/architecture.md): the body is decoded and lower-cased once, and the line
shape that dominates the file (plain names, `0.0.0.0 name` hosts lines, `||name^`, bare IPv4 addresses) is
taken in whole runs by C-level regex and `str.split` calls; only the other lines go through the per-line
parser below, in file order, so entries keep the order of their first appearance.
"""

from __future__ import annotations

import ipaddress
import re
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from dnswatch.feeds.entries import SUBTREE_MARK, WILDCARD_MARK
from dnswatch.names import canonical_name
from dnswatch.errors import DnswatchError

DOMAIN_NAME_SET = "DomainNameSet"
IP_SET = "IPSet"
CONTENTS = (DOMAIN_NAME_SET, IP_SET)

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
MAX_REJECTED_SAMPLES = 10
_MAX_SAMPLE_CHARS = 200
_GZIP_MAGIC = b"\x1f\x8b"


class FeedError(DnswatchError):
    """A feed body that cannot be used at all: too large once decompressed, a broken gzip stream, bad JSON."""


@dataclass(frozen=True)
class ParsedFeed:
    """What a feed body holds, as both the agent's sets and the collector's status need it."""

    entries: tuple[str, ...]
    """Canonical entries, de-duplicated, in the order of their first appearance."""
    rejected: int = 0
    """Lines (or JSON/CSV values) that could not be an entry."""
    rejected_samples: tuple[tuple[int, str], ...] = ()
    """Up to 10 (line number, line) of the rejected lines, for error conditions and messages."""
    rejected_reasons: tuple[tuple[int, str], ...] = ()
    """(line number, why) for the samples rejected for a reason of their own (a modifier, an exception...); a
    sample without one is simply no entry. Number 0 is an entry refused after parsing (a public suffix)."""


# ---------------------------------------------------------------------------------------------- the body


def decode_body(body: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """The text of a feed body: gunzipped when it starts with the gzip magic, BOM-aware, never failing on bytes.

    UTF-8 with or without a BOM and UTF-16 with a BOM; invalid bytes become U+FFFD, which no entry accepts, so
    their line is rejected rather than the feed.
    """
    if body[:2] == _GZIP_MAGIC:
        body = _gunzip(body, max_bytes)
    elif len(body) > max_bytes:
        raise FeedError(f"the feed body is {len(body)} bytes, over the limit of {max_bytes}")
    if body[:3] == b"\xef\xbb\xbf":
        return body[3:].decode("utf-8", "replace")
    if body[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return body.decode("utf-16", "replace")  # the codec reads the byte order from the BOM and drops it
    return body.decode("utf-8", "replace")


def _gunzip(body: bytes, max_bytes: int) -> bytes:
    # zlib with an output cap instead of gzip.decompress: a bomb must stop at max_bytes, not exhaust memory.
    chunks: list[bytes] = []
    total = 0
    data = body
    while True:  # one round per gzip member: concatenated members are one valid gzip file
        inflater = zlib.decompressobj(wbits=31)
        try:
            while not inflater.eof:
                chunk = inflater.decompress(data, max_bytes + 1 - total)
                data = inflater.unconsumed_tail
                total += len(chunk)
                if total > max_bytes:
                    raise FeedError(f"the gzip body expands beyond the limit of {max_bytes} bytes")
                if not chunk and not data and not inflater.eof:
                    raise FeedError("the gzip body is truncated")
                chunks.append(chunk)
        except zlib.error as error:
            raise FeedError(f"the gzip body is corrupt: {error}") from error
        data = inflater.unused_data
        if data[:2] != _GZIP_MAGIC:
            break  # trailing bytes that are no gzip member are ignored, as gzip(1) does
    return b"".join(chunks)


def _normalise_newlines(text: str) -> str:
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


# ---------------------------------------------------------------------------------------------- public API


def parse_domain_lines(body: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> ParsedFeed:
    """The canonical domain entries of a newline-delimited DomainNameSet body, in any line format (docs/feeds.md)."""
    text = _normalise_newlines(decode_body(body, max_bytes)).lower()
    return _scan(text, _DOMAIN_FORMS, _DomainLineParser())


def parse_ip_lines(body: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> ParsedFeed:
    """The canonical networks of a newline-delimited IPSet body: addresses and CIDRs, IPv4 and IPv6."""
    text = _normalise_newlines(decode_body(body, max_bytes)).lower()
    return _scan(text, _IP_FORMS, _IpLineParser())


def parse_lines(body: bytes, content: str, max_bytes: int = DEFAULT_MAX_BYTES) -> ParsedFeed:
    """`parse_domain_lines` or `parse_ip_lines` by the feed's `content`."""
    if content == DOMAIN_NAME_SET:
        return parse_domain_lines(body, max_bytes)
    if content == IP_SET:
        return parse_ip_lines(body, max_bytes)
    raise ValueError(f"content must be one of {', '.join(CONTENTS)}, not {content!r}")


def parse_values(values: Iterable[tuple[int, str]], content: str) -> ParsedFeed:
    """Entries from values already cut out of a document (JSON strings, CSV fields), numbered for samples.

    Each value is read as one line would be, so a CSV column of URLs gives their hosts.
    """
    if content == DOMAIN_NAME_SET:
        parser: _DomainLineParser | _IpLineParser = _DomainLineParser()
    elif content == IP_SET:
        parser = _IpLineParser()
    else:
        raise ValueError(f"content must be one of {', '.join(CONTENTS)}, not {content!r}")
    acc = _Accumulator()
    for number, value in values:
        line = value.lower()
        acc.take(number, line, parser.parse(line))
    return acc.result()


def domain_entry(text: str) -> str | None:
    """One domain entry (`name` or `*.name`, lower-case) in canonical form, or None when it cannot be one."""
    if _FAST_ENTRY.fullmatch(text) and ".." not in text:
        return text  # already canonical (the shape guarantees it), without canonical_name's per-character work
    core = text[2:] if text.startswith("*.") else text
    if _NOT_IN_NAMES.search(core):
        return None
    name = canonical_name(text)
    if name is None or name.rpartition(".")[2].isdigit():
        return None
    return name


def ip_entry(text: str) -> str | None:
    """One address or CIDR as a canonical network string (`192.0.2.7/32`), or None when it is neither."""
    if IPV4_ADDRESS.fullmatch(text):
        return text + "/32"
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    return str(unmap_network(network))


def unmap_network(network: ipaddress.IPv4Network | ipaddress.IPv6Network):
    """An IPv4-mapped IPv6 network (`::ffff:0:0/96` and inside) as the IPv4 network it stands for."""
    if network.version == 6 and network.prefixlen >= 96 and network.network_address.ipv4_mapped is not None:
        return ipaddress.IPv4Network((int(network.network_address) & 0xFFFFFFFF, network.prefixlen - 96))
    return network


# ---------------------------------------------------------------------------------------------- the scan


class _Accumulator:
    __slots__ = ("names", "rejected", "samples", "reasons")

    def __init__(self) -> None:
        self.names: list[str] = []  # in file order, duplicates included: removed once, at the end
        self.rejected = 0
        self.samples: list[tuple[int, str]] = []
        self.reasons: list[tuple[int, str]] = []

    def take(self, number: int, line: str, outcome: Outcome) -> None:
        names, rejected = outcome
        self.names += names
        if rejected:
            self.rejected += 1
            if len(self.samples) < MAX_REJECTED_SAMPLES:
                self.samples.append((number, line.strip()[:_MAX_SAMPLE_CHARS]))
                if rejected is not True:
                    self.reasons.append((number, rejected))

    def result(self) -> ParsedFeed:
        names = self.names
        # Published feeds rarely repeat an entry: a set proves that in about half the time dict.fromkeys
        # takes to de-duplicate in order (0.2 s against 0.4 s for 1M names here), and then the list already
        # is the answer. A feed with repeats pays the set on top (its hashes are cached by then).
        if len(set(names)) != len(names):
            names = dict.fromkeys(names)  # type: ignore[assignment]
        return ParsedFeed(tuple(names), self.rejected, tuple(self.samples), tuple(self.reasons))


@dataclass(frozen=True)
class _FastForm:
    """A line shape common enough in real feeds to be taken in whole runs by C code rather than line by line.

    Every line the shape accepts must be one `parse` would turn into exactly the entries `extract` gives.
    """

    probe: re.Pattern[str]
    """Matches one line of this shape (fullmatch); used to pick the form from a sample."""
    odd_line: re.Pattern[str]
    """On "\\n" + text + "\\n": every non-blank line NOT of this shape, as group `line`."""
    guards: tuple[str, ...]
    """Rare substrings (`..`, an empty label) that the shape alone lets through wrongly."""
    odd_line_guarded: re.Pattern[str]
    """`odd_line` that also takes the lines holding a guard, for the rare text that has one."""
    extract: Callable[[str], list[str]]
    """The entries of a run of lines that are all of this shape or blank."""


def _form(shape: str, extract: Callable[[str], list[str]], guards: tuple[str, ...] = ("..",)) -> _FastForm:
    # Searching for the literal "\n" lets the regex engine skip from line to line instead of trying `^` at
    # every character, and the negative lookahead tests the shape once per line; all of it runs in C. The
    # guards cost one more pass over each line, so they are only paid for when the text holds one.
    guarded = rf"(?![^\n]*(?:{'|'.join(map(re.escape, guards))})){shape}"
    return _FastForm(
        re.compile(shape),
        re.compile(rf"\n(?!{shape}\n)(?P<line>[^\n]+)"),
        guards,
        re.compile(rf"\n(?!{guarded}\n)(?P<line>[^\n]+)"),
        extract,
    )


def _choose_form(text: str, forms: tuple[_FastForm, ...]) -> _FastForm | None:
    # Lines from the start, the middle and the end: a long comment header must not hide the body's shape.
    window = 32768
    middle = len(text) // 2
    sample = [
        line
        for part in (text[:window], text[middle : middle + window], text[-window:])
        for line in part.split("\n")[1:-1]  # the first and last may be cut
        if line and line[0] not in "#!;"
    ]
    if len(text) <= window:
        sample = [line for line in text.split("\n") if line and line[0] not in "#!;"]
    best, best_hits = None, 0
    for form in forms:
        hits = sum(1 for line in sample if form.probe.fullmatch(line))
        if hits > best_hits:
            best, best_hits = form, hits
    return best


def _scan(text: str, forms: tuple[_FastForm, ...], parser: _DomainLineParser | _IpLineParser) -> ParsedFeed:
    acc = _Accumulator()
    form = _choose_form(text, forms)
    if form is None:
        for number, line in enumerate(text.split("\n"), 1):
            acc.take(number, line, parser.parse(line))
        return acc.result()
    odd_lines = form.odd_line_guarded if any(guard in text for guard in form.guards) else form.odd_line
    padded = "\n" + text + "\n"
    start, number = 1, 1  # where the current run of dominant-shape lines starts, and its line number
    for odd in odd_lines.finditer(padded):
        end = odd.start()  # the newline before the odd line
        odd_number = number + padded.count("\n", start, end + 1)
        if start < end:
            _take_run(acc, form, parser, padded[start:end], number)
        line = odd.group("line")
        acc.take(odd_number, line, parser.parse(line))
        start, number = odd.end() + 1, odd_number + 1
    end = len(padded) - 1
    if start < end:
        _take_run(acc, form, parser, padded[start:end], number)
    return acc.result()


def _take_run(acc: _Accumulator, form: _FastForm, parser, run: str, number: int) -> None:
    if parser.inside_zone_parentheses:
        # A multi-line SOA record is open: these lines are its fields, not names.
        for offset, line in enumerate(run.split("\n")):
            acc.take(number + offset, line, parser.parse(line))
    else:
        acc.names += form.extract(run)


# ---------------------------------------------------------------------------------------------- domains

# A name `canonical_name` returns unchanged, in a shape the regex engine checks with plain character runs:
# at most 63 characters (so no label is longer and the name fits 255 octets), lower-case ASCII, no leading
# dot, and a last character that is a letter, `_` or `-` (so no trailing dot and a last label that is not all
# digits, i.e. no address). Empty labels (`a..b`) are kept out by the forms' guards. Names
# this shape leaves out (longer, ending in a digit) are still accepted, by the per-line parser.
_FAST_NAME = r"[a-z0-9_-][a-z0-9_.-]{0,61}[a-z_-]"


def _plain_run(run: str) -> list[str]:
    return run.split()


def _hosts_run(prefix: str) -> Callable[[str], list[str]]:
    def extract(run: str) -> list[str]:
        # Each line is exactly prefix + name and a name holds no space, so the prefix occurs only there.
        return run.replace(prefix, "").split()

    return extract


def _adblock_run(run: str) -> list[str]:
    return run.replace("||", SUBTREE_MARK).replace("^", "").split()  # `||name^` is `.name`: name and subdomains


def _rpz_run(run: str) -> list[str]:
    return run.replace(" cname .", "").split()


_BETWEEN_SLASHES = re.compile(r"=/([^/\n]+)/")
_URL_HOST = re.compile(r"\n[a-z][a-z0-9+.-]*://([^/:?\n]+)")  # anchored: a URL in the path is not the host
_FAST_ENTRY = re.compile(rf"(?:\*\.)?{_FAST_NAME}")


def _url_run(run: str) -> list[str]:
    return _URL_HOST.findall("\n" + run)


def _dnsmasq_run(run: str) -> list[str]:
    return _BETWEEN_SLASHES.findall(run.replace("=/", "=/" + SUBTREE_MARK))  # `/name/` is `.name` too


_DOMAIN_FORMS = (
    _form(rf"(?:\*\.)?{_FAST_NAME}", _plain_run),
    # One name per hosts line; names that hosts files use for the machine itself take the per-line path.
    _form(rf"0\.0\.0\.0 (?!localhost|local|broadcasthost|ip6-){_FAST_NAME}", _hosts_run("0.0.0.0 ")),
    _form(rf"127\.0\.0\.1 (?!localhost|local|broadcasthost|ip6-){_FAST_NAME}", _hosts_run("127.0.0.1 ")),
    _form(rf"\|\|{_FAST_NAME}\^", _adblock_run),
    # RPZ: a relative owner is the trigger itself, whatever $ORIGIN says; absolute owners and the address
    # and name-server triggers (`….rpz-ip`, `….rpz-nsdname`) take the per-line path.
    _form(rf"(?:\*\.)?{_FAST_NAME} cname \.", _rpz_run, guards=("..", ".rpz-")),
    # dnsmasq blocks: `address=` to nothing or a sink address; `server=` and `local=` to no server at all.
    _form(rf"(?:address=/{_FAST_NAME}/(?:0\.0\.0\.0|::|127\.0\.0\.1)?|(?:server|local)=/{_FAST_NAME}/)",
          _dnsmasq_run),
    # URLs without userinfo, with a port below 10000 and a path of printable ASCII other than `#` and `;`
    # (comment marks); the others take the per-line path, which asks urllib.
    _form(rf"[a-z][a-z0-9+.-]*://{_FAST_NAME}(?::[0-9]{{1,4}})?(?:[/?][!-\"$-:<-~]*)?", _url_run),
)

# Characters that no entry holds: seeing one means a syntax we did not understand (an adblock pattern,
# a path, a port, an option) or bytes that were not UTF-8 (U+FFFD).
_NOT_IN_NAMES = re.compile(r"[\s*^|$=/:@\\\"'<>\[\]{}?,&%!;#()\x00-\x1f\x7f\ufffd]")
_COSMETIC = re.compile(r"#[@?$%]?#")  # adblock element hiding (`site##.ad`): never a domain rule
_REGEX_LINE = re.compile(r"/.+/(?:\$.*)?")  # adblock `/^ad[0-9]+\./` rules, with or without modifiers
_MODIFIER_NAME = re.compile(r"[~a-z0-9_-]*=?")
_DNSMASQ_OPTION = re.compile(r"[a-z][a-z0-9-]*=/")  # `ipset=/…/`, `nftset=/…/`, `rebind-domain-ok=/…/`
_HOSTS_IGNORED = frozenset(
    (
        "localhost", "localhost.localdomain", "local", "broadcasthost", "0.0.0.0", "ip6-localhost",
        "ip6-loopback", "ip6-localnet", "ip6-mcastprefix", "ip6-allnodes", "ip6-allrouters", "ip6-allhosts",
    )
)  # fmt: skip
_SINK_ADDRESSES = frozenset(("0.0.0.0", "127.0.0.1", "::1", "::", "::0"))
_DNSMASQ_PREFIXES = ("address=/", "server=/", "local=/")
_ZONE_CLASSES = frozenset(("in", "ch", "hs", "cs"))
_ZONE_TYPES = frozenset(
    (
        "a", "aaaa", "cname", "dname", "txt", "mx", "ns", "soa", "ptr", "srv", "svcb", "https", "caa",
        "naptr", "hinfo", "loc", "ds", "dnskey", "rrsig", "nsec", "nsec3", "sshfp", "tlsa", "spf", "any",
    )
)  # fmt: skip
_ZONE_STRUCTURE_TYPES = frozenset(("soa", "ns"))
_MAX_PARENTHESISED_LINES = 12  # an SOA split one field per line, with comment lines: 8 or so
# Possessive: a run of digits is never split between repetitions. `(?:[0-9]+[smhdw]?)+` could split it in
# 2^(n-1) ways, all tried before a TTL-like token that is no TTL (`99…9cname`) is refused: minutes for 30 digits.
_ZONE_TTL = re.compile(r"(?:[0-9]++[smhdw]?)++")
# RPZ triggers on addresses and name servers, not on the queried name: nothing a domain set can hold.
_RPZ_NON_NAME_TRIGGERS = (".rpz-ip", ".rpz-nsip", ".rpz-nsdname", ".rpz-client-ip")

Outcome = tuple[tuple[str, ...], "bool | str"]
"""What one line gives: its entries, and whether it was rejected (False, True, or the reason why)."""
_IGNORED: Outcome = ((), False)
_REJECTED: Outcome = ((), True)


def _refused(reason: str) -> Outcome:
    return (), reason


# Reasons for lines that are valid syntax asking for what a name set cannot do (see the module docstring).
_EXCEPTION = "an exception (@@) asks for allow-listing, which dnswatch does not do"
_PASSTHRU = "an RPZ passthru asks for allow-listing, which dnswatch does not do"
_COSMETIC_RULE = "an element-hiding rule is about pages, not names"
_REGEX_RULE = "a /regex/ rule: dnswatch matches names and their subdomains, not patterns"
_UNANCHORED = "an adblock rule without ^ also matches longer names (||evil.com matches evil.community)"
_ADBLOCK_PATTERN = "an adblock pattern or path, not a name: dnswatch cannot match it"
_RPZ_NON_NAME = "an RPZ trigger on addresses or name servers, not on the queried name"
_DNSMASQ_FORWARD = "forwards the domain to another server: a dnsmasq line that is not a domain block"
_DNSMASQ_OTHER = "a dnsmasq option that is not a domain block"
_DNSMASQ_PATTERN = "a dnsmasq wildcard pattern: dnswatch cannot tell which names it meant"


class _DomainLineParser:
    """The per-line parser for lines outside the dominant shape; holds the little zone-file state there is."""

    __slots__ = ("origin", "inside_zone_parentheses", "_parenthesised_lines_left")

    def __init__(self) -> None:
        self.origin = ""
        self.inside_zone_parentheses = False
        self._parenthesised_lines_left = 0

    def parse(self, line: str) -> Outcome:
        """(entries, rejected) of one lower-cased line."""
        text = line.strip()
        if not text:
            return _IGNORED
        if self.inside_zone_parentheses:
            self._parenthesised_lines_left -= 1
            if ")" in text.split(";", 1)[0]:
                self.inside_zone_parentheses = False
                return _IGNORED
            if self._parenthesised_lines_left > 0:
                return _IGNORED
            # An SOA has 5 numbers: a "(" still open this far down was a stray, not a record to skip.
            self.inside_zone_parentheses = False
        first = text[0]
        if first in "#!;" or (first == "[" and text.endswith("]")):  # comments, `[Adblock Plus 2.0]`
            return _IGNORED
        if _COSMETIC.search(text):
            return _refused(_COSMETIC_RULE)
        if first == "/" and _REGEX_LINE.fullmatch(text):  # before the comment cut: `#` and `;` may be in it
            return _refused(_REGEX_RULE)
        text = _cut_comment(text)
        if not text:
            return _IGNORED
        if text.startswith("@@"):
            return _refused(_EXCEPTION)  # an adblock exception: see the module docstring
        if first == "$":
            return self._directive(text)
        if text.startswith("||"):
            return _adblock(text)
        if text.startswith(_DNSMASQ_PREFIXES):
            return _dnsmasq(text)
        if "://" in text:
            return _url(text)
        tokens = text.split()
        if len(tokens) == 1:
            if _DNSMASQ_OPTION.match(text):
                return _refused(_DNSMASQ_OTHER)
            return _names(tokens)
        if tokens[0] in _SINK_ADDRESSES or _is_address(tokens[0]):
            names = [token for token in tokens[1:] if token not in _HOSTS_IGNORED]
            return _names(names) if names else _IGNORED
        return self._zone_record(text, tokens, indented=line[:1].isspace())

    def _directive(self, text: str) -> Outcome:
        # $TTL, $ORIGIN, $INCLUDE, $GENERATE: zone-file structure, never entries.
        keyword, _, rest = text.partition(" ")
        if keyword == "$origin":
            self.origin = rest.strip().rstrip(".")
        return _IGNORED

    def _zone_record(self, text: str, tokens: list[str], indented: bool) -> Outcome:
        # [owner] [ttl] [class] type rdata…, ttl and class in either order (RFC 1035 §5.1). As in zone files,
        # only an indented line can lack the owner (it continues the previous record's).
        owner = tokens[0]
        has_owner = not indented or not (owner in _ZONE_TYPES or owner in _ZONE_CLASSES or _ZONE_TTL.fullmatch(owner))
        index = 1 if has_owner else 0
        while index < len(tokens) - 1 and (tokens[index] in _ZONE_CLASSES or _ZONE_TTL.fullmatch(tokens[index])):
            index += 1
        if tokens[index] not in _ZONE_TYPES:
            return _REJECTED
        rtype, rdata = tokens[index], tokens[index + 1 :]
        if rtype == "soa" and "(" in text and ")" not in text.split("(", 1)[1]:
            self.inside_zone_parentheses = True
            self._parenthesised_lines_left = _MAX_PARENTHESISED_LINES
        if rtype in _ZONE_STRUCTURE_TYPES and rdata:
            return _IGNORED  # the RPZ zone's own SOA and NS records
        if not _is_rpz_action(rtype, rdata):
            return _REJECTED  # free text that happens to look like a record (`this a test`)
        if not has_owner or owner == "@":
            return _IGNORED  # more data for the previous owner (or the apex): no new trigger
        if rtype == "cname" and rdata[0].startswith("rpz-passthru"):
            return _refused(_PASSTHRU)  # an RPZ allow rule: see the module docstring
        if owner.endswith("."):
            origin = self.origin
            if origin and owner == origin + ".":
                return _IGNORED
            if origin and owner.endswith("." + origin + "."):
                owner = owner[: -len(origin) - 2]
        if owner.endswith(_RPZ_NON_NAME_TRIGGERS):
            return _refused(_RPZ_NON_NAME)
        return _names([owner])  # CNAME . / *. / rpz-drop. and local data (A, AAAA, TXT) all name a trigger


def _is_rpz_action(rtype: str, rdata: list[str]) -> bool:
    # RPZ policy actions are CNAMEs (`.`, `*.`, `rpz-drop.`, a walled garden) and local data records.
    if rtype == "cname":
        return len(rdata) == 1 and (rdata[0] in (".", "*.") or domain_entry(rdata[0]) is not None)
    if rtype == "a":
        return len(rdata) == 1 and IPV4_ADDRESS.fullmatch(rdata[0]) is not None
    if rtype == "aaaa":
        return len(rdata) == 1 and ":" in rdata[0] and _is_address(rdata[0])
    return rtype == "txt" and bool(rdata) and rdata[0].startswith('"')


def _cut_comment(text: str) -> str:
    # `#` (Calico's inline comment) and `;` (zone files) cannot occur in a name, so both end the useful part.
    for mark in "#;":
        cut = text.find(mark)
        if cut >= 0:
            text = text[:cut]
    return text.rstrip()


def _adblock(text: str) -> Outcome:
    rule, dollar, modifiers = text[2:].partition("$")
    if dollar:
        # `$client=`, `$denyallow=`, `$important`, `$third-party`...: each narrows or reorders the rule in a way
        # a name set cannot follow, and dropping it would widen the rule.
        modifier = _MODIFIER_NAME.match(modifiers)
        shown = modifier.group(0) if modifier else ""
        return _refused(f"the adblock modifier ${shown} cannot be honoured: dnswatch matches names only")
    if rule.endswith("^|"):
        rule = rule[:-2]
    elif rule.endswith("^"):
        rule = rule[:-1]
    else:
        return _refused(_UNANCHORED)
    if rule.startswith(WILDCARD_MARK):
        return _names([rule])  # `||*.name^`: any name ending in `.name`, i.e. its strict subdomains
    if _NOT_IN_NAMES.search(rule):
        return _refused(_ADBLOCK_PATTERN)  # paths and patterns (`||x.com/ads^`, `||ad*.x.com^`)
    return _names([rule], SUBTREE_MARK)


def _dnsmasq(text: str) -> Outcome:
    # `address=/a/b/target`: the names between the slashes, the answer after the last one.
    directive, _, rest = text.partition("=")
    parts = rest.split("/")
    names, target = [part for part in parts[1:-1] if part], parts[-1]
    if len(parts) < 3 or parts[0] or not names:
        return _REJECTED
    if directive == "address":
        if target and not _is_address(target):
            return _REJECTED
    elif target:
        return _refused(_DNSMASQ_FORWARD)  # `server=/name/192.0.2.1`: names sent to that server
    if any("*" in name for name in names):
        return _refused(_DNSMASQ_PATTERN)
    return _names(names, SUBTREE_MARK)


def _url(text: str) -> Outcome:
    if len(text.split()) != 1:
        return _REJECTED
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port that is no number or out of range
    except ValueError:  # a bad port or bracket: a malformed URL, whose host we would only be guessing
        return _REJECTED
    host = parts.hostname  # lower-cased, without userinfo and port
    return _names([host]) if host else _REJECTED


def _names(texts: list[str], mark: str = "") -> Outcome:
    names = []
    rejected = False
    for text in texts:
        name = domain_entry(text)
        if name is None:
            rejected = True
        else:
            names.append(mark + name)
    return tuple(names), rejected or not names


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------------------------------- addresses

_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"  # no leading zeros: `010` could be octal
_IPV4 = rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}"  # written out: a repeated group is slower in re
IPV4_ADDRESS = re.compile(_IPV4)
"""A dotted-quad IPv4 address as `ip_entry` writes it (fullmatch): decimal octets 0-255, no leading zeros."""


def _ipv4_run(run: str) -> list[str]:
    return [address + "/32" for address in run.split()]


_IP_FORMS = (_form(_IPV4, _ipv4_run),)


class _IpLineParser:
    __slots__ = ()
    inside_zone_parentheses = False

    def parse(self, line: str) -> Outcome:
        """(entries, rejected) of one lower-cased line of an IPSet feed."""
        text = line.strip()
        if not text or text[0] in "#!;" or text.startswith("//"):
            return _IGNORED
        text = _cut_comment(text)  # also Spamhaus DROP's `1.10.16.0/20 ; SBL256894`
        if not text:
            return _IGNORED
        # The whole rest must be one network: a hosts line fed as an IP feed must not become `0.0.0.0/32`.
        entry = ip_entry(text) if " " not in text and "\t" not in text else None
        return ((entry,), False) if entry else _REJECTED
