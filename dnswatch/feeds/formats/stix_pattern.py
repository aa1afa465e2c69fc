"""The part of STIX 2.1 patterning a DNS feed can use: which domain names, addresses and URLs a pattern names.

    [domain-name:value = 'evil.example']
    [ipv4-addr:value = '198.51.100.7' OR ipv4-addr:value = '203.0.113.0/24']
    [url:value = 'https://evil.example/x'] OR [ipv6-addr:value IN ('2001:db8::1', '2001:db8::2')]

A pattern is observation expressions (`[...]`, grouped with parentheses if need be) joined by `OR`, each
holding comparisons joined by `OR`; a comparison is `domain-name:value`, `ipv4-addr:value`, `ipv6-addr:value`
or `url:value` `=` a quoted string (`\\'` and `\\\\` escaped), or `IN` a parenthesised list of them. Anything
else (`AND`, `FOLLOWEDBY`, qualifiers such as `WITHIN`, other operators, other objects or properties) asks for
more than one name or address being seen, or for something DNS does not show: `UnsupportedPattern` says what.
"""

from __future__ import annotations

import re

OBJECT_TYPES = ("domain-name", "ipv4-addr", "ipv6-addr", "url")
MAX_NESTING = 32
"""Parentheses nested deeper than this are refused: the parser recurses, and the pattern is the feed's text."""


class UnsupportedPattern(ValueError):
    """A pattern outside the part above; the message is the reason, for the rejected sample."""


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^'\\]|\\.)*')
      | (?P<path>[a-z0-9][a-z0-9-]*:(?:[A-Za-z0-9_-]+|'[^']*')(?:\.(?:[A-Za-z0-9_-]+|'[^']*')|\[[0-9*]+\])*)
      | (?P<punct>!=|<=|>=|[\[\](),=<>])
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*|[a-z]'[^']*'|[0-9][0-9.]*)
    )""",
    re.VERBOSE,
)


def pattern_values(pattern: str) -> list[tuple[str, str]]:
    """(object type, value) for every comparison of `pattern`, in order; raises UnsupportedPattern."""
    return _Parser(pattern).parse()


class _Parser:
    def __init__(self, pattern: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pattern[pos:].strip():
            match = _TOKEN.match(pattern, pos)
            if not match:
                raise UnsupportedPattern(f"cannot read the pattern at {pattern[pos:].strip()[:20]!r}")
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind)))
            pos = match.end()
        self.index = 0
        self.depth = 0

    def peek(self) -> str | None:
        return self.tokens[self.index][1] if self.index < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        if self.index >= len(self.tokens):
            raise UnsupportedPattern("the pattern ends too soon")
        self.index += 1
        return self.tokens[self.index - 1]

    def expect(self, value: str) -> None:
        kind, got = self.take()
        if got != value or kind == "string":
            raise UnsupportedPattern(f"expected {value!r}, found {got!r}")

    def parse(self) -> list[tuple[str, str]]:
        if not self.tokens:
            raise UnsupportedPattern("an empty pattern")
        found = self.observations()
        if self.index < len(self.tokens):
            raise UnsupportedPattern(_unsupported(self.tokens[self.index][1], "between observations"))
        return found

    def observations(self) -> list[tuple[str, str]]:
        found = self.observation()
        while self.peek() == "OR":
            self.take()
            found += self.observation()
        return found

    def nest(self) -> None:
        self.take()  # the "("
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise UnsupportedPattern(f"parentheses nested more than {MAX_NESTING} deep")

    def observation(self) -> list[tuple[str, str]]:
        if self.peek() == "(":
            self.nest()
            found = self.observations()
            self.expect(")")
            self.depth -= 1
            return found
        self.expect("[")
        found = self.comparison()
        while self.peek() == "OR":
            self.take()
            found += self.comparison()
        if self.peek() != "]":
            raise UnsupportedPattern(_unsupported(self.peek(), "inside an observation"))
        self.take()
        return found

    def comparison(self) -> list[tuple[str, str]]:
        if self.peek() == "(":
            self.nest()
            found = self.comparison()
            while self.peek() == "OR":
                self.take()
                found += self.comparison()
            self.expect(")")
            self.depth -= 1
            return found
        kind, path = self.take()
        if kind != "path":
            raise UnsupportedPattern(f"expected an object path such as domain-name:value, found {path!r}")
        object_type, _, prop = path.partition(":")
        if object_type not in OBJECT_TYPES or prop != "value":
            raise UnsupportedPattern(f"{path} is none of {', '.join(t + ':value' for t in OBJECT_TYPES)}")
        kind, op = self.take()
        if op == "=" and kind == "punct":
            return [(object_type, self.string())]
        if op == "IN" and kind == "word":
            self.expect("(")
            values = [(object_type, self.string())]
            while self.peek() == ",":
                self.take()
                values.append((object_type, self.string()))
            self.expect(")")
            return values
        raise UnsupportedPattern(f"{path} {op} ...: only = and IN are supported")

    def string(self) -> str:
        kind, token = self.take()
        if kind != "string":
            raise UnsupportedPattern(f"expected a quoted string, found {token!r}")
        return re.sub(r"\\(['\\])", r"\1", token[1:-1])


def _unsupported(token: str | None, where: str) -> str:
    if token is None:
        return f"the pattern ends {where}"
    if token in ("AND", "FOLLOWEDBY"):
        return f"{token} {where}: a name or address alone does not satisfy the pattern"
    if token in ("WITHIN", "REPEATS", "START", "STOP"):
        return f"the qualifier {token}: a name or address alone does not satisfy the pattern"
    return f"unexpected {token!r} {where}"
