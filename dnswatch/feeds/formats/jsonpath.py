"""The JSONPath Calico's threat feeds accept (github.com/yalp/jsonpath), with filters.

`$` (also written `$.`) is the document; `.key` and `["key"]` (or `['key']`) a member; `[n]` an element (negative
counts from the end); `[a,b]` several; `[start:end:step]` a slice; `*` and `[*]` every member or element; `..`
followed by a key, `*` or a bracket searches every depth; `[?(expression)]` (or `[?expression]`) keeps the
members or elements for which the expression holds (`dnswatch.feeds.formats.jsonfilter`). Script expressions
(`[(@.length-1)]`) are not supported. Before the first step that can select several nodes a missing member is
an error (the path is wrong for this document); after one, it only selects nothing.

Why our own and not a JSONPath library from PyPI: jsonpath-ng (which has filters) took 7.9 s to select
`$.data[*].domain` from a document of a million objects where this module takes 0.11 s, and 11.8 s for
`$..domain` against 1.3 s; the whole load of a 1M-entry feed has 2 s (docs/architecture.md). Its dialect
also differs from Calico's in paths manifests already use (`$.` is an error to it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dnswatch.feeds.formats.jsonfilter import FilterError, compile_filter


class JsonPathError(ValueError):
    """A JSONPath outside the subset, or one that does not fit the document."""


_NAME = re.compile(r"[^.\[\]\s'\"]+")  # a member name after `.`: anything up to the next step
_BARE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")  # an unquoted key inside brackets
_INT = re.compile(r"-?[0-9]+")
_STRING = re.compile(r"\"((?:[^\"\\]|\\.)*)\"|'((?:[^'\\]|\\.)*)'")


@dataclass(frozen=True)
class JsonPath:
    """A compiled path; `select` applies it to a decoded JSON document."""

    text: str
    steps: tuple[tuple, ...]

    def select(self, document: Any) -> tuple[list[Any], bool]:
        """(the selected nodes, whether the path could select several); raises JsonPathError on a wrong path."""
        nodes = [document]
        several = False
        for step in self.steps:
            op = step[0]
            if op == "members":
                nodes = _members(nodes, step[1], strict=not several, path=self.text)
                several = several or len(step[1]) > 1
            elif op == "every":
                nodes = [child for node in nodes for child in _children(node)]
                several = True
            elif op == "filter":
                nodes = [child for node in nodes for child in _children(node) if step[1].holds(child)]
                several = True
            elif op == "slice":
                nodes = [child for node in nodes if isinstance(node, list) for child in node[step[1]]]
                several = True
            elif op == "descend":  # the nodes themselves and every node below, in document order
                nodes = [found for node in nodes for found in _walk(node)]
                several = True
            else:  # "descendants": every node below, in document order
                nodes = [found for node in nodes for found in _walk(node)[1:]]
                several = True
        return nodes, several


def compile_json_path(text: str) -> JsonPath:
    """Parse `text` once; raises JsonPathError naming what is wrong and where."""
    if not isinstance(text, str) or not text.startswith("$"):
        raise JsonPathError("a JSONPath starts with '$'")
    steps: list[tuple] = []
    pos = 1
    if text == "$.":
        return JsonPath(text, ())
    while pos < len(text):
        char = text[pos]
        if text.startswith("..", pos):
            steps.append(("descend",))
            pos += 2
            if pos >= len(text):
                raise JsonPathError(f"{text!r}: '..' must be followed by a name, '*' or a bracket")
            if text.startswith(("*", "[*]"), pos):
                steps[-1] = ("descendants",)  # `..*`: every node below, in document order
                pos += 1 if text[pos] == "*" else 3
            elif text[pos] != "[":
                pos = _dotted(text, pos, steps)
        elif char == ".":
            pos = _dotted(text, pos + 1, steps)
        elif char == "[":
            pos = _bracket(text, pos + 1, steps)
        else:
            raise JsonPathError(f"{text!r}: unexpected {char!r} at {pos}")
    return JsonPath(text, tuple(steps))


def _dotted(text: str, pos: int, steps: list[tuple]) -> int:
    if text.startswith("*", pos):
        steps.append(("every",))
        return pos + 1
    match = _NAME.match(text, pos)
    if not match:
        raise JsonPathError(f"{text!r}: expected a member name at {pos}")
    steps.append(("members", (match.group(),)))
    return match.end()


def _bracket(text: str, pos: int, steps: list[tuple]) -> int:
    close = _closing_bracket(text, pos)
    inner = text[pos:close].strip()
    if inner.startswith("("):
        raise JsonPathError(f"{text!r}: script expressions such as [(@.length-1)] are not supported")
    if inner.startswith("?"):
        try:
            steps.append(("filter", compile_filter(inner[1:])))
        except FilterError as error:
            raise JsonPathError(f"{text!r}: {error}") from None
    elif inner == "*":
        steps.append(("every",))
    elif ":" in inner and not _STRING.match(inner):
        parts = [part.strip() for part in inner.split(":")]
        if len(parts) > 3 or not all(part == "" or _INT.fullmatch(part) for part in parts):
            raise JsonPathError(f"{text!r}: a slice is [start:end:step] with integers")
        start, end, *rest = (int(part) if part else None for part in parts)
        step = rest[0] if rest else None
        if step == 0:
            raise JsonPathError(f"{text!r}: a slice step cannot be 0")
        steps.append(("slice", slice(start, end, step)))
    else:
        steps.append(("members", tuple(_union_items(text, inner))))
    return close + 1


def _closing_bracket(text: str, pos: int) -> int:
    # Brackets nest inside a filter (`[?(@['a'] == 1)]`), so the one that closes is the one at depth 0.
    quote = None
    depth = 0
    index = pos
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "[":
            depth += 1
        elif char == "]":
            if depth == 0:
                return index
            depth -= 1
        index += 1
    raise JsonPathError(f"{text!r}: '[' at {pos - 1} is never closed")


def _union_items(text: str, inner: str) -> list[str | int]:
    items: list[str | int] = []
    pos = 0
    while True:
        while pos < len(inner) and inner[pos] == " ":
            pos += 1
        string = _STRING.match(inner, pos)
        number = _INT.match(inner, pos)
        name = _BARE_NAME.match(inner, pos)
        if string:
            raw = string.group(1) if string.group(1) is not None else string.group(2)
            items.append(re.sub(r"\\(.)", r"\1", raw))
            pos = string.end()
        elif number:
            items.append(int(number.group()))
            pos = number.end()
        elif name:
            items.append(name.group())
            pos = name.end()
        else:
            raise JsonPathError(f"{text!r}: expected a key or an index in [{inner}]")
        while pos < len(inner) and inner[pos] == " ":
            pos += 1
        if pos == len(inner):
            return items
        if inner[pos] != ",":
            raise JsonPathError(f"{text!r}: expected ',' or ']' in [{inner}]")
        pos += 1


def _members(nodes: list[Any], keys: tuple[str | int, ...], strict: bool, path: str) -> list[Any]:
    found = []
    for node in nodes:
        for key in keys:
            if isinstance(node, dict) and isinstance(key, str) and key in node:
                found.append(node[key])
            elif isinstance(node, list) and isinstance(key, int) and -len(node) <= key < len(node):
                found.append(node[key])
            elif strict:
                what = f"member {key!r}" if isinstance(key, str) else f"element {key}"
                raise JsonPathError(f"{path}: the document has no {what} there (found {_kind(node)})")
    return found


def _children(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return list(node.values())
    if isinstance(node, list):
        return node
    return []


def _walk(root: Any) -> list[Any]:
    # An explicit stack: a deeply nested document must not hit Python's recursion limit.
    out = []
    stack = [root]
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(reversed(_children(node)))
    return out


def _kind(node: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string"}.get(type(node), "a scalar")
