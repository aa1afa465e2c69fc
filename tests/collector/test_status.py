"""Feed status (dnswatch.feeds.status): transitions, one condition per type with a count, the 10-condition cap,
per-type clearing, redaction, versions, JSON."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dnswatch.feeds.lines import ParsedFeed
from dnswatch.feeds.status import (
    HEADER_RESOLUTION,
    MAX_ERROR_CONDITIONS,
    PULL_FAILED,
    REJECTED_LINES,
    SUSPECT_BODY,
    ErrorCondition,
    FeedStatus,
    after_failure,
    after_not_modified,
    after_success,
    entries_sha256,
    rfc3339,
)

NOW = datetime(2026, 11, 27, 21, 53, 31, 123456, tzinfo=timezone.utc)


def success(status: FeedStatus, entries: tuple[str, ...], rejected: int = 0, samples=(), now=NOW) -> FeedStatus:
    parsed = ParsedFeed(entries, rejected, samples)
    return after_success(status, parsed, now, entries_sha256(entries))


def test_a_new_status_is_empty():
    status = FeedStatus()
    assert (status.last_successful_sync, status.error_conditions, status.version, status.sha256) == (None, (), 0, "")


def test_success_records_the_set_and_the_time():
    status = success(FeedStatus(), ("a.example", "b.example"), rejected=1, samples=((3, "not a name!"),))
    assert status.last_successful_sync == "2026-11-27T21:53:31Z"
    assert (status.entries, status.rejected_lines, status.version) == (2, 1, 1)
    assert status.sha256 == entries_sha256(["b.example", "a.example"])
    message = "1 line could not be an entry (e.g. line 3: 'not a name!')"
    assert status.error_conditions == (ErrorCondition(REJECTED_LINES, message, 1, "2026-11-27T21:53:31Z"),)


def test_version_moves_only_when_the_set_changes():
    first = success(FeedStatus(), ("a.example", "b.example"))
    same_reordered = success(first, ("b.example", "a.example", "a.example"), now=NOW + timedelta(hours=1))
    assert same_reordered.version == 1
    assert same_reordered.last_successful_sync == "2026-11-27T22:53:31Z"
    changed = success(same_reordered, ("a.example",))
    assert changed.version == 2
    assert after_failure(changed, PULL_FAILED, "boom", NOW).version == 2


def test_sha256_is_of_the_sorted_set():
    import hashlib

    assert entries_sha256(("b", "a", "b")) == hashlib.sha256(b"a\nb\n").hexdigest()
    assert entries_sha256(()) == hashlib.sha256(b"").hexdigest()


def test_failures_of_one_type_are_one_condition_with_a_count_and_the_last_time():
    status = success(FeedStatus(), ("a.example",))
    for number in range(15):
        status = after_failure(status, PULL_FAILED if number % 2 else SUSPECT_BODY, f"failure {number}",
                               NOW + timedelta(minutes=number))
    assert status.error_conditions == (
        ErrorCondition(SUSPECT_BODY, "failure 14", 8, "2026-11-27T22:07:31Z"),
        ErrorCondition(PULL_FAILED, "failure 13", 7, "2026-11-27T22:06:31Z"),
    )[::-1]  # the least recently raised first
    assert (status.entries, status.version, status.last_successful_sync) == (1, 1, "2026-11-27T21:53:31Z")


def test_a_success_resets_the_count():
    status = after_failure(after_failure(FeedStatus(), PULL_FAILED, "HTTP 500", NOW), PULL_FAILED, "HTTP 502", NOW)
    assert status.error_conditions[0].count == 2
    status = after_failure(success(status, ("a.example",)), PULL_FAILED, "HTTP 503", NOW)
    assert status.error_conditions == (ErrorCondition(PULL_FAILED, "HTTP 503", 1, "2026-11-27T21:53:31Z"),)


def test_conditions_are_capped_at_ten_types_dropping_the_least_recently_raised():
    status = FeedStatus()
    for number in range(12):
        status = after_failure(status, f"Type{number}", f"failure {number}", NOW)
    status = after_failure(status, "Type3", "again", NOW)
    assert len(status.error_conditions) == MAX_ERROR_CONDITIONS
    assert [c.type for c in status.error_conditions] == [f"Type{n}" for n in (2, *range(4, 12), 3)]


def test_messages_never_carry_a_urls_credentials():
    message = "GET https://user:hunter2hunter2@feeds.example/c2.txt?token=t0k3n-abc: HTTP 404 Not Found"
    status = after_failure(FeedStatus(), PULL_FAILED, message, NOW)
    assert status.error_conditions[0].message == "GET https://user:***@feeds.example/c2.txt?token=***: HTTP 404 Not Found"


def test_conditions_stored_one_per_failure_fold_into_one_per_type_and_are_redacted():
    # As an older collector stored them: a copy per failed pull, URL credentials and all.
    old = {"errorConditions": [{"type": PULL_FAILED, "message": "GET http://u:pw1234@h/x: HTTP 500"},
                               {"type": SUSPECT_BODY, "message": "a web page"},
                               {"type": PULL_FAILED, "message": "GET http://u:pw1234@h/x: HTTP 503"}]}
    status = FeedStatus.from_dict(old)
    assert status.error_conditions == (ErrorCondition(SUSPECT_BODY, "a web page"),
                                       ErrorCondition(PULL_FAILED, "GET http://u:***@h/x: HTTP 503", 2, None))


def test_success_clears_the_pull_types_only():
    status = FeedStatus()
    status = after_failure(status, "StatusWriteFailed", "the API server said no", NOW)  # another operation's type
    status = after_failure(status, PULL_FAILED, "HTTP 500", NOW)
    status = after_failure(status, HEADER_RESOLUTION, "no Secret", NOW)
    status = after_failure(status, SUSPECT_BODY, "HTML", NOW)
    status = success(status, ("a.example",))
    assert status.error_conditions == (ErrorCondition("StatusWriteFailed", "the API server said no", 1,
                                                      "2026-11-27T21:53:31Z"),)


def test_not_modified_is_a_sync_that_keeps_the_set_and_its_rejected_note():
    status = success(FeedStatus(), ("a.example",), rejected=2, samples=((1, "x y"), (2, "z z")))
    status = after_failure(status, PULL_FAILED, "timeout", NOW)
    later = after_not_modified(status, NOW + timedelta(days=1))
    assert later.last_successful_sync == "2026-11-28T21:53:31Z"
    assert [c.type for c in later.error_conditions] == [REJECTED_LINES]
    assert (later.entries, later.version, later.sha256) == (status.entries, status.version, status.sha256)


def test_long_messages_are_cut():
    status = after_failure(FeedStatus(), PULL_FAILED, "x" * 5000, NOW)
    assert len(status.error_conditions[0].message) == 1024


def test_dict_round_trip_uses_the_spec_field_names():
    status = after_failure(success(FeedStatus(), ("a.example", "b.example")), PULL_FAILED, "HTTP 503", NOW)
    obj = status.to_dict()
    assert obj == {
        "lastSuccessfulSync": "2026-11-27T21:53:31Z",
        "errorConditions": [{"type": "PullFailed", "message": "HTTP 503", "count": 1,
                             "lastTime": "2026-11-27T21:53:31Z"}],
        "entries": 2,
        "rejectedLines": 0,
        "sha256": entries_sha256(("a.example", "b.example")),
        "version": 1,
    }
    assert FeedStatus.from_dict(obj) == status
    assert FeedStatus.from_dict({}) == FeedStatus()


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ({"entries": -1}, "entries"),
        ({"version": "3"}, "version"),
        ({"rejectedLines": True}, "rejectedLines"),
        ({"lastSuccessfulSync": 5}, "lastSuccessfulSync"),
        ({"errorConditions": [{"message": "no type"}]}, "errorConditions[0]"),
        ({"errorConditions": [{"type": "PullFailed", "count": 0}]}, "errorConditions[0].count"),
        ({"errorConditions": [{"type": "PullFailed", "lastTime": 7}]}, "lastTime"),
    ],
)
def test_from_dict_names_the_bad_field(obj, field):
    with pytest.raises(ValueError, match=field.replace("[", r"\[")):
        FeedStatus.from_dict(obj)


def test_rfc3339_takes_naive_times_as_utc_and_converts_others():
    assert rfc3339(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05Z"
    plus_one = timezone(timedelta(hours=1))
    assert rfc3339(datetime(2026, 1, 2, 3, 4, 5, tzinfo=plus_one)) == "2026-01-02T02:04:05Z"
