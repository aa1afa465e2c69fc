"""Alert exception marks and dismissal in the store, every test on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import datetime as dt

import pytest

from collector.store.eventqueries import MAX_PAGE_SIZE, EventChange, change_filter
from dnswatch.alerting.exceptions import ExceptionSet, read_alert_exception
from dnswatch.alerting.visibility import is_hidden
from dnswatch.eventfilter import EventFilter
from tests.collector.eventdata import event

pytestmark = pytest.mark.anyio

NOW = dt.datetime(2026, 12, 3, tzinfo=dt.timezone.utc)
ALL = EventFilter()
EVERY = EventFilter(include_excepted=True, include_dismissed=True)


def marker(**selectors: str):
    exceptions = [read_alert_exception({"apiVersion": "dnswatch.dev/v1", "kind": "AlertException",
                                        "metadata": {"name": name}, "spec": {"selector": selector}})
                  for name, selector in selectors.items()]
    return ExceptionSet(exceptions, NOW).mark


async def listed(store, where: EventFilter = ALL) -> list[int]:
    page, _ = await store.list_events(where, MAX_PAGE_SIZE)
    return sorted(int(stored.event["id"], 16) for stored in page)


async def test_an_event_ingested_while_an_exception_is_active_is_stored_marked(store) -> None:
    store.set_event_marker(marker(ci="source_namespace = ci"))
    await store.ingest_events([event(0, namespace="ci"), event(1)])
    await store.ingest_json([event_text(event(2, namespace="ci")), event_text(event(3))])
    assert await listed(store) == [1, 3]
    assert await listed(store, EventFilter(include_excepted=True)) == [0, 1, 2, 3]
    page, _ = await store.list_events(EventFilter(include_excepted=True, namespace="ci"), 10)
    assert [stored.excepted_by for stored in page] == ["ci", "ci"]
    assert [s.excepted_by for s in await store.events_since(0, EVERY, 10)] == ["ci", "", "ci", ""]
    assert await store.excepted_counts() == {"ci": 2}


def event_text(e: dict) -> str:
    import json

    return json.dumps(e, separators=(",", ":"))


async def test_re_marking_follows_a_change_of_the_exceptions(store) -> None:
    await store.ingest_events([event(n, namespace=("ci", "shop", "bank")[n % 3]) for n in range(30)])
    assert await store.remark_events(marker(ci="source_namespace = ci"), page_size=7) == 10
    assert await listed(store) == [n for n in range(30) if n % 3]
    # Changed selector: ci's events show again, bank's are hidden; a second exception takes shop's.
    assert await store.remark_events(marker(ci="source_namespace = bank", later="source_namespace = shop"),
                                     page_size=4) == 30
    assert await listed(store) == [n for n in range(30) if n % 3 == 0]
    assert await store.excepted_counts() == {"ci": 10, "later": 10}
    assert await store.remark_events(None) == 20
    assert await listed(store) == list(range(30))


async def test_dismissal_keeps_who_and_when_survives_growth_and_reports_unknown_ids(store) -> None:
    await store.ingest_events([event(n) for n in range(5)])
    ids = [f"{n:032x}" for n in range(5)]
    result = await store.dismiss_events([ids[1], ids[3], "nope"], "consumer token", NOW)
    assert (result.changed, result.unknown) == ([ids[1], ids[3]], ["nope"])
    again = await store.dismiss_events([ids[1]], "someone else", NOW + dt.timedelta(hours=1))
    assert (again.changed, again.unknown) == ([], [])
    assert await listed(store) == [0, 2, 4]
    assert await listed(store, EventFilter(dismissed_only=True)) == [1, 3]
    page, _ = await store.list_events(EventFilter(dismissed_only=True), 10)
    assert {(s.dismissed_by, s.dismissed_at) for s in page} == {("consumer token", NOW.timestamp())}
    await store.ingest_events([event(1, count=5)])  # grown: replaced, still dismissed
    assert await listed(store, EventFilter(dismissed_only=True)) == [1, 3]
    assert not [s for s in await store.events_since(0, ALL, 10) if s.event["id"] == ids[1]]
    result = await store.undismiss_events([ids[1], ids[0]])
    assert (result.changed, result.unknown) == ([ids[1]], [])
    assert await listed(store) == [0, 1, 2, 4]


def test_the_watch_test_and_the_shared_rule_agree_with_the_sql() -> None:
    for excepted_by in ("", "ci"):
        for dismissed in (False, True):
            change = EventChange(1, "x", "{}", 0.0, "t", "h", "n", "p", "pa", excepted_by, dismissed)
            for where in (ALL, EventFilter(include_excepted=True), EventFilter(include_dismissed=True), EVERY):
                test = change_filter(where)
                shown = test is None or test(change)
                assert shown is not is_hidden(excepted_by, dismissed, include_excepted=where.include_excepted,
                                              include_dismissed=where.include_dismissed)
            only = change_filter(EventFilter(dismissed_only=True, include_excepted=True))
            assert only(change) is dismissed


async def test_a_grown_event_is_marked_by_the_exceptions_active_when_it_is_stored(store) -> None:
    await store.ingest_events([event(0, namespace="ci"), event(1, namespace="ci")])
    assert await listed(store) == [0, 1]
    store.set_event_marker(marker(ci="source_namespace = ci"))
    await store.ingest_events([event(0, namespace="ci", count=4)])
    assert await listed(store) == [1]
    store.set_event_marker(None)
    await store.ingest_events([event(0, namespace="ci", count=9)])
    assert await listed(store) == [0, 1]


async def test_the_keeper_re_marks_as_an_exception_starts_and_ends(store) -> None:
    import asyncio

    from collector.shell.exceptionkeeper import ExceptionKeeper

    await store.ingest_events([event(n, namespace=("ci", "shop")[n % 2]) for n in range(10)])
    keeper = ExceptionKeeper(store)
    now = dt.datetime.now(dt.timezone.utc)
    keeper.replace({"ci": {"apiVersion": "dnswatch.dev/v1", "kind": "AlertException", "metadata": {"name": "ci"},
                           "spec": {"selector": "source_namespace = ci",
                                    "startTime": (now + dt.timedelta(seconds=1)).isoformat(),
                                    "endTime": (now + dt.timedelta(seconds=2.5)).isoformat()}}})
    task = asyncio.create_task(keeper.run(first_replace=True))
    try:
        async def shown(expected: list[int]) -> None:
            for _ in range(100):
                if await listed(store) == expected:
                    return
                await asyncio.sleep(0.05)
            raise AssertionError(f"listed {await listed(store)}, not {expected}")

        await shown(list(range(10)))
        await shown([1, 3, 5, 7, 9])  # started
        await shown(list(range(10)))  # ended
        assert keeper.remarks >= 3
    finally:
        task.cancel()
