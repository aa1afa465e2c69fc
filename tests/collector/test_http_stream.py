"""`GET /api/v1/events/stream` against a real collector while agents ship events to it: every event once, in
order, across a disconnect resumed with Last-Event-ID; filters; a bad Last-Event-ID."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from tests.collector.eventdata import event
from tests.collector.httpkit import eventually, ingest, ship, with_http

pytestmark = pytest.mark.timeout(120)


class Reader:
    """One SSE connection read on a thread: the events (id, data) and bookmarks, as they come."""

    def __init__(self, url: str, last_event_id: str | None = None, params: dict | None = None) -> None:
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        self._client = httpx.Client(timeout=httpx.Timeout(10, read=60))
        self._request = self._client.build_request("GET", url, headers=headers, params=params)
        self.events: list[tuple[str, dict]] = []
        self.bookmarks: list[str] = []
        self.last_id: str | None = None
        self.status: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        response = self._client.send(self._request, stream=True)
        self.status = response.status_code
        fields: dict[str, str] = {}
        try:
            for line in response.iter_lines():
                if self._stop.is_set():
                    break
                if line:
                    key, _, value = line.partition(":")
                    fields[key] = value.removeprefix(" ")
                    continue
                if "id" in fields:
                    self.last_id = fields["id"]
                if fields.get("event") == "bookmark":
                    self.bookmarks.append(fields["id"])
                elif "data" in fields:
                    self.events.append((fields["id"], json.loads(fields["data"])))
                fields = {}
        except httpx.HTTPError:
            pass
        finally:
            response.close()

    def close(self) -> None:
        self._stop.set()
        self._client.close()
        self._thread.join(timeout=10)


@pytest.fixture
def collector(store_url, tmp_path):
    running, port = with_http(store_url, tmp_path)
    with running:
        yield running, f"http://127.0.0.1:{port}/api/v1/events/stream"


def test_stream_resumed_from_last_event_id_misses_nothing_and_repeats_nothing(collector, store_url):
    running, url = collector
    first = Reader(url)
    eventually(lambda: first.bookmarks, "the opening bookmark")
    batches = [[event(100 + 10 * b + i) for i in range(10)] for b in range(6)]
    shipping = threading.Thread(target=ship, args=(running.address, "node-a", batches))
    shipping.start()
    eventually(lambda: len(first.events) >= 15, "the first events")
    first.close()  # a disconnect while events are still being shipped
    resumed = Reader(url, last_event_id=first.last_id)
    shipping.join()
    ingest(store_url, [event(500 + i) for i in range(5)])  # another replica's writes, seen by polling
    expected = [e["id"] for batch in batches for e in batch] + [event(500 + i)["id"] for i in range(5)]
    eventually(lambda: len(first.events) + len(resumed.events) >= len(expected), "every event")
    resumed.close()
    got = [data["id"] for _, data in first.events] + [data["id"] for _, data in resumed.events]
    assert got == expected
    assert resumed.status == 200 and first.events[0][1]["event"] == batches[0][0]


def test_stream_filters_and_resumes_from_the_opening_bookmark(collector, store_url):
    running, url = collector
    reader = Reader(url, params={"namespace": "bank"})
    start = eventually(lambda: reader.bookmarks, "the opening bookmark")[0]
    reader.close()
    ship(running.address, "node-a", [[event(1, namespace="shop"), event(2, namespace="bank"),
                                      event(3, namespace="bank")]])
    resumed = Reader(url, last_event_id=start, params={"namespace": "bank"})
    eventually(lambda: len(resumed.events) >= 2, "the bank events")
    resumed.close()
    assert [data["id"] for _, data in resumed.events] == [event(2)["id"], event(3)["id"]]


def test_bad_last_event_id_is_one_json_error(collector):
    _, url = collector
    response = httpx.get(url, headers={"Last-Event-ID": "bogus"}, timeout=10)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "header.last-event-id"
