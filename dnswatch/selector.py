"""The selector language of alert exceptions and webhook queries (pure): Calico's queries over security events.

    source_namespace = "shop" AND "record.suspicious_domains" IN {"*.cdn.example", "telemetry.*"}
    NOT (type = gtf_suspicious_dns_query OR severity != 100)

- A comparison is `KEY = VALUE`, `KEY != VALUE`, `KEY IN {V, ...}` or `KEY NOT IN {V, ...}`. A key is a
  field of the event, a dotted path into it (`record.qname`), bare or in double quotes; a value is a word
  (letters, digits and `_-.:/*?@`) or a double-quoted string, in which a backslash makes the next
  character stand for itself (`\\"`, `\\\\`).
- In values, `*` stands for any run of characters and `?` for one; `\\*` and `\\?` (in quotes) for
  themselves.
- `AND` binds tighter than `OR`, `NOT` tighter than both, parentheses group; keywords are case-insensitive
  (Calico's own examples write `and`).
- A field holding a list (`record.feeds`) matches `=` and `IN` when any element does; `!=` and `NOT IN` are
  their negations, so a field the event does not have is `!=` everything. Numbers and booleans compare as
  they are written in JSON (`severity = 100`, `record.retro = true`); strings compare case-sensitively, as
  stored (domain names are stored lower case).

A selector that does not parse raises SelectorError with the position (from 1) of the first character that
does not fit and what was expected there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Union

__all__ = ["And", "Comparison", "Not", "Or", "Selector", "SelectorError", "parse_selector"]

MAX_LENGTH = 10_000
"""A selector longer than this is refused: it is written by people, and matched against every event."""
MAX_DEPTH = 64
"""Nesting of parentheses and NOTs, at most: the parser recurses."""


class SelectorError(ValueError):
    """A selector that does not parse: `position` (1-based) and what was expected there."""

    def __init__(self, position: int, message: str) -> None:
        super().__init__(f"position {position}: {message}")
        self.position = position
        self.reason = message


@dataclass(frozen=True)
class Comparison:
    key: str
    """The field, as it names it (no escapes)."""
    operator: str  # "=", "!=", "in", "not in"
    values: tuple[str, ...]
    """As written between the quotes, escapes kept: `\\*` is a star, `*` a wildcard."""

    def __str__(self) -> str:
        if self.operator in ("=", "!="):
            return f"{_quoted_key(self.key)} {self.operator} {_quoted_value(self.values[0])}"
        listed = ", ".join(_quoted_value(value) for value in self.values)
        return f"{_quoted_key(self.key)} {self.operator.upper()} {{{listed}}}"


@dataclass(frozen=True)
class Not:
    operand: Node

    def __str__(self) -> str:
        return f"NOT {_grouped(self.operand, 3)}"


@dataclass(frozen=True)
class And:
    operands: tuple[Node, ...]

    def __str__(self) -> str:
        return " AND ".join(_grouped(operand, 2) for operand in self.operands)


@dataclass(frozen=True)
class Or:
    operands: tuple[Node, ...]

    def __str__(self) -> str:
        return " OR ".join(_grouped(operand, 1) for operand in self.operands)


Node = Union[Comparison, Not, And, Or]


class Selector:
    """A parsed selector: `matches(event)` for an event as a dict (docs/event.md); `str()` its canonical text."""

    def __init__(self, tree: Node, text: str) -> None:
        self.tree = tree
        self.text = text
        self._test = _compile(tree)

    def matches(self, event: dict[str, Any]) -> bool:
        return self._test(event)

    def keys(self) -> set[str]:
        """The fields the selector reads."""
        found: set[str] = set()

        def walk(node: Node) -> None:
            if isinstance(node, Comparison):
                found.add(node.key)
            elif isinstance(node, Not):
                walk(node.operand)
            else:
                for operand in node.operands:
                    walk(operand)

        walk(self.tree)
        return found

    def __str__(self) -> str:
        return str(self.tree)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Selector) and other.tree == self.tree

    def __hash__(self) -> int:
        return hash(self.tree)

    def __repr__(self) -> str:
        return f"Selector({str(self)!r})"


def parse_selector(text: str) -> Selector:
    """The selector `text` says; SelectorError naming the position if it is not one."""
    if not isinstance(text, str):
        raise SelectorError(1, f"a selector is text, not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise SelectorError(MAX_LENGTH + 1, f"a selector is at most {MAX_LENGTH:,} characters")
    parser = _Parser(_tokens(text), len(text))
    tree = parser.expression(0)
    parser.expect_end()
    return Selector(tree, text)


# -- tokens -------------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<open_string>"(?:[^"\\]|\\.)*\\?$)
  | (?P<op>!=|==|=|\(|\)|\{|\}|,)
  | (?P<word>[A-Za-z0-9_\-.:/*?@]+)
""", re.VERBOSE | re.DOTALL)

_KEYWORDS = {"and", "or", "not", "in"}


@dataclass(frozen=True)
class _Token:
    kind: str  # "string", "word", "keyword", "op", "end"
    text: str  # a string's text between its quotes, escapes kept; a keyword lower case
    position: int  # 1-based


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        found = _TOKEN.match(text, position)
        if found is None:
            raise SelectorError(position + 1, f"unexpected {text[position]!r}: quote values that hold it")
        kind = found.lastgroup
        if kind == "open_string":
            raise SelectorError(position + 1, "a quoted string is not closed")
        if kind == "string":
            tokens.append(_Token("string", found.group()[1:-1], position + 1))
        elif kind == "word":
            word = found.group()
            lowered = word.lower()
            tokens.append(_Token("keyword", lowered, position + 1) if lowered in _KEYWORDS
                          else _Token("word", word, position + 1))
        elif kind == "op":
            tokens.append(_Token("op", "=" if found.group() == "==" else found.group(), position + 1))
        position = found.end()
    tokens.append(_Token("end", "", len(text) + 1))
    return tokens


def _unescaped(body: str) -> str:
    return re.sub(r"\\(.)", r"\1", body, flags=re.DOTALL)


# -- the parser -------------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, tokens: list[_Token], length: int) -> None:
        self._tokens = tokens
        self._at = 0

    def _peek(self) -> _Token:
        return self._tokens[self._at]

    def _take(self) -> _Token:
        token = self._tokens[self._at]
        self._at += 1
        return token

    def _is(self, kind: str, text: str | None = None) -> bool:
        token = self._peek()
        return token.kind == kind and (text is None or token.text == text)

    def expect_end(self) -> None:
        token = self._peek()
        if token.kind != "end":
            raise SelectorError(token.position, f"expected AND, OR or the end before {_shown(token)}")

    def expression(self, depth: int) -> Node:
        operands = [self._conjunction(depth)]
        while self._is("keyword", "or"):
            self._take()
            operands.append(self._conjunction(depth))
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def _conjunction(self, depth: int) -> Node:
        operands = [self._unary(depth)]
        while self._is("keyword", "and"):
            self._take()
            operands.append(self._unary(depth))
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def _unary(self, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise SelectorError(self._peek().position, f"nested more than {MAX_DEPTH} deep")
        if self._is("keyword", "not"):
            self._take()
            return Not(self._unary(depth + 1))
        if self._is("op", "("):
            self._take()
            inner = self.expression(depth + 1)
            if not self._is("op", ")"):
                raise SelectorError(self._peek().position, f"expected ')' before {_shown(self._peek())}")
            self._take()
            return inner
        return self._comparison()

    def _comparison(self) -> Comparison:
        token = self._take()
        if token.kind not in ("word", "string"):
            raise SelectorError(token.position, f"expected a field name before {_shown(token)}")
        key = _unescaped(token.text) if token.kind == "string" else token.text
        if not key:
            raise SelectorError(token.position, "a field name is not empty")
        operator_token = self._take()
        if operator_token.kind == "op" and operator_token.text in ("=", "!="):
            return Comparison(key, operator_token.text, (self._value(),))
        if operator_token.kind == "keyword" and operator_token.text == "not":
            if not self._is("keyword", "in"):
                raise SelectorError(self._peek().position, f"expected IN after NOT, before {_shown(self._peek())}")
            self._take()
            return Comparison(key, "not in", self._set())
        if operator_token.kind == "keyword" and operator_token.text == "in":
            return Comparison(key, "in", self._set())
        raise SelectorError(operator_token.position,
                            f"expected =, !=, IN or NOT IN after {key!r}, before {_shown(operator_token)}")

    def _value(self) -> str:
        token = self._take()
        if token.kind not in ("word", "string"):
            raise SelectorError(token.position, f"expected a value before {_shown(token)}")
        return token.text

    def _set(self) -> tuple[str, ...]:
        if not self._is("op", "{"):
            raise SelectorError(self._peek().position, f"expected '{{' to open a set, before {_shown(self._peek())}")
        self._take()
        values = [self._value()]
        while self._is("op", ","):
            self._take()
            values.append(self._value())
        if not self._is("op", "}"):
            raise SelectorError(self._peek().position, f"expected ',' or '}}' before {_shown(self._peek())}")
        self._take()
        return tuple(values)


def _shown(token: _Token) -> str:
    if token.kind == "end":
        return "the end"
    if token.kind == "string":
        return f'"{token.text}"'

    return repr(token.text.upper() if token.kind == "keyword" else token.text)


# -- matching -----------------------------------------------------------------------------------------------


def _compile(node: Node) -> Callable[[dict[str, Any]], bool]:
    if isinstance(node, Comparison):
        return _compiled_comparison(node)
    if isinstance(node, Not):
        inner = _compile(node.operand)
        return lambda event: not inner(event)
    tests = [_compile(operand) for operand in node.operands]
    if isinstance(node, And):
        return lambda event: all(test(event) for test in tests)
    return lambda event: any(test(event) for test in tests)


def _compiled_comparison(node: Comparison) -> Callable[[dict[str, Any]], bool]:
    path = node.key.split(".")
    matchers = [_value_matcher(value) for value in node.values]

    def any_matches(event: dict[str, Any]) -> bool:
        return any(matcher(text) for text in _texts(_lookup(event, path)) for matcher in matchers)

    if node.operator in ("=", "in"):
        return any_matches
    return lambda event: not any_matches(event)


def _lookup(event: Any, path: list[str]) -> Any:
    value = event
    for part in path:
        if not isinstance(value, dict) or part not in value:
            # A key holding dots itself (a label such as `app.kubernetes.io/name`) is found whole.
            return _lookup_with_dotted_keys(event, path) if len(path) > 1 else None
        value = value[part]
    return value


def _lookup_with_dotted_keys(value: Any, path: list[str]) -> Any:
    """`source_labels.app.kubernetes.io/name`: the longest key present at each level, dots and all."""
    if not path:
        return value
    if not isinstance(value, dict):
        return None
    for end in range(len(path), 0, -1):
        key = ".".join(path[:end])
        if key in value:
            return _lookup_with_dotted_keys(value[key], path[end:])
    return None


def _texts(value: Any) -> Iterable[str]:
    """A field's value as the texts a comparison looks at: a list's elements, each as JSON writes it."""
    if value is None:
        return ()
    items = value if isinstance(value, list) else (value,)
    return [item if isinstance(item, str) else json.dumps(item, separators=(",", ":")) for item in items]


def _value_matcher(value: str) -> Callable[[str], bool]:
    literal, pattern = [], []
    wild, index = False, 0
    while index < len(value):
        char = value[index]
        if char == "\\" and index + 1 < len(value):
            literal.append(value[index + 1])
            pattern.append(re.escape(value[index + 1]))
            index += 2
            continue
        if char == "*":
            wild = True
            if pattern[-1:] != [".*"]:  # runs of * are one: `a**b` must not backtrack more than `a*b`
                pattern.append(".*")
        elif char == "?":
            wild = True
            pattern.append(".")
        else:
            literal.append(char)
            pattern.append(re.escape(char))
        index += 1
    if not wild:
        return "".join(literal).__eq__
    compiled = re.compile("".join(pattern), re.DOTALL)
    return lambda text: compiled.fullmatch(text) is not None


# -- canonical text ---------------------------------------------------------------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_\-.:/@]+")
_BARE_VALUE = re.compile(r"[A-Za-z0-9_\-.:/*?@]+")


def _quoted_key(key: str) -> str:
    if _BARE_KEY.fullmatch(key) and key.lower() not in _KEYWORDS:
        return key
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _quoted_value(value: str) -> str:
    # Kept as written: a value's escapes are part of what it means.
    if _BARE_VALUE.fullmatch(value) and value.lower() not in _KEYWORDS:
        return value
    return f'"{value}"'


_PRECEDENCE = {Or: 1, And: 2, Not: 3, Comparison: 4}


def _grouped(node: Node, within: int) -> str:
    """An operand as text, in parentheses where its operator binds less tightly than the one it is in, or
    as tightly (so that `a AND (b AND c)` reads back as the tree it is)."""
    precedence = _PRECEDENCE[type(node)]
    return str(node) if precedence > within or (precedence == within == 3) else f"({node})"
