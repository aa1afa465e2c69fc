"""collector.core.matchlines: the collector fills in the lines of the matches an agent left to it."""

from __future__ import annotations

import json

from collector.core.matchlines import SEARCH_BUDGET, fill_lines
from dnswatch.feeds.entrylines import EntryLines

BODIES = {("c2", 1): EntryLines("# c2\n0.0.0.0 evil.example\nplain.example\n", "DomainNameSet"),
          ("c2", 2): EntryLines("# c2\n# moved\n0.0.0.0 evil.example\n", "DomainNameSet")}


def event(*matches: dict) -> str:
    body = {"id": "6b09e3f8b26e76686f5d9752c98cd3ab", "record": {"feeds": ["c2"], "matches": list(matches)}}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def match(entry: str, version: str | None = "1", feed: str = "c2", line=None) -> dict:
    return {"name": entry, "feed": feed, "entry": entry, "section": "question", "feed_version": version,
            "line": line, "line_text": None}


def test_each_match_gets_the_line_of_its_version():
    texts = [event(match("evil.example"), match("plain.example")), event(match("evil.example", "2"))]
    filled = [json.loads(text) for text in fill_lines(texts, BODIES)]
    assert [(m["line"], m["line_text"]) for m in filled[0]["record"]["matches"]] == [
        (2, "0.0.0.0 evil.example"), (3, None)]  # the same text as the entry: no line_text
    assert filled[1]["record"]["matches"][0]["line"] == 3
    assert [e["id"] for e in filled] == ["6b09e3f8b26e76686f5d9752c98cd3ab"] * 2


def test_what_cannot_be_filled_is_left_as_it_came():
    texts = [event(match("evil.example", "9")),  # a version no longer held
             event(match("evil.example", None)),  # an agent's local feed: no collector version
             event(match("evil.example", feed="other")),
             event(match("evil.example", line=7)),  # filled already
             event(match("unknown.example")),
             '{"not": "an event", "line":null}',
             "not JSON \"line\":null"]
    assert fill_lines(texts, BODIES) is None
    assert fill_lines([event(match("evil.example"))], {}) is None


def test_only_the_changed_texts_are_encoded_again():
    untouched = event(match("evil.example", "9"))
    out = fill_lines([untouched, event(match("evil.example"))], BODIES)
    assert out[0] is untouched and '"line":2' in out[1]


def test_a_batch_searches_a_bounded_amount_of_feed_bodies():
    body = "".join(f"n{i}.example\n" for i in range(100))
    padding = "#" * (SEARCH_BUDGET // 8 - len(body) - 1) + "\n"  # a body 1/8 of the budget: 8 searches a batch
    bodies = {("c2", 1): EntryLines(body + padding, "DomainNameSet")}
    texts = [event(match(f"n{i}.example")) for i in range(8 + 5)]
    first = fill_lines(texts, bodies)
    lines = [json.loads(text)["record"]["matches"][0]["line"] for text in first]
    assert lines == [i + 1 for i in range(8)] + [None] * 5
    again = fill_lines(texts, bodies)  # the entries found are cached; the next ones get their searches
    assert [json.loads(text)["record"]["matches"][0]["line"] for text in again] == [i + 1 for i in range(len(texts))]
