"""The selector language of alert exceptions and webhook queries: a table of selectors against events, the
errors and their positions, the canonical text, and hypothesis-fuzzed text that must parse or raise
SelectorError, never anything else."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dnswatch.selector import MAX_DEPTH, SelectorError, parse_selector

EVENT = {
    "id": "e1", "type": "gtf_suspicious_dns_query", "severity": 100, "origin": "Suspicious DNS Query",
    "host": "node-1", "source_namespace": "shop", "source_name": "web-7d4b9c-x2k9p",
    "source_labels": {"app": "web", "app.kubernetes.io/name": "storefront"},
    "record": {"feeds": ["c2", "ads"], "suspicious_domains": ["x.cdn.example"], "count": 3, "retro": False,
               "qname": "x.cdn.example", "answers": []},
}

CASES = [
    ('source_namespace = "shop"', True),
    ("source_namespace = shop", True),
    ("source_namespace == shop", True),
    ('source_namespace = "Shop"', False),  # case-sensitive, as stored
    ("source_namespace != shop", False),
    ("source_namespace != kube-system", True),
    ('"record.suspicious_domains" IN {"*.cdn.example"}', True),
    ("record.suspicious_domains IN {other.example, *.cdn.example}", True),
    ("record.suspicious_domains NOT IN {*.cdn.example}", False),
    ("record.suspicious_domains not in {a.example}", True),
    ("record.feeds = ads", True),  # any element of a list
    ("record.feeds != ads", False),
    ("record.feeds = c?", True),
    ("record.feeds = c", False),
    ("record.feeds = *", True),
    ("record.answers = *", False),  # an empty list has nothing to match
    ("record.answers != *", True),
    ("missing = *", False),
    ("missing != anything", True),
    ("severity = 100", True),
    ('severity = "100"', True),  # numbers compare as JSON writes them
    ("record.count IN {1, 2, 3}", True),
    ("record.retro = false", True),
    ("source_labels.app = web", True),
    ('"source_labels.app.kubernetes.io/name" = storefront', True),  # a key with dots, found whole
    ('origin = "Suspicious DNS Query" and source_namespace = "shop"', True),  # Calico's own example's shape
    ("source_namespace = shop AND host = node-2", False),
    ("source_namespace = shop AND host = node-2 OR type = gtf_suspicious_dns_query", True),
    ("source_namespace = shop AND (host = node-2 OR type = other)", False),
    ("NOT host = node-2", True),
    ("NOT NOT host = node-2", False),
    ("NOT (host = node-1 AND severity = 100)", False),
    ("host = node-2 OR NOT source_namespace = kube-system", True),
    ('source_name = "web-*"', True),
    ('source_name = "web-\\*"', False),  # an escaped star stands for itself
    ('source_name = "web-\\\\*"', False),  # a backslash, then any run: the name holds no backslash
    ('"record.qname" = "x.cdn.example"', True),
    ('record.qname = "x.cdn.exampl?"', True),
    ('record.qname = "x.cdn.exampl\\?"', False),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_a_selector_matches_what_it_says(text, expected) -> None:
    assert parse_selector(text).matches(EVENT) is expected


def test_a_star_in_quotes_escaped_matches_only_a_star() -> None:
    selector = parse_selector('source_name = "a\\*b"')
    assert selector.matches({"source_name": "a*b"}) and not selector.matches({"source_name": "axxb"})
    assert parse_selector('source_name = "say \\"hi\\""').matches({"source_name": 'say "hi"'})
    assert parse_selector('source_name = "back\\\\*"').matches({"source_name": "back\\slash"})


ERRORS = [
    ("", 1, "expected a field name before the end"),
    ("source_namespace", 17, "expected =, !=, IN or NOT IN after 'source_namespace', before the end"),
    ("source_namespace = ", 20, "expected a value before the end"),
    ('source_namespace = "shop', 20, "a quoted string is not closed"),
    ("a = b c = d", 7, "expected AND, OR or the end before 'c'"),
    ("a = b AND", 10, "expected a field name before the end"),
    ("a IN b", 6, "expected '{' to open a set, before 'b'"),
    ("a IN {b c}", 9, "expected ',' or '}' before 'c'"),
    ("a NOT = b", 7, "expected IN after NOT, before '='"),
    ("(a = b", 7, "expected ')' before the end"),
    ("a = b)", 6, "expected AND, OR or the end before ')'"),
    ("a = b & c = d", 7, "unexpected '&': quote values that hold it"),
    ('"" = b', 1, "a field name is not empty"),
    ("AND = b", 1, "expected a field name before 'AND'"),
]


@pytest.mark.parametrize(("text", "position", "reason"), ERRORS)
def test_a_selector_that_does_not_parse_names_the_position(text, position, reason) -> None:
    with pytest.raises(SelectorError) as raised:
        parse_selector(text)
    assert (raised.value.position, raised.value.reason) == (position, reason)
    assert str(raised.value) == f"position {position}: {reason}"


def test_nesting_is_bounded() -> None:
    parse_selector("(" * MAX_DEPTH + "a = b" + ")" * MAX_DEPTH)
    with pytest.raises(SelectorError, match="nested more than"):
        parse_selector("(" * (MAX_DEPTH + 2) + "a = b" + ")" * (MAX_DEPTH + 2))
    with pytest.raises(SelectorError, match="nested more than"):
        parse_selector("NOT " * (MAX_DEPTH + 2) + "a = b")


def test_the_canonical_text_reads_back_as_the_same_selector() -> None:
    text = ('NOT (a = "x y" OR b IN {"*.cdn", "and"}) AND (c != d AND e NOT IN {"q\\*"}) OR '
            '"label.with space" = v')
    selector = parse_selector(text)
    assert str(selector) == ('NOT (a = "x y" OR b IN {*.cdn, "and"}) AND (c != d AND e NOT IN {"q\\*"}) OR '
                             '"label.with space" = v')
    assert parse_selector(str(selector)) == selector
    assert selector.keys() == {"a", "b", "c", "e", "label.with space"}


# -- fuzzed ---------------------------------------------------------------------------------------------------

pieces = st.sampled_from(["a", "b.c", '"k k"', "=", "!=", "==", "IN", "NOT", "not", "AND", "or", "(", ")", "{",
                          "}", ",", '"v*"', "x?", "*", '"\\\\"', '"', "\\", " ", "&", "100", "é"])


@settings(max_examples=2000, deadline=None)
@given(text=st.one_of(st.text(max_size=60), st.lists(pieces, max_size=25).map(" ".join),
                      st.lists(pieces, max_size=25).map("".join)))
def test_any_text_parses_or_says_where_it_does_not(text) -> None:
    try:
        selector = parse_selector(text)
    except SelectorError as error:
        assert 1 <= error.position <= len(text) + 1
        return
    assert parse_selector(str(selector)) == selector
    selector.matches(EVENT)
    selector.matches({})
