"""The feed puller (collector.shell.puller) against a real HTTP server on 127.0.0.1 (harness/feedserver.py)."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import subprocess
import sys
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from dnswatch.feeds.formats import CsvFormat, JsonFormat, JsonLinesFormat, MispFormat, StixFormat
from dnswatch.feeds.lines import DOMAIN_NAME_SET, IP_SET
from dnswatch.feeds.spec import FeedSpec, HeaderSpec, KeyRef
from dnswatch.feeds.outcomes import DISABLED, FAILED, NOT_MODIFIED, REFUSED, UNCHANGED, UPDATED
from collector.core.pulling import (
    HeaderRef,
    RetryPolicy,
    SchedulePolicy,
    Secret,
    Validators,
)
from dnswatch.feeds.status import HEADER_RESOLUTION, MAX_ERROR_CONDITIONS, PARSE_FAILED, PULL_FAILED, SUSPECT_BODY
from dnswatch.feeds.status import FeedStatus
from collector.shell.puller import FeedPuller, FeedState, PullerSettings, PullResult
from harness import feedserver
from harness.feedserver import FeedServer
from tests.publishedfeeds import MISP_EVENTS, SPAMHAUS_DROP_V4, STIX_BUNDLE, THREATFOX_CSV, THREATFOX_JSON

API_KEY = "s3cr3t-api-key-9f8e7d"
SETTINGS = PullerSettings(
    connect_timeout=1.0,
    read_timeout=0.25,
    pull_timeout=5.0,
    max_body_bytes=64 * 1024,
    retry=RetryPolicy(attempts=3, base_seconds=0.5, cap_seconds=2.0),
)


@pytest.fixture
def server():
    with FeedServer() as running:
        yield running


class Sleeps:
    """The puller's backoff sleep: records each delay and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 27, 22, 0, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


def spec(url: str, name: str = "c2", **fields) -> FeedSpec:
    fields.setdefault("content", DOMAIN_NAME_SET)
    return FeedSpec(name=name, url=url, **fields)


def lines(count: int, start: int = 0) -> bytes:
    return b"".join(b"d%d.example\n" % n for n in range(start, start + count))


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, timeout=20))


async def pulls(feed: FeedSpec, times: int = 1, *, state: FeedState | None = None, **options) -> list[PullResult]:
    """`times` sync-nows of one feed through one puller."""
    options.setdefault("sleep", Sleeps())
    async with FeedPuller(options.pop("settings", SETTINGS), **options) as puller:
        puller.set_feed(feed, state)
        return [await puller.sync_now(feed.name) for _ in range(times)]


def pull(feed: FeedSpec, **options) -> PullResult:
    return run(pulls(feed, **options))[0]


def held(count: int) -> FeedState:
    """The state of a feed whose set in force has `count` entries (d0 … d{count-1}), from a real pull."""
    with FeedServer() as other:
        other.serve("/seed", lines(count))
        result = pull(spec(other.url("/seed")))
    assert result.outcome == UPDATED
    return FeedState(result.status)  # no validators: they belong to the other server


# ---------------------------------------------------------------------------------------------- plain pulls


def test_a_pull_parses_the_body_into_a_new_set(server):
    server.serve("/c2.txt", b"# a comment\nevil.example\n||ads.example^\n0.0.0.0 tracker.example\nnot a name!\n")
    clock = Clock()
    result = pull(spec(server.url("/c2.txt")), clock=clock)
    assert result.outcome == UPDATED and result.attempts == 1
    assert result.parsed.entries == ("evil.example", "ads.example", "tracker.example")
    status = result.status
    assert (status.entries, status.rejected_lines, status.version) == (3, 1, 1)
    assert status.last_successful_sync == "2026-11-27T22:00:00Z"
    assert [c.type for c in status.error_conditions] == ["RejectedLines"]
    assert result.state.validators.etag and result.state.validators.last_modified


def test_json_and_csv_formats(server):
    server.serve("/f.json", b'{"data": [{"ip": "198.51.100.7"}, {"ip": "2001:db8::/32"}, {"ip": "x"}]}',
                 content_type="application/json")  # fmt: skip
    server.serve("/f.csv", b"domain,score\nevil.example,9\nbad.example,7\n")
    ips = pull(spec(server.url("/f.json"), content=IP_SET, format=JsonFormat("$.data[*].ip")))
    assert ips.outcome == UPDATED and ips.status.entries == 2 and ips.status.rejected_lines == 1
    csv = pull(spec(server.url("/f.csv"), format=CsvFormat(field_name="domain", header=True)))
    assert csv.parsed.entries == ("evil.example", "bad.example")


@pytest.mark.parametrize(
    ("body", "content_type", "content", "fmt", "entries", "rejected"),
    [
        (SPAMHAUS_DROP_V4, "application/json", IP_SET, JsonLinesFormat("cidr"),
         ("1.10.16.0/20", "198.51.100.0/24", "203.0.113.0/25"), 0),
        (THREATFOX_JSON, "application/json", DOMAIN_NAME_SET, JsonFormat("$.*[?(@.ioc_type=='domain')].ioc_value"),
         ("c2.evil.example", "phish.evil.example"), 0),
        (THREATFOX_CSV, "text/csv", DOMAIN_NAME_SET, CsvFormat(field_num=2, comment_delimiter="#"),
         ("c2.evil.example", "dl.evil.example"), 1),
        (MISP_EVENTS, "application/json", DOMAIN_NAME_SET, MispFormat(),
         ("c2.evil.example", "beacon.evil.example", "dl.evil.example", "obj.evil.example"), 1),
        (MISP_EVENTS, "application/json", IP_SET, MispFormat(),
         ("198.51.100.23/32", "203.0.113.9/32", "2001:db8::66/128", "198.51.100.24/32"), 1),
        (STIX_BUNDLE, "application/stix+json;version=2.1", DOMAIN_NAME_SET, StixFormat(),
         ("c2.evil.example", "dl.evil.example", "one.evil.example", "two.evil.example"), 3),
    ],
    ids=["spamhaus-drop", "threatfox-json", "threatfox-csv", "misp-domains", "misp-ips", "stix"],
)
def test_structured_feeds_as_their_publishers_serve_them(server, body, content_type, content, fmt, entries, rejected):
    server.serve("/feed", body, content_type=content_type)
    result = pull(spec(server.url("/feed"), content=content, format=fmt), clock=Clock())
    assert result.outcome == UPDATED
    assert result.parsed.entries == entries
    assert (result.status.entries, result.status.rejected_lines) == (len(entries), rejected)


def test_stix_validity_is_judged_at_the_pullers_clock(server):
    server.serve("/bundle", STIX_BUNDLE, content_type="application/stix+json;version=2.1")
    clock = Clock()
    clock.now = datetime(2026, 11, 14, tzinfo=timezone.utc)  # before the indicator's valid_until
    result = pull(spec(server.url("/bundle"), format=StixFormat()), clock=clock)
    assert "expired.evil.example" in result.parsed.entries


def test_a_json_lines_body_without_the_key_fails_with_a_parse_condition(server):
    server.serve("/drop_v4.json", SPAMHAUS_DROP_V4, content_type="application/json")
    result = pull(spec(server.url("/drop_v4.json"), content=IP_SET, format=JsonLinesFormat("ip")))
    assert result.outcome == FAILED
    assert [c.type for c in result.status.error_conditions] == [PARSE_FAILED]
    assert "no JSON object of the body has the key 'ip'" in result.message


def test_conditional_get_gives_304_which_keeps_the_set_and_counts_as_a_sync(server):
    server.serve("/c2.txt", lines(5))
    clock = Clock()

    async def scenario():
        async with FeedPuller(SETTINGS, clock=clock) as puller:
            puller.set_feed(spec(server.url("/c2.txt")))
            first = await puller.sync_now("c2")
            clock.now += timedelta(hours=1)
            second = await puller.sync_now("c2")
            return first, second

    first, second = run(scenario())
    assert second.outcome == NOT_MODIFIED and second.parsed is None
    assert second.status.last_successful_sync == "2026-11-27T23:00:00Z"
    assert (second.status.version, second.status.sha256) == (first.status.version, first.status.sha256)
    asked = server.requests[1].headers
    assert asked["if-none-match"] == first.state.validators.etag
    assert asked["if-modified-since"] == first.state.validators.last_modified


def test_last_modified_alone_gives_304_too(server):
    server.serve("/c2.txt", lines(5))
    first = pull(spec(server.url("/c2.txt")))
    restored = FeedState(first.status, Validators(last_modified=first.state.validators.last_modified))
    again = pull(spec(server.url("/c2.txt")), state=restored)
    assert again.outcome == NOT_MODIFIED
    assert "if-none-match" not in server.requests[-1].headers


def test_no_conditional_get_without_a_set_to_keep(server):
    server.serve("/c2.txt", lines(5))
    first = pull(spec(server.url("/c2.txt")))
    without_set = FeedState(FeedStatus(), first.state.validators)  # validators restored, but no set
    assert pull(spec(server.url("/c2.txt")), state=without_set).outcome == UPDATED
    assert "if-none-match" not in server.requests[-1].headers


def test_a_changed_body_is_a_new_version_and_a_reordered_one_is_not(server):
    server.serve("/c2.txt", b"a.example\nb.example\n", validators=False)

    async def scenario():
        async with FeedPuller(SETTINGS) as puller:
            puller.set_feed(spec(server.url("/c2.txt")))
            results = [await puller.sync_now("c2")]
            server.serve("/c2.txt", b"b.example\na.example\n", validators=False)
            results.append(await puller.sync_now("c2"))
            server.serve("/c2.txt", b"b.example\nc.example\n", validators=False)
            results.append(await puller.sync_now("c2"))
            return results

    results = run(scenario())
    assert [r.outcome for r in results] == [UPDATED, UNCHANGED, UPDATED]
    assert [r.status.version for r in results] == [1, 1, 2]
    assert results[2].parsed.entries == ("b.example", "c.example")


@pytest.mark.parametrize("mode", [feedserver.GZIP_ENCODING, feedserver.GZIP_BODY])
def test_gzip_bodies(server, mode):
    server.serve("/c2.txt", lines(50))
    server.fault("/c2.txt", mode)
    result = pull(spec(server.url("/c2.txt")))
    assert result.outcome == UPDATED and result.status.entries == 50
    # Only what BodyReader undoes is asked for (httpx would add br and zstd when their packages are there).
    assert server.requests[-1].headers["accept-encoding"] == "gzip, deflate"


def test_a_slow_answer_within_the_timeouts_is_fine(server):
    server.serve("/c2.txt", lines(3))
    server.fault("/c2.txt", feedserver.SLOW, delay=0.1)
    result = pull(spec(server.url("/c2.txt")))
    assert result.outcome == UPDATED and result.attempts == 1


def test_redirects_are_followed_but_headers_stay_with_the_feeds_origin(server):
    headers = (HeaderSpec("X-Api-Key", value=API_KEY),)
    with FeedServer() as elsewhere:
        elsewhere.serve("/moved.txt", lines(2))
        server.serve("/same.txt", lines(3))
        server.fault("/c2.txt", feedserver.REDIRECT, times=1, location="/same.txt")
        assert pull(spec(server.url("/c2.txt"), headers=headers)).status.entries == 3
        assert server.requests[-1].headers["x-api-key"] == API_KEY
        server.fault("/c2.txt", feedserver.REDIRECT, times=1, location=elsewhere.url("/moved.txt"))
        assert pull(spec(server.url("/c2.txt"), headers=headers)).status.entries == 2
        assert server.requests[-1].headers["x-api-key"] == API_KEY
        assert "x-api-key" not in elsewhere.requests[-1].headers


def test_a_redirect_loop_fails(server):
    server.fault("/loop", feedserver.REDIRECT, location="/loop")
    result = pull(spec(server.url("/loop")))
    assert result.outcome == FAILED and "redirects" in result.message
    assert server.count("/loop") == SETTINGS.max_redirects + 1


# ---------------------------------------------------------------------------------------------- retries


def test_500_is_retried_with_the_injected_random_backoff(server):
    server.serve("/c2.txt", lines(3))
    server.fault("/c2.txt", feedserver.ERROR, times=2)
    sleeps = Sleeps()
    result = pull(spec(server.url("/c2.txt")), rng=random.Random(42), sleep=sleeps)
    assert result.outcome == UPDATED and result.attempts == 3
    assert server.count("/c2.txt") == 3
    expected_rng = random.Random(42)
    assert sleeps.delays == [SETTINGS.retry.delay(1, expected_rng), SETTINGS.retry.delay(2, expected_rng)]
    assert 0 <= sleeps.delays[0] <= 0.5 and 0 <= sleeps.delays[1] <= 1.0


def test_500_every_time_fails_after_the_last_attempt_keeping_the_set(server):
    state = held(5)
    server.fault("/c2.txt", feedserver.ERROR, status=503)
    result = pull(spec(server.url("/c2.txt")), state=state)
    assert result.outcome == FAILED and server.count("/c2.txt") == 3
    assert result.message == f"GET {server.url('/c2.txt')}: HTTP 503 Service Unavailable (after 3 attempts)"
    assert result.status.error_conditions[-1][:3] == (PULL_FAILED, result.message, 1)
    assert (result.status.entries, result.status.sha256) == (5, state.status.sha256)
    assert result.state.failures_in_a_row == 1


def test_a_timeout_is_retried(server):
    server.serve("/c2.txt", lines(3))
    server.fault("/c2.txt", feedserver.TIMEOUT, times=1)
    result = pull(spec(server.url("/c2.txt")))
    assert result.outcome == UPDATED and server.count("/c2.txt") == 2


def test_a_server_that_never_answers_fails_with_a_timeout(server):
    server.fault("/c2.txt", feedserver.TIMEOUT)
    result = pull(spec(server.url("/c2.txt")))
    assert result.outcome == FAILED and "read timeout of 0.25 s" in result.message
    assert server.count("/c2.txt") == 3


def test_a_whole_pull_has_a_deadline(server):
    server.fault("/c2.txt", feedserver.TIMEOUT)
    settings = PullerSettings(read_timeout=5.0, pull_timeout=0.2, retry=RetryPolicy(attempts=1))
    result = pull(spec(server.url("/c2.txt")), settings=settings)
    assert result.outcome == FAILED and "within 0.2 s" in result.message


def test_a_connection_reset_is_retried(server):
    server.serve("/c2.txt", lines(3))
    server.fault("/c2.txt", feedserver.RESET, times=2)
    result = pull(spec(server.url("/c2.txt")))
    assert result.outcome == UPDATED and server.count("/c2.txt") == 3


def test_a_refused_connection_is_retried_then_fails():
    with FeedServer() as gone:
        url = gone.url("/c2.txt")
    sleeps = Sleeps()
    result = pull(spec(url), sleep=sleeps)
    assert result.outcome == FAILED and "connection failed" in result.message
    assert result.attempts == 3 and len(sleeps.delays) == 2


@pytest.mark.parametrize("status", [401, 403, 404, 410, 429])
def test_other_4xx_are_not_retried(server, status):
    server.fault("/c2.txt", feedserver.ERROR, status=status)
    sleeps = Sleeps()
    result = pull(spec(server.url("/c2.txt")), sleep=sleeps)
    assert result.outcome == FAILED and f"HTTP {status}" in result.message
    assert server.count("/c2.txt") == 1 and sleeps.delays == []


def test_an_unknown_path_is_a_404_not_retried(server):
    result = pull(spec(server.url("/nothing-here")))
    assert result.outcome == FAILED and "HTTP 404" in result.message and server.count("/nothing-here") == 1


# ---------------------------------------------------------------------------------------------- bodies refused


@pytest.mark.parametrize("declare_length", [True, False])
def test_a_body_over_the_limit_is_refused_without_retrying(server, declare_length):
    server.fault("/c2.txt", feedserver.HUGE, size=10 * SETTINGS.max_body_bytes, declare_length=declare_length)
    result = pull(spec(server.url("/c2.txt")))
    assert result.outcome == FAILED and "over the limit of 65536" in result.message
    assert server.count("/c2.txt") == 1


def test_a_gzip_body_that_unpacks_past_the_limit_fails(server):
    server.serve("/c2.txt", b"a.example\n" * 20000)  # 200 kB, about 1 kB gzipped
    server.fault("/c2.txt", feedserver.GZIP_BODY)
    result = pull(spec(server.url("/c2.txt")))
    assert result.outcome == FAILED and result.status.error_conditions[-1].type == PARSE_FAILED


def test_html_with_200_is_refused_and_its_validators_are_not_kept(server):
    state = held(5)
    server.serve("/c2.txt", lines(5))
    server.fault("/c2.txt", feedserver.HTML, times=1)

    async def scenario():
        async with FeedPuller(SETTINGS) as puller:
            puller.set_feed(spec(server.url("/c2.txt")), state)
            return await puller.sync_now("c2"), await puller.sync_now("c2")

    refused, after = run(scenario())
    assert refused.outcome == REFUSED and refused.parsed is None
    assert refused.status.error_conditions[-1].type == SUSPECT_BODY
    assert (refused.status.entries, refused.status.sha256) == (5, state.status.sha256)
    assert refused.state.validators == Validators()
    assert after.outcome == UNCHANGED  # a whole pull, not a 304 standing in for the refused page
    assert after.status.error_conditions == ()


def test_an_empty_body_after_a_large_set_is_refused(server):
    server.serve("/c2.txt", lines(300))
    server.fault("/c2.txt", feedserver.EMPTY)
    result = pull(spec(server.url("/c2.txt")), state=held(150))
    assert result.outcome == REFUSED and "no entries" in result.message and result.status.entries == 150


def test_an_empty_body_after_a_small_set_is_taken(server):
    server.fault("/c2.txt", feedserver.EMPTY)
    result = pull(spec(server.url("/c2.txt")), state=held(5))
    assert result.outcome == UPDATED and result.parsed.entries == () and result.status.version == 2


def test_a_shrink_over_90_percent_is_refused_and_the_previous_set_kept(server):
    state = held(200)
    server.serve("/c2.txt", lines(15))
    result = pull(spec(server.url("/c2.txt")), state=state)
    assert result.outcome == REFUSED and "shrink by 92.5 %" in result.message
    assert (result.status.entries, result.status.sha256, result.status.version) == (200, state.status.sha256, 1)
    assert result.status.error_conditions[-1].type == SUSPECT_BODY
    server.serve("/c2.txt", lines(20))
    assert pull(spec(server.url("/c2.txt")), state=result.state).outcome == UPDATED  # exactly 90 % is allowed


def test_a_new_url_is_not_compared_with_the_old_set(server):
    server.serve("/big.txt", lines(200))
    server.serve("/small.txt", lines(3))

    async def scenario():
        async with FeedPuller(SETTINGS) as puller:
            puller.set_feed(spec(server.url("/big.txt")))
            await puller.sync_now("c2")
            puller.set_feed(spec(server.url("/small.txt")))
            return await puller.sync_now("c2")

    result = run(scenario())
    assert result.outcome == UPDATED and result.status.entries == 3 and result.status.version == 2


def test_an_unreadable_json_body_fails_with_a_parse_condition(server):
    server.serve("/f.json", b'{"data": [', content_type="application/json")
    result = pull(spec(server.url("/f.json"), format=JsonFormat("$.data[*]")))
    assert result.outcome == FAILED and result.status.error_conditions[-1].type == PARSE_FAILED


def test_repeated_failures_are_one_condition_counted_and_cleared_by_a_success(server):
    server.serve("/c2.txt", lines(3))
    server.fault("/c2.txt", feedserver.ERROR, times=12, status=401)
    clock = Clock()
    results = run(pulls(spec(server.url("/c2.txt")), times=13, clock=clock))
    assert results[11].status.error_conditions == (
        (PULL_FAILED, f"GET {server.url('/c2.txt')}: HTTP 401 Unauthorized", 12, "2026-11-27T22:00:00Z"),)
    assert len(results[11].status.error_conditions) < MAX_ERROR_CONDITIONS
    assert results[11].state.failures_in_a_row == 12
    assert results[12].outcome == UPDATED and results[12].status.error_conditions == ()
    assert results[12].state.failures_in_a_row == 0


# ---------------------------------------------------------------------------------------------- headers


class Lookup:
    """A ConfigMap/Secret lookup, as the Kubernetes piece will give: value or None; counts calls."""

    def __init__(self, values: dict[HeaderRef, str]) -> None:
        self.values = values
        self.asked: list[HeaderRef] = []

    def __call__(self, ref: HeaderRef) -> str | None:
        self.asked.append(ref)
        return self.values.get(ref)


def test_headers_from_value_configmap_and_secret(server):
    server.serve("/c2.txt", lines(3))
    headers = (
        HeaderSpec("X-Literal", value="plain"),
        HeaderSpec("X-Account", config_map_ref=KeyRef("feed-config", "account")),
        HeaderSpec("Authorization", secret_ref=KeyRef("feed-creds", "token")),
    )
    lookup = Lookup({
        HeaderRef("ConfigMap", "feed-config", "account"): "acme",
        HeaderRef("Secret", "feed-creds", "token"): f"Bearer {API_KEY}\n",  # a --from-file newline
    })  # fmt: skip
    result = pull(spec(server.url("/c2.txt"), headers=headers), resolve=lookup)
    assert result.outcome == UPDATED
    sent = server.requests[-1].headers
    assert (sent["x-literal"], sent["x-account"], sent["authorization"]) == ("plain", "acme", f"Bearer {API_KEY}")


def test_an_async_lookup_works_too(server):
    server.serve("/c2.txt", lines(3))

    async def lookup(ref: HeaderRef) -> str | None:
        await asyncio.sleep(0)
        return API_KEY

    headers = (HeaderSpec("X-Api-Key", secret_ref=KeyRef("creds", "key")),)
    assert pull(spec(server.url("/c2.txt"), headers=headers), resolve=lookup).outcome == UPDATED
    assert server.requests[-1].headers["x-api-key"] == API_KEY


def test_an_optional_missing_header_is_omitted(server):
    server.serve("/c2.txt", lines(3))
    headers = (HeaderSpec("X-Api-Key", secret_ref=KeyRef("creds", "key"), optional=True),)
    assert pull(spec(server.url("/c2.txt"), headers=headers), resolve=Lookup({})).outcome == UPDATED
    assert "x-api-key" not in server.requests[-1].headers


@pytest.mark.parametrize("resolve", [Lookup({}), None], ids=["missing", "no-lookup"])
def test_a_missing_required_header_fails_without_a_request(server, resolve):
    state = held(5)
    headers = (HeaderSpec("X-Api-Key", secret_ref=KeyRef("creds", "key")),)
    result = pull(spec(server.url("/c2.txt"), headers=headers), resolve=resolve, state=state)
    assert result.outcome == FAILED and result.attempts == 0 and server.count("/c2.txt") == 0
    assert result.status.error_conditions[-1].type == HEADER_RESOLUTION
    assert "header X-Api-Key" in result.message and "Secret creds key key" in result.message
    assert result.status.entries == 5


def test_a_failing_lookup_is_a_condition_not_a_crash(server):
    def lookup(ref: HeaderRef) -> str:
        raise ConnectionError("the API server is away")

    headers = (HeaderSpec("X-Account", config_map_ref=KeyRef("cfg", "acct")),)
    result = pull(spec(server.url("/c2.txt"), headers=headers), resolve=lookup)
    assert result.outcome == FAILED and "the API server is away" in result.message
    assert result.status.error_conditions[-1].type == HEADER_RESOLUTION


def test_secrets_never_reach_logs_reprs_or_messages(server, caplog):
    caplog.set_level(logging.DEBUG)  # httpx and httpcore log requests at DEBUG: they must not carry it either
    bad_value = f"{API_KEY}\nInjected: yes"
    headers = (
        HeaderSpec("X-Literal-Key", value=API_KEY),
        HeaderSpec("Authorization", secret_ref=KeyRef("creds", "token")),
    )
    lookup = Lookup({HeaderRef("Secret", "creds", "token"): f"Bearer {API_KEY}"})
    server.serve("/c2.txt", lines(200))
    results = []
    for fault, options in [
        (None, {}),
        (feedserver.ERROR, {"status": 500}),
        (feedserver.ERROR, {"status": 401}),
        (feedserver.HTML, {}),
        (feedserver.TIMEOUT, {}),
        (feedserver.RESET, {}),
        (feedserver.HUGE, {"size": 10**6}),
    ]:
        server.clear_faults("/c2.txt")
        if fault:
            server.fault("/c2.txt", fault, **options)
        results += run(pulls(spec(server.url("/c2.txt"), headers=headers), resolve=lookup))
    lookup.values[HeaderRef("Secret", "creds", "token")] = bad_value
    results += run(pulls(spec(server.url("/c2.txt"), headers=headers), resolve=lookup))
    assert results[-1].status.error_conditions[-1].type == HEADER_RESOLUTION
    assert server.requests[0].headers["authorization"] == f"Bearer {API_KEY}"  # it was sent, and only there
    shown = [caplog.text, *(repr(r) for r in results), *(r.message for r in results)]
    shown += [repr(r.status.to_dict()) for r in results]
    shown += [repr(headers), repr(spec("http://x/", headers=headers)), repr(Secret(API_KEY))]
    for text in shown:
        assert API_KEY not in text
    assert len(caplog.records) > 10  # the logs were really captured


# ---------------------------------------------------------------------------------------------- modes and schedule


def test_a_disabled_feed_is_not_pulled(server):
    server.serve("/c2.txt", lines(3))
    result = pull(spec(server.url("/c2.txt"), mode="Disabled"))
    assert result.outcome == DISABLED and result.attempts == 0 and server.count("/c2.txt") == 0


def test_sync_now_of_an_unknown_feed_is_a_key_error():
    async def scenario():
        async with FeedPuller(SETTINGS) as puller:
            await puller.sync_now("nope")

    with pytest.raises(KeyError):
        run(scenario())


FAST = PullerSettings(
    read_timeout=0.25,
    retry=RetryPolicy(attempts=1),
    schedule=SchedulePolicy(jitter=0.10, failure_base_seconds=0.05),
)


async def eventually(condition, what: str, timeout: float = 10.0) -> None:
    """Until `condition()` holds; fails naming `what` after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.01)


async def scheduled(server: FeedServer, feeds: list[FeedSpec], seconds: float = 0.0, during=None,
                    until=None) -> list[PullResult]:
    """Run the schedule until `until(results)` holds (if given), then `seconds` more; `during(puller)` is
    awaited once it runs. Returns every result."""
    results: list[PullResult] = []
    async with FeedPuller(FAST, on_result=results.append, sleep=Sleeps()) as puller:
        for feed in feeds:
            puller.set_feed(feed)
        task = asyncio.create_task(puller.run())
        await asyncio.sleep(0.05)
        if during is not None:
            await during(puller)
        if until is not None:
            await eventually(lambda: until(results), "the schedule's results")
        await asyncio.sleep(seconds)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    return results


def test_the_schedule_pulls_each_enabled_feed_on_its_period(server):
    server.serve("/a.txt", lines(3))
    server.serve("/b.txt", lines(4))
    feeds = [
        spec(server.url("/a.txt"), name="a", period_seconds=0.2),
        spec(server.url("/b.txt"), name="b", period_seconds=60.0),
        spec(server.url("/off.txt"), name="off", mode="Disabled", period_seconds=0.1),
    ]
    started = time.monotonic()
    results = run(scheduled(server, feeds, until=lambda _: server.count("/a.txt") >= 4))
    assert time.monotonic() - started >= 3 * 0.2 * 0.9  # at 0, ~0.2, ~0.4, ~0.6 s, each ±10 %: never sooner
    assert server.count("/b.txt") == 1  # at start only
    assert server.count("/off.txt") == 0
    assert {r.feed for r in results} == {"a", "b"}
    assert [r.outcome for r in results if r.feed == "a"][:2] == [UPDATED, NOT_MODIFIED]
    time_after_stop = server.count("/a.txt")
    run(asyncio.sleep(0.3))
    assert server.count("/a.txt") == time_after_stop  # nothing runs after the puller stopped


def test_a_failing_feed_is_pulled_again_sooner_than_its_period(server):
    server.serve("/c2.txt", lines(3))
    server.fault("/c2.txt", feedserver.ERROR, times=2)
    results = run(scheduled(server, [spec(server.url("/c2.txt"), period_seconds=3600.0)],
                            until=lambda results: len(results) >= 3))
    assert [r.outcome for r in results] == [FAILED, FAILED, UPDATED]


def test_a_restored_recent_sync_waits_for_the_rest_of_the_period(server):
    server.serve("/c2.txt", lines(3))
    recent = FeedStatus(last_successful_sync=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))

    async def scenario():
        async with FeedPuller(FAST) as puller:
            puller.set_feed(spec(server.url("/c2.txt"), period_seconds=3600.0), FeedState(recent))
            task = asyncio.create_task(puller.run())
            await asyncio.sleep(0.2)
            task.cancel()

    run(scenario())
    assert server.count("/c2.txt") == 0


def test_sync_now_and_spec_changes_while_running(server):
    server.serve("/a.txt", lines(3))
    server.serve("/b.txt", lines(5))

    async def during(puller: FeedPuller) -> None:
        result = await puller.sync_now("c2")
        assert result.outcome == NOT_MODIFIED
        puller.set_feed(spec(server.url("/b.txt"), period_seconds=3600.0))  # a new URL is pulled soon
        puller.set_feed(spec(server.url("/new.txt"), name="new", period_seconds=3600.0))  # a new feed too

    server.serve("/new.txt", lines(1))
    results = run(scheduled(server, [spec(server.url("/a.txt"), period_seconds=3600.0)], 0.3, during))
    assert server.count("/a.txt") == 2  # the start, then sync now
    assert server.count("/b.txt") == 1 and server.count("/new.txt") == 1
    assert [r.outcome for r in results if r.feed == "c2"] == [UPDATED, NOT_MODIFIED, UPDATED]


def test_a_removed_feed_stops_being_pulled(server):
    server.serve("/c2.txt", lines(3))

    async def during(puller: FeedPuller) -> None:
        puller.remove_feed("c2")
        assert puller.feeds() == []

    run(scheduled(server, [spec(server.url("/c2.txt"), period_seconds=0.1)], 0.3, during))
    assert server.count("/c2.txt") == 1


def test_closing_the_puller_ends_its_run(server):
    server.serve("/c2.txt", lines(3))

    async def scenario():
        async with FeedPuller(FAST) as puller:
            puller.set_feed(spec(server.url("/c2.txt"), period_seconds=3600.0))
            task = asyncio.create_task(puller.run())
            while server.count("/c2.txt") == 0:  # the first pull has begun
                await asyncio.sleep(0.01)
        await asyncio.wait_for(task, timeout=1.0)  # returns, not cancelled

    run(scenario())
    assert server.count("/c2.txt") == 1


def test_pulls_in_flight_are_limited(server):
    server.serve("/slow.txt", lines(3))
    server.fault("/slow.txt", feedserver.SLOW, delay=0.1)
    settings = PullerSettings(max_concurrent_pulls=2)

    async def scenario():
        async with FeedPuller(settings) as puller:
            for number in range(4):
                puller.set_feed(spec(server.url("/slow.txt"), name=f"f{number}"))
            started = asyncio.get_running_loop().time()
            await asyncio.gather(*(puller.sync_now(f"f{number}") for number in range(4)))
            return asyncio.get_running_loop().time() - started

    assert run(scenario()) >= 0.2  # two rounds of two


# ---------------------------------------------------------------------------------------------- the server


def test_the_feed_server_stops_at_once_even_holding_a_request():
    import threading
    import time
    import urllib.error
    import urllib.request

    errors: list[BaseException] = []

    def client(url: str) -> None:
        try:
            urllib.request.urlopen(url, timeout=10).read()
        except (OSError, urllib.error.URLError) as error:
            errors.append(error)

    # The threads alive before (other tests' may end meanwhile): none of the server's may outlive it.
    before = set(threading.enumerate())
    with FeedServer() as held_server:
        held_server.fault("/held", feedserver.TIMEOUT)
        caller = threading.Thread(target=client, args=(held_server.url("/held"),))
        caller.start()
        while held_server.count("/held") == 0:
            time.sleep(0.01)
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 1.0
    caller.join(timeout=5)
    assert not caller.is_alive() and errors  # the held request ended without an answer
    deadline = time.monotonic() + 2
    while set(threading.enumerate()) - before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not set(threading.enumerate()) - before
    with pytest.raises(OSError):
        urllib.request.urlopen(held_server.url("/held"), timeout=1)


def test_a_path_with_only_faults_is_a_404_once_they_are_used(server):
    server.fault("/x", feedserver.ERROR, times=1)
    assert pull(spec(server.url("/x"))).message.endswith("HTTP 404 Not Found (after 2 attempts)")


def test_a_304_after_failures_clears_them(server):
    server.serve("/c2.txt", lines(3))

    async def scenario():
        async with FeedPuller(SETTINGS) as puller:
            puller.set_feed(spec(server.url("/c2.txt")))
            await puller.sync_now("c2")
            server.fault("/c2.txt", feedserver.ERROR, times=3)
            failed = await puller.sync_now("c2")
            return failed, await puller.sync_now("c2")

    failed, recovered = run(scenario())
    assert failed.outcome == FAILED and failed.status.error_conditions[-1].type == PULL_FAILED
    assert recovered.outcome == NOT_MODIFIED and recovered.status.error_conditions == ()
    assert recovered.state.failures_in_a_row == 0


def test_setting_the_same_spec_again_does_not_delay_the_schedule(server):
    server.serve("/c2.txt", lines(3))
    feed = spec(server.url("/c2.txt"), period_seconds=0.2)

    async def during(puller: FeedPuller) -> None:
        for _ in range(8):  # echoes of the same spec, as a watch may deliver
            puller.set_feed(feed)
            await asyncio.sleep(0.05)

    run(scheduled(server, [feed], 0.05, during))  # 0.5 s in all: the start, then every ~0.2 s
    assert 2 <= server.count("/c2.txt") <= 3  # were each echo a reschedule, only the first pull would happen


def test_new_headers_pull_soon_and_keep_the_shrink_check(server):
    server.serve("/c2.txt", lines(200))

    async def scenario():
        async with FeedPuller(FAST) as puller:
            puller.set_feed(spec(server.url("/c2.txt"), period_seconds=3600.0))
            task = asyncio.create_task(puller.run())
            await asyncio.sleep(0.1)
            server.serve("/c2.txt", lines(5))
            puller.set_feed(spec(server.url("/c2.txt"), period_seconds=3600.0,
                                 headers=(HeaderSpec("X-Api-Key", value=API_KEY),)))  # fmt: skip
            await asyncio.sleep(0.2)
            task.cancel()
            return puller.state("c2")

    state = run(scenario())
    assert server.count("/c2.txt") >= 2  # refused pulls come back soon (FAST: after 0.05 s)
    assert "x-api-key" not in server.requests[0].headers and server.requests[1].headers["x-api-key"] == API_KEY
    assert state.status.entries == 200 and state.status.error_conditions[-1].type == SUSPECT_BODY


def test_an_operator_can_accept_a_shrink_but_not_a_web_page(server):
    state = held(200)
    server.serve("/c2.txt", lines(3))

    async def scenario():
        async with FeedPuller(SETTINGS) as puller:
            puller.set_feed(spec(server.url("/c2.txt")), state)
            refused = await puller.sync_now("c2")
            server.fault("/c2.txt", feedserver.HTML, times=1)
            html = await puller.sync_now("c2", accept_shrink=True)
            accepted = await puller.sync_now("c2", accept_shrink=True)
            return refused, html, accepted

    refused, html, accepted = run(scenario())
    assert (refused.outcome, html.outcome, accepted.outcome) == (REFUSED, REFUSED, UPDATED)
    assert "web page" in html.message
    assert accepted.status.entries == 3 and accepted.status.error_conditions == ()


# ---------------------------------------------------------------------------------------------- credentials in URLs

URL_PASSWORD = "pw-7Hq2-xR9k"
URL_TOKEN = "tok-4Fz8-wL1m"


def secret_url(server: FeedServer, path: str = "/c2.txt") -> str:
    return f"http://reader:{URL_PASSWORD}@127.0.0.1:{server.port}{path}?token={URL_TOKEN}&fmt=txt"


def test_credentials_in_the_url_are_sent_and_the_pull_succeeds(server):
    server.serve("/c2.txt", lines(3), basic_auth=("reader", URL_PASSWORD), query={"token": URL_TOKEN})
    result = pull(spec(secret_url(server)))
    assert result.outcome == UPDATED and result.status.entries == 3
    wrong = pull(spec(secret_url(server).replace(URL_TOKEN, "nope")))
    assert wrong.outcome == FAILED and "HTTP 401" in wrong.message  # the server does check them


def test_a_urls_credentials_reach_no_log_message_or_status(server, caplog):
    caplog.set_level(logging.DEBUG)  # httpx logs each request's URL at INFO: redacted all the same
    caplog.set_level(logging.DEBUG, logger="httpx")  # a collector main() run earlier quiets it to WARNING
    server.serve("/c2.txt", lines(200), basic_auth=("reader", URL_PASSWORD), query={"token": URL_TOKEN})
    results = run(pulls(spec(secret_url(server))))  # a good pull first: the URL was used, and logged
    results += run(pulls(spec(secret_url(server, "/wrong-path.txt"))))  # 404
    server.fault("/c2.txt", feedserver.TIMEOUT)
    results += run(pulls(spec(secret_url(server))))
    server.clear_faults("/c2.txt")
    server.fault("/c2.txt", feedserver.REDIRECT, location=f"http://127.0.0.1:1/moved?token={URL_TOKEN}")
    results += run(pulls(spec(secret_url(server))))  # a redirect to a closed port, the token in Location
    with FeedServer() as gone:
        down = secret_url(gone)
    results += run(pulls(spec(down)))  # nothing listens there any more
    assert [r.outcome for r in results] == [UPDATED, FAILED, FAILED, FAILED, FAILED]
    assert "HTTP 404" in results[1].message and "timeout" in results[2].message
    assert "connection failed" in results[3].message and "connection failed" in results[4].message
    assert f"http://reader:***@127.0.0.1:{server.port}/wrong-path.txt?token=***&fmt=***" in results[1].message
    shown = [caplog.text, *(r.message for r in results), *(repr(r.status.to_dict()) for r in results),
             *(repr(r) for r in results)]
    for text in shown:
        assert URL_PASSWORD not in text and URL_TOKEN not in text
    assert any("127.0.0.1" in record.getMessage() for record in caplog.records if record.name == "httpx")


# ---------------------------------------------------------------------------------------------- the pull's deadline

STALLED = PullerSettings(connect_timeout=1.0, read_timeout=0.6, pull_timeout=1.0,
                         retry=RetryPolicy(attempts=4, base_seconds=0.05, cap_seconds=0.1))
"""Four attempts of up to 0.6 s each would take 2.4 s: only a deadline for the whole pull ends it at 1 s."""


def timed_pull(feed: FeedSpec, settings: PullerSettings, **options) -> tuple[PullResult, float]:
    async def go():
        loop = asyncio.get_running_loop()
        start = loop.time()
        async with FeedPuller(settings, **options) as puller:
            puller.set_feed(feed)
            result = await puller.sync_now(feed.name)
        return result, loop.time() - start

    return run(go())


@pytest.mark.parametrize(("mode", "options"), [(feedserver.TIMEOUT, {}), (feedserver.TRICKLE, {"delay": 0.05})],
                         ids=["silent", "trickling"])
def test_a_stalled_server_ends_the_pull_within_its_timeout_retries_included(server, mode, options):
    server.fault("/c2.txt", mode, **options)
    result, seconds = timed_pull(spec(server.url("/c2.txt")), STALLED)
    assert result.outcome == FAILED and "within 1 s, the pull timeout" in result.message
    assert seconds < 1.9  # well under the 2.4 s that per-attempt timeouts alone would allow
    assert result.status.error_conditions[-1].type == PULL_FAILED


def test_no_retry_is_begun_that_the_deadline_could_not_let_end(server):
    server.fault("/c2.txt", feedserver.ERROR, status=503)
    settings = PullerSettings(pull_timeout=1.0, retry=RetryPolicy(attempts=4, base_seconds=2.0, cap_seconds=2.0))
    sleeps = Sleeps()
    result = pull(spec(server.url("/c2.txt")), settings=settings, rng=random.Random(7), sleep=sleeps)
    # Seed 7 draws a first backoff of about 0.65 s, which fits; the second, 3.0 s or so, would not.
    assert result.outcome == FAILED and "no time left for a retry within the pull timeout of 1 s" in result.message
    assert server.count("/c2.txt") == len(sleeps.delays) + 1


def test_a_sync_during_a_scheduled_pull_ends_within_its_own_deadline(server):
    server.fault("/c2.txt", feedserver.TIMEOUT)

    async def go():
        loop = asyncio.get_running_loop()
        async with FeedPuller(STALLED) as puller:
            puller.set_feed(spec(server.url("/c2.txt")))
            scheduled = asyncio.create_task(puller.pull("c2"))
            while server.count("/c2.txt") == 0:  # the scheduled pull's request is under way
                await asyncio.sleep(0.01)
            start = loop.time()
            synced = await puller.sync_now("c2")
            return synced, await scheduled, loop.time() - start

    synced, scheduled, seconds = run(go())
    assert synced.outcome == scheduled.outcome == FAILED and "within 1 s, the pull timeout" in synced.message
    # The scheduled pull held the feed for most of the sync's second; the sync's own pull had what was left,
    # rather than a whole pull timeout after the scheduled one (2 s), or two stalled pulls in a row (4.8 s).
    assert seconds < 1.5


def test_a_sync_that_cannot_get_a_pull_slot_in_time_fails_and_changes_nothing(server):
    server.fault("/slow.txt", feedserver.TIMEOUT)
    server.serve("/c2.txt", lines(3))
    settings = replace(STALLED, max_concurrent_pulls=1, pull_timeout=0.5)

    async def go():
        async with FeedPuller(settings) as puller:
            puller.set_feed(spec(server.url("/slow.txt"), name="slow"))
            puller.set_feed(spec(server.url("/c2.txt")))
            # The one slot is held by a pull given a longer deadline than the sync's pull timeout.
            slow = asyncio.create_task(puller.pull("slow", deadline=asyncio.get_running_loop().time() + 1.5))
            while server.count("/slow.txt") == 0:
                await asyncio.sleep(0.01)
            waiting = await puller.sync_now("c2")
            await slow
            return waiting, puller.state("c2")

    waiting, state = run(go())
    assert waiting.outcome == FAILED and "could not start within the pull timeout of 0.5 s" in waiting.message
    assert state == FeedState() and server.count("/c2.txt") == 0


# ---------------------------------------------------------------------------------------------- gzip bombs

BOMB_LIMIT = 32 * 1024 * 1024
_MEASURE = """
import asyncio, json, sys, tracemalloc
from dnswatch.feeds.spec import FeedSpec
from collector.core.pulling import RetryPolicy
from collector.shell.puller import FeedPuller, PullerSettings
from harness import feedserver

limit, encoded = int(sys.argv[1]), sys.argv[2] == "encoded"
with feedserver.FeedServer() as server:
    server.fault("/bomb.gz", feedserver.GZIP_BOMB, size=4 * limit, encoded=encoded)
    feedserver.gzip_bomb(4 * limit)  # made before measuring: the server's copy is no part of the pull
    settings = PullerSettings(max_body_bytes=limit, retry=RetryPolicy(attempts=1))

    async def pull():
        async with FeedPuller(settings) as puller:
            puller.set_feed(FeedSpec(name="bomb", url=server.url("/bomb.gz"), content="DomainNameSet"))
            return await puller.sync_now("bomb")

    tracemalloc.start()
    result = asyncio.run(pull())
    peak = tracemalloc.get_traced_memory()[1]
print(json.dumps({"outcome": result.outcome, "message": result.message, "peak": peak}))
"""


@pytest.mark.parametrize("served", ["file", "encoded"], ids=[".gz body", "Content-Encoding"])
def test_a_gzip_bomb_is_refused_holding_about_the_limit_in_memory(served):
    # In a process of its own, so the peak is this pull's alone. The bomb unpacks to 4x the limit.
    done = subprocess.run([sys.executable, "-c", _MEASURE, str(BOMB_LIMIT), served], capture_output=True,
                          text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    measured = json.loads(done.stdout)
    assert measured["outcome"] == FAILED
    expected = "expands beyond" if served == "file" else "over the limit"
    assert expected in measured["message"] and str(BOMB_LIMIT) in measured["message"]
    assert measured["peak"] < 1.2 * BOMB_LIMIT + 4 * 1024 * 1024, f"peak {measured['peak'] / BOMB_LIMIT:.2f}x"


def test_a_header_lookup_that_never_answers_ends_with_the_pull(server):
    server.serve("/c2.txt", lines(3))

    async def lookup(ref: HeaderRef) -> str:
        await asyncio.Event().wait()  # an API server that accepted the request and went quiet
        return "never"

    headers = (HeaderSpec("X-Api-Key", secret_ref=KeyRef("creds", "key")),)
    result, seconds = timed_pull(spec(server.url("/c2.txt"), headers=headers), replace(STALLED, pull_timeout=0.3),
                                 resolve=lookup)
    assert result.outcome == FAILED and result.status.error_conditions[-1].type == HEADER_RESOLUTION
    assert "not read within the pull timeout of 0.3 s" in result.message and server.count("/c2.txt") == 0
    assert seconds < 1.0
