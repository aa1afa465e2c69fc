"""Pull policy (collector.core.pulling): retries, schedule, suspect bodies, secrets, and judging a body."""

from __future__ import annotations

import gzip
import pickle
import random
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest

from dnswatch.feeds.formats import NEWLINE_DELIMITED, JsonFormat
from dnswatch.feeds.lines import DOMAIN_NAME_SET, ParsedFeed
from dnswatch.feeds.outcomes import FAILED, REFUSED, UNCHANGED, UPDATED
from collector.core.pulling import (
    CONNECTION,
    HTTP_STATUS,
    PROTOCOL,
    TIMEOUT,
    TOO_LARGE,
    PullFailure,
    RetryPolicy,
    SchedulePolicy,
    Secret,
    SuspectPolicy,
    Validators,
    header_value_problem,
    judge_body,
    looks_like_html,
    suspect_reason,
)
from dnswatch.feeds.status import PARSE_FAILED, SUSPECT_BODY, FeedStatus, after_success, entries_sha256

NOW = datetime(2026, 11, 27, 22, 0, 0, tzinfo=timezone.utc)

# ---------------------------------------------------------------------------------------------- retries


@pytest.mark.parametrize(
    ("failure", "retryable"),
    [
        (PullFailure(TIMEOUT, "t"), True),
        (PullFailure(CONNECTION, "reset"), True),
        (PullFailure(HTTP_STATUS, "HTTP 500", 500), True),
        (PullFailure(HTTP_STATUS, "HTTP 503", 503), True),
        (PullFailure(HTTP_STATUS, "HTTP 599", 599), True),
        (PullFailure(HTTP_STATUS, "HTTP 401", 401), False),
        (PullFailure(HTTP_STATUS, "HTTP 404", 404), False),
        (PullFailure(HTTP_STATUS, "HTTP 429", 429), False),
        (PullFailure(TOO_LARGE, "big"), False),
        (PullFailure(PROTOCOL, "loop"), False),
    ],
)
def test_only_timeouts_connection_errors_and_5xx_are_retried(failure, retryable):
    assert failure.retryable is retryable
    assert RetryPolicy(attempts=3).should_retry(failure, 1) is retryable


def test_retries_stop_after_the_last_attempt():
    policy = RetryPolicy(attempts=3)
    failure = PullFailure(TIMEOUT, "t")
    assert [policy.should_retry(failure, attempt) for attempt in (1, 2, 3)] == [True, True, False]


def test_backoff_is_full_jitter_on_a_doubling_capped_range():
    policy = RetryPolicy(attempts=10, base_seconds=1.0, cap_seconds=8.0)
    delays = [policy.delay(retry, random.Random(7)) for retry in range(1, 8)]
    expected = [random.Random(7).uniform(0.0, bound) for bound in (1, 2, 4, 8, 8, 8, 8)]
    assert delays == expected
    rng = random.Random(1)
    for retry in range(1, 6):
        for _ in range(200):
            assert 0.0 <= policy.delay(retry, rng) <= min(8.0, 2.0 ** (retry - 1))


# ---------------------------------------------------------------------------------------------- schedule


def test_next_pull_is_the_period_within_ten_percent():
    policy = SchedulePolicy()
    rng = random.Random(3)
    delays = [policy.next_pull_delay(3600.0, rng) for _ in range(500)]
    assert all(3240.0 <= d <= 3960.0 for d in delays)
    assert max(delays) - min(delays) > 500  # really jittered, both ways
    assert policy.next_pull_delay(3600.0, random.Random(5)) == 3600.0 * random.Random(5).uniform(0.9, 1.1)


def test_failed_pulls_come_back_sooner_doubling_up_to_the_period():
    policy = SchedulePolicy(jitter=0.0, failure_base_seconds=60.0)
    rng = random.Random(0)
    assert [policy.next_pull_delay(600.0, rng, failures) for failures in range(6)] == [
        600.0, 60.0, 120.0, 240.0, 480.0, 600.0,
    ]  # fmt: skip


def test_first_pull_waits_for_what_is_left_of_the_period():
    policy = SchedulePolicy(jitter=0.0)
    rng = random.Random(0)
    assert policy.first_pull_delay(3600.0, None, NOW, rng) == 0.0
    ten_minutes_ago = (NOW - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert policy.first_pull_delay(3600.0, ten_minutes_ago, NOW, rng) == 3000.0
    two_hours_ago = (NOW - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert policy.first_pull_delay(3600.0, two_hours_ago, NOW, rng) == 0.0
    assert policy.first_pull_delay(3600.0, "garbage", NOW, rng) == 0.0
    jittered = SchedulePolicy().first_pull_delay(3600.0, ten_minutes_ago, NOW, random.Random(9))
    assert 3000.0 - 360.0 <= jittered <= 3000.0 + 360.0


# ---------------------------------------------------------------------------------------------- suspect bodies


@pytest.mark.parametrize(
    ("content_type", "body", "html"),
    [
        ("text/html; charset=utf-8", b"a.example\n", True),
        ("application/xhtml+xml", b"", True),
        ("TEXT/HTML", b"", True),
        ("text/plain", b"<!DOCTYPE html><html></html>", True),
        (None, b"\xef\xbb\xbf\n  <html lang=en>", True),
        (None, gzip.compress(b"<!doctype html>\n<html>"), True),
        ("text/plain", b"a.example\n<html>\n", False),
        ("text/plain", b"# <html> in a comment\n", False),
        (None, gzip.compress(b"a.example\n"), False),
        (None, b"\x1f\x8b broken gzip", False),
        ("application/json", b'{"html": 1}', False),
    ],
)
def test_html_is_recognised_by_type_or_by_its_start(content_type, body, html):
    assert looks_like_html(content_type, body) is html


@pytest.mark.parametrize(
    ("entries", "in_force", "suspect"),
    [
        (0, None, False),  # the first pull may be empty
        (0, 0, False),
        (0, 99, False),  # a small feed may be emptied on purpose
        (0, 100, True),
        (0, 1_000_000, True),
        (10, 100, False),  # exactly 90 % smaller
        (9, 100, True),
        (1, 11, True),
        (1, 10, False),
        (5000, 100, False),  # growing is fine
    ],
)
def test_empty_after_a_large_set_and_a_shrink_over_90_percent_are_suspect(entries, in_force, suspect):
    reason = suspect_reason(entries, in_force)
    assert (reason is not None) is suspect


def test_suspect_reasons_say_why():
    assert suspect_reason(0, 250) == "the body has no entries while the set in force has 250"
    assert suspect_reason(5, 100) == (
        "the set would shrink by 95.0 % (from 100 to 5 entries), more than the 90 % allowed"
    )
    assert suspect_reason(0, 20, SuspectPolicy(empty_after_at_least=10)) is not None


# ---------------------------------------------------------------------------------------------- secrets


def test_a_secret_shows_only_stars():
    secret = Secret("hunter2-api-key")
    assert secret.reveal() == "hunter2-api-key"
    for shown in (repr(secret), str(secret), f"{secret}", f"{secret!r}", f"{secret:>30}", "%s %r" % (secret, secret)):
        assert "hunter2" not in shown
    assert "hunter2" not in repr([secret, {"h": secret}, (secret,)])

    @dataclass(frozen=True)
    class Holder:
        headers: tuple = field(default=())

    assert "hunter2" not in repr(Holder((("X-Key", secret),)))
    assert secret == Secret("hunter2-api-key") and secret != Secret("other")
    assert len({secret, Secret("hunter2-api-key")}) == 1
    with pytest.raises(TypeError):
        pickle.dumps(secret)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("Bearer abc.def", None),
        ("  padded  ", None),
        ("two\nlines", "contains a line break or NUL"),
        ("cr\rhere", "contains a line break or NUL"),
        ("nul\0", "contains a line break or NUL"),
        ("caf\u00e9", None),
        ("snow\u2603", "has characters outside ISO-8859-1"),
    ],
)
def test_header_value_problems_never_quote_the_value(value, problem):
    assert header_value_problem(value) == problem


def test_validators_become_conditional_headers():
    assert Validators().request_headers() == {}
    assert Validators('"abc"', "Tue, 14 Nov 2023 22:13:20 GMT").request_headers() == {
        "If-None-Match": '"abc"',
        "If-Modified-Since": "Tue, 14 Nov 2023 22:13:20 GMT",
    }


# ---------------------------------------------------------------------------------------------- judging a body


def in_force(count: int) -> FeedStatus:
    entries = tuple(f"d{n}.example" for n in range(count))
    return after_success(FeedStatus(), ParsedFeed(entries), NOW - timedelta(days=1), entries_sha256(entries))


def judge(status: FeedStatus, body: bytes, content_type: str | None = "text/plain", **options):
    options.setdefault("fmt", NEWLINE_DELIMITED)
    return judge_body(status, body, content_type, content=DOMAIN_NAME_SET, now=NOW, **options)


def lines(count: int, start: int = 0) -> bytes:
    return b"".join(b"d%d.example\n" % n for n in range(start, start + count))


def test_a_first_body_updates():
    verdict = judge(FeedStatus(), b"a.example\nb.example\n")
    assert verdict.outcome == UPDATED
    assert verdict.parsed.entries == ("a.example", "b.example")
    assert verdict.status.version == 1 and verdict.status.last_successful_sync == "2026-11-27T22:00:00Z"


def test_the_same_set_is_unchanged_but_synced():
    verdict = judge(in_force(3), b"d2.example\nd0.example\nd1.example\n")
    assert verdict.outcome == UNCHANGED and verdict.parsed is None
    assert verdict.status.version == 1 and verdict.status.last_successful_sync == "2026-11-27T22:00:00Z"


def test_html_is_refused_keeping_the_set():
    status = in_force(3)
    verdict = judge(status, b"<!DOCTYPE html><html>login</html>", "text/html")
    assert verdict.outcome == REFUSED
    assert verdict.status.error_conditions[-1].type == SUSPECT_BODY
    assert "web page" in verdict.message
    assert (verdict.status.entries, verdict.status.version, verdict.status.sha256) == (3, 1, status.sha256)


def test_a_shrink_over_90_percent_is_refused_unless_the_feed_changed():
    status = in_force(200)
    verdict = judge(status, lines(10))
    assert verdict.outcome == REFUSED and "shrink by 95.0 %" in verdict.message
    assert verdict.status.entries == 200 and verdict.status.sha256 == status.sha256
    assert judge(status, lines(10), compare_with_set_in_force=False).outcome == UPDATED
    assert judge(status, lines(20)).outcome == UPDATED


def test_empty_after_a_large_set_is_refused():
    verdict = judge(in_force(150), b"")
    assert verdict.outcome == REFUSED and "no entries" in verdict.message
    small = judge(in_force(5), b"")  # not suspect against so small a set, but no set either: it fails
    assert small.outcome == FAILED and "holds no entry" in small.message and "last good set stays" in small.message
    assert small.status.entries == 5 and small.status.error_conditions[-1].type == PARSE_FAILED


def test_an_unreadable_body_fails_with_a_parse_condition():
    verdict = judge(in_force(3), b"{not json", "application/json", fmt=JsonFormat("$.domains[*]"))
    assert verdict.outcome == FAILED
    assert verdict.status.error_conditions[-1].type == PARSE_FAILED
    assert verdict.status.entries == 3


def test_a_gzip_body_over_the_limit_once_unpacked_fails():
    verdict = judge(FeedStatus(), gzip.compress(lines(1000)), max_bytes=1000)
    assert verdict.outcome == FAILED and "limit" in verdict.message


# ---------------------------------------------------------------------------------------------- reading bodies

from collector.core.pulling import PROTOCOL, TOO_LARGE, BodyReader, BodyRefused  # noqa: E402
from dnswatch.feeds.status import PULL_FAILED  # noqa: E402

BODY = b"".join(b"n%d.example\n" % n for n in range(20000))  # 250 kB


def read_body(raw: bytes, encoding: str | None = None, limit: int = 10**6, step: int = 1500) -> bytes:
    reader = BodyReader(limit, encoding)
    for start in range(0, len(raw), step):
        reader.push(raw[start:start + step])
    return reader.finish()


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(("raw", "encoding"), [
    (BODY, None),
    (BODY, "identity"),
    (gzip.compress(BODY), None),  # a .gz feed
    (gzip.compress(BODY), "gzip"),
    (gzip.compress(BODY), "X-GZIP"),
    (gzip.compress(gzip.compress(BODY)), "gzip"),  # a .gz feed sent gzipped
    (gzip.compress(BODY[:1000]) + gzip.compress(BODY[1000:]), None),  # gzip members one after another
    (gzip.compress(BODY) + b"trailing junk", None),  # ignored, as gzip(1) does
    (zlib.compress(BODY), "deflate"),
    (raw_deflate(BODY), "deflate"),  # deflate without its zlib header, as some servers send it
], ids=["plain", "identity", "gz file", "gzip", "x-gzip", "gz file gzipped", "members", "trailing", "deflate",
        "raw deflate"])
def test_a_body_is_unpacked_as_it_arrives(raw, encoding):
    assert read_body(raw, encoding) == BODY
    assert read_body(raw, encoding, step=1) == BODY[:]  # byte by byte, headers split anywhere


def test_tiny_bodies():
    assert read_body(b"") == b"" and read_body(b"x") == b"x" and read_body(b"\x1f") == b"\x1f"


@pytest.mark.parametrize(("raw", "encoding", "kind", "condition", "text"), [
    (BODY * 5, None, TOO_LARGE, PULL_FAILED, "the body is over the limit of 1000000 bytes"),
    (gzip.compress(BODY * 5), None, TOO_LARGE, PARSE_FAILED, "the gzip body expands beyond the limit of 1000000"),
    (gzip.compress(BODY * 5), "gzip", TOO_LARGE, PULL_FAILED, "the body is over the limit of 1000000 bytes"),
    (gzip.compress(gzip.compress(BODY * 5)), "gzip", TOO_LARGE, PARSE_FAILED, "expands beyond the limit"),
    (gzip.compress(BODY)[:-20], None, PROTOCOL, PARSE_FAILED, "the gzip body is truncated"),
    (b"\x1f\x8b" + b"\x00" * 50, None, PROTOCOL, PARSE_FAILED, "the gzip body is corrupt"),
    (gzip.compress(BODY)[:-20], "gzip", PROTOCOL, PULL_FAILED, "ends in the middle of its Content-Encoding"),
    (b"not gzip at all", "gzip", PROTOCOL, PULL_FAILED, "the body cannot be decoded"),
], ids=["plain", "gz file", "gzip", "gz file gzipped", "truncated gz", "corrupt gz", "truncated gzip", "bad gzip"])
def test_a_body_past_the_limit_or_broken_is_refused(raw, encoding, kind, condition, text):
    with pytest.raises(BodyRefused) as refused:
        read_body(raw, encoding)
    assert (refused.value.failure.kind, refused.value.failure.condition) == (kind, condition)
    assert text in refused.value.failure.detail


def test_an_unknown_content_encoding_is_refused_before_any_byte():
    with pytest.raises(BodyRefused, match="Content-Encoding 'br' is not supported"):
        BodyReader(10**6, "br")


def test_the_compressed_size_is_limited_too():
    noise = random.Random(1).randbytes(200_000)  # does not compress: the gzip is larger than the limit
    with pytest.raises(BodyRefused, match="over the limit of 100000"):
        read_body(gzip.compress(noise), "gzip", limit=100_000)


def test_a_body_that_is_no_feed_fails_with_the_likely_fix_and_the_set_stays():
    csv = b"id,domain,first_seen\n1,evil.example,2026-11-01\n2,bad.example,2026-11-02\n"
    verdict = judge(in_force(3), csv, "text/csv")
    assert verdict.outcome == FAILED and verdict.parsed is None
    assert verdict.message == ("the body is not a usable DomainNameSet feed: none of the 3 lines could be an entry: "
                               "this looks like CSV: set format.csv with the column of the entries; the last good "
                               "set stays")
    assert verdict.status.entries == 3 and verdict.status.version == in_force(3).version
    assert verdict.status.error_conditions[-1].type == PARSE_FAILED
    first = judge(FeedStatus(), b"192.0.2.7\n198.51.100.0/24\n")  # no set yet: none is made from it
    assert first.outcome == FAILED and "use content IPSet" in first.message and first.status.version == 0


def test_no_entry_on_the_first_pull_is_no_empty_set():
    verdict = judge(FeedStatus(), b"# this list is empty for now\n")
    assert verdict.outcome == FAILED and "holds no entry" in verdict.message and verdict.status.version == 0


def test_a_suspect_body_says_the_likely_fix_too():
    verdict = judge(in_force(150), b"192.0.2.7\n198.51.100.0/24\n")
    assert verdict.outcome == REFUSED and "no entries" in verdict.message and "use content IPSet" in verdict.message


def test_public_suffix_wildcards_are_rejected_lines_of_a_good_pull():
    verdict = judge(FeedStatus(), b"*.co.uk\nevil.example\nbad.example\n")
    assert verdict.outcome == UPDATED and verdict.parsed.entries == ("evil.example", "bad.example")
    assert verdict.status.rejected_lines == 1
    assert "*.co.uk covers a public suffix" in verdict.status.error_conditions[-1].message
    wide = judge(FeedStatus(), b"com\nevil.example\nbad.example\n", match_subdomains=True)
    assert wide.parsed.entries == ("evil.example", "bad.example") and wide.status.rejected_lines == 1
    assert judge(FeedStatus(), b"com\nevil.example\n").parsed.entries == ("com", "evil.example")
