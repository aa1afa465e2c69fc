"""The webhook delivery queue in the store (collector/store/webhookqueue.py) and the dispatcher that fills it
(collector/shell/webhookdispatch.py), on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time

import pytest

from collector.shell.eventbell import EventBell
from collector.shell.webhookdispatch import DispatchSettings, WebhookDispatcher
from collector.shell.webhookkeeper import WebhookKeeper
from collector.store import open_store
from collector.store.webhookqueue import DEAD, DELIVERED, PENDING, AttemptResult
from tests.collector.eventdata import event as make_event

pytestmark = pytest.mark.anyio

FAST = DispatchSettings(poll_seconds=0.05, read_interval_seconds=0.0, save_interval_seconds=0.0)


def webhook(name: str, *, query: str = "", state: str = "Enabled", url: str = "http://127.0.0.1:9/hook") -> dict:
    return {"apiVersion": "dnswatch.dev/v1", "kind": "SecurityEventWebhook", "metadata": {"name": name},
            "spec": {"consumer": "Generic", "state": state, "query": query,
                     "config": [{"name": "url", "value": url}]}}


async def until(condition, what: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def queued(store, name: str) -> list[tuple[str, int]]:
    return [(row.event_id, row.count) for row, _, _ in await store.webhook_deliveries(name)]


async def test_each_emission_is_queued_once_and_the_queue_survives_reopening(store_url, store) -> None:
    await store.ingest_events([make_event(n) for n in range(3)])
    assert await store.start_webhook_cursors(["a", "b"]) == {"a": 3, "b": 3}  # new: from the latest change
    body = json.dumps(make_event(7))
    rows = [("a", f"{7:032x}", 1, 4, body), ("a", f"{8:032x}", 1, 5, body), ("b", f"{7:032x}", 1, 4, body)]
    assert await store.enqueue_webhook_deliveries(rows, {"a": 5, "b": 5}) == 3
    assert await store.enqueue_webhook_deliveries(rows, {"a": 2}) == 0  # queued once; a cursor never moves back
    reopened = await open_store(store_url)
    try:
        assert await reopened.start_webhook_cursors(["a", "b", "c"]) == {"a": 5, "b": 5, "c": 3}
        due = await reopened.due_webhook_deliveries("a", time.time(), 10)
        assert [(row.event_id, row.seq, row.attempts) for row in due] == [(f"{7:032x}", 4, 0), (f"{8:032x}", 5, 0)]
        first, second = due
        later = time.time() + 3600
        await reopened.record_webhook_attempts([AttemptResult(first.key, DELIVERED, 1, first.next_attempt_at),
                                                AttemptResult(second.key, PENDING, 1, later, "HTTP 503")])
        assert await reopened.due_webhook_deliveries("a", time.time(), 10) == []
        assert await reopened.next_webhook_attempt("a") == pytest.approx(later)
        # An acknowledged row is never made pending again, whatever is written after it.
        await reopened.record_webhook_attempts([AttemptResult(first.key, PENDING, 2, 0.0, "late")])
        await reopened.record_webhook_attempts([AttemptResult(second.key, DEAD, 2, later, "HTTP 400")])
        states = {row.event_id: (state, error) for row, state, error in await reopened.webhook_deliveries("a")}
        assert states == {f"{7:032x}": (DELIVERED, ""), f"{8:032x}": (DEAD, "HTTP 400")}
        assert await reopened.webhook_queue_counts() == {"a": (0, 1), "b": (1, 0)}
        assert await reopened.prune_webhook_deliveries(time.time() - 60, time.time() - 60) == 0
        assert await reopened.prune_webhook_deliveries(time.time() + 1, time.time() - 60) == 1  # the delivered
        assert await reopened.prune_webhook_deliveries(time.time() + 1, time.time() + 1) == 1  # the dead
        assert await queued(reopened, "a") == []
    finally:
        await reopened.close()


async def test_the_dispatcher_queues_what_each_webhook_wants_from_the_latest_change_on(store) -> None:
    """Events stored before a webhook existed are not sent to it; after that each emission that is not hidden
    is queued for every delivering webhook whose query matches, a grown event again under its new count, and
    a disabled webhook's cursor moves on without queueing (so enabling it later sends no backlog)."""
    keeper = WebhookKeeper()
    bell = EventBell()
    await store.ingest_events([make_event(n, namespace="shop") for n in range(2)])  # history
    keeper.replace({"all": webhook("all"), "shop": webhook("shop", query="source_namespace = shop"),
                    "off": webhook("off", state="Disabled")})
    woken: list[set[str]] = []
    dispatcher = WebhookDispatcher(store, bell, keeper, woken.append, FAST)
    dispatcher.start()
    try:
        await until(lambda: _true(len(dispatcher.cursors) == 3), "the cursors started")
        store.set_event_marker(lambda event: "ci" if event["source_namespace"] == "ci" else "")
        await store.ingest_events([make_event(2, namespace="shop"), make_event(3, namespace="data"),
                                   make_event(4, namespace="ci"), make_event(5, namespace="shop")])
        bell.ring()
        await until(lambda: _true(min(dispatcher.cursors.values()) == 6), "the first emissions looked at")
        # Dismissed after its first emission was queued: its growth stays dismissed, and is not queued.
        await store.dismiss_events([f"{5:032x}"], "tester", dt.datetime.now(dt.timezone.utc))
        await store.ingest_events([make_event(5, namespace="shop", count=3), make_event(2, namespace="shop",
                                                                                        count=2)])
        bell.ring()
        latest = await store.latest_event_seq()
        await until(lambda: _true(min(dispatcher.cursors.values()) == latest), "every change looked at")
        assert await queued(store, "all") == [(f"{2:032x}", 1), (f"{3:032x}", 1), (f"{5:032x}", 1),
                                              (f"{2:032x}", 2)]
        assert await queued(store, "shop") == [(f"{2:032x}", 1), (f"{5:032x}", 1), (f"{2:032x}", 2)]
        assert await queued(store, "off") == []
        assert {"all", "shop"} <= set().union(*woken)
    finally:
        await dispatcher.close()
        await dispatcher.save()
    assert await store.start_webhook_cursors(["off"]) == {"off": latest}


async def test_a_restarted_dispatcher_resumes_from_its_saved_cursor(store_url, store) -> None:
    keeper = WebhookKeeper()
    keeper.replace({"all": webhook("all")})
    dispatcher = WebhookDispatcher(store, EventBell(), keeper, lambda names: None, FAST)
    dispatcher.start()
    await until(lambda: _true("all" in dispatcher.cursors), "the cursor started")
    await store.ingest_events([make_event(n) for n in range(5)])
    await until(lambda: _true(dispatcher.cursors["all"] == 5), "the first events looked at")
    await dispatcher.close()
    await store.ingest_events([make_event(n) for n in range(5, 8)])  # while no dispatcher runs
    again = await open_store(store_url)
    try:
        dispatcher = WebhookDispatcher(again, EventBell(), keeper, lambda names: None, FAST)
        dispatcher.start()
        await until(lambda: _true(dispatcher.cursors.get("all") == 8), "the rest looked at")
        await dispatcher.close()
        assert await queued(again, "all") == [(f"{n:032x}", 1) for n in range(8)]
    finally:
        await again.close()


async def _true(value: bool) -> bool:
    return value
