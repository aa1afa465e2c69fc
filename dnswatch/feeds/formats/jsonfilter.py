"""JSONPath filter expressions, the `?(...)` of `$.*[?(@.ioc_type=='domain')].ioc_value`.

A filter keeps the members or elements `@` of a node for which its expression is true. The expression is
comparisons (`==`, `!=`, `<`, `<=`, `>`, `>=`) of relative paths (`@.key`, `@['key']`, `@[n]`, chained) and
literals (`'text'`, `"text"`, numbers, `true`, `false`, `null`), existence tests (`@.key` alone), `!`, `&&`,
`||` and parentheses, as RFC 9535 and Goessner's JSONPath write them. A path that reaches nothing makes `==`
false and `!=` true; `<` and the like compare two numbers or two strings and are false otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


class FilterError(ValueError):
    """A filter expression outside this grammar; the message says what and where."""


_MISSING = object()  # what a relative path gives when it reaches nothing

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<number>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)
      | (?P<op>==|!=|<=|>=|&&|\|\||[<>!()@.\[\]])
      | (?P<name>[A-Za-z_][A-Za-z0-9_-]*)
    )""",
    re.VERBOSE,
)
_LITERALS = {"true": True, "false": False, "null": None}
MAX_NESTING = 32
"""Parentheses and `!` nested deeper than this are refused: the parser recurses, and a path is spec text."""
_COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")


@dataclass(frozen=True)
class _Path:
    keys: tuple[str | int, ...]

    def value(self, node: Any) -> Any:
        for key in self.keys:
            if isinstance(key, str) and isinstance(node, dict) and key in node:
                node = node[key]
            elif isinstance(key, int) and isinstance(node, list) and -len(node) <= key < len(node):
                node = node[key]
            else:
                return _MISSING
        return node

    def holds(self, node: Any) -> bool:
        return self.value(node) is not _MISSING


@dataclass(frozen=True)
class _Literal:
    literal: Any

    def value(self, node: Any) -> Any:
        return self.literal


@dataclass(frozen=True)
class _Compare:
    op: str
    left: _Path | _Literal
    right: _Path | _Literal

    def holds(self, node: Any) -> bool:
        left, right = self.left.value(node), self.right.value(node)
        if self.op in ("==", "!="):
            return _equal(left, right) == (self.op == "==")
        if not (_is_number(left) and _is_number(right)) and not (isinstance(left, str) and isinstance(right, str)):
            return False
        if self.op == "<":
            return left < right
        if self.op == "<=":
            return left <= right
        if self.op == ">":
            return left > right
        return left >= right


@dataclass(frozen=True)
class _Not:
    operand: Any

    def holds(self, node: Any) -> bool:
        return not self.operand.holds(node)


@dataclass(frozen=True)
class _All:
    operands: tuple

    def holds(self, node: Any) -> bool:
        return all(operand.holds(node) for operand in self.operands)


@dataclass(frozen=True)
class _Any:
    operands: tuple

    def holds(self, node: Any) -> bool:
        return any(operand.holds(node) for operand in self.operands)


Filter = _Compare | _Not | _All | _Any | _Path


def compile_filter(text: str) -> Filter:
    """The filter in `text`, the part after `?` (`(@.type == 'domain')` or `@.type == 'domain'`)."""
    return _Parser(text).parse()


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _equal(left: Any, right: Any) -> bool:
    if left is _MISSING or right is _MISSING:
        return left is right
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right  # true is not 1
    if _is_number(left) and _is_number(right):
        return left == right
    return type(left) is type(right) and left == right


def _unquote(token: str) -> str:
    return re.sub(r"\\(.)", r"\1", token[1:-1])


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            match = _TOKEN.match(text, pos)
            if not match:
                raise FilterError(f"unexpected {text[pos:].strip()[:1]!r} in the filter {text!r}")
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind)))
            pos = match.end()
        self.index = 0
        self.depth = 0

    def parse(self) -> Filter:
        if not self.tokens:
            raise FilterError("an empty filter")
        expression = self.disjunction()
        if self.index < len(self.tokens):
            raise FilterError(f"unexpected {self.tokens[self.index][1]!r} in the filter {self.text!r}")
        return expression

    def peek(self) -> str | None:
        return self.tokens[self.index][1] if self.index < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        if self.index >= len(self.tokens):
            raise FilterError(f"the filter {self.text!r} ends too soon")
        token = self.tokens[self.index]
        self.index += 1
        return token

    def expect(self, value: str) -> None:
        kind, got = self.take()
        if got != value or kind == "string":
            raise FilterError(f"expected {value!r} in the filter {self.text!r}, found {got!r}")

    def disjunction(self) -> Filter:
        operands = [self.conjunction()]
        while self.peek() == "||":
            self.take()
            operands.append(self.conjunction())
        return operands[0] if len(operands) == 1 else _Any(tuple(operands))

    def conjunction(self) -> Filter:
        operands = [self.unary()]
        while self.peek() == "&&":
            self.take()
            operands.append(self.unary())
        return operands[0] if len(operands) == 1 else _All(tuple(operands))

    def unary(self) -> Filter:
        if self.peek() in ("!", "("):
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise FilterError(f"the filter nests '!' and '(' more than {MAX_NESTING} deep")
            if self.take()[1] == "!":
                inner = _Not(self.unary())
            else:
                inner = self.disjunction()
                self.expect(")")
            self.depth -= 1
            return inner
        left = self.operand()
        if self.peek() in _COMPARISONS:
            op = self.take()[1]
            return _Compare(op, left, self.operand())
        if isinstance(left, _Literal):
            raise FilterError(f"a literal alone is no test in the filter {self.text!r}")
        return left

    def operand(self) -> _Path | _Literal:
        kind, value = self.take()
        if kind == "string":
            return _Literal(_unquote(value))
        if kind == "number":
            return _Literal(float(value) if any(c in value for c in ".eE") else int(value))
        if kind == "name" and value in _LITERALS:
            return _Literal(_LITERALS[value])
        if value != "@" or kind != "op":
            raise FilterError(f"expected '@' or a literal in the filter {self.text!r}, found {value!r}")
        keys: list[str | int] = []
        while self.peek() in (".", "["):
            if self.take()[1] == ".":
                kind, name = self.take()
                if kind != "name":
                    raise FilterError(f"expected a member name after '.' in the filter {self.text!r}")
                keys.append(name)
            else:
                kind, key = self.take()
                if kind == "string":
                    keys.append(_unquote(key))
                elif kind == "number" and re.fullmatch(r"-?[0-9]+", key):
                    keys.append(int(key))
                else:
                    raise FilterError(f"expected a quoted key or an index in [] in the filter {self.text!r}")
                self.expect("]")
        return _Path(tuple(keys))
