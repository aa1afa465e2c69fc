"""The HTTP API's event routes against a real collector process (folder mode), on SQLite and PostgreSQL:
list with every filter and keyset pages, get, dismiss/undismiss as the caller, errors as JSON."""

from __future__ import annotations

import httpx
import pytest

from tests.collector.eventdata import event, newest_first
from tests.collector.httpkit import ingest, with_http

pytestmark = pytest.mark.timeout(120)

EVENTS = [
    event(0, namespace="shop", pod="web-a-1", feeds=("c2",), domains=("evil.example",), host="node-1"),
    event(1, namespace="shop", pod="web-a-2", feeds=("c2", "malware"), domains=("bad.example",), host="node-2"),
    event(2, namespace="bank", pod="api-b-1", feeds=("malware",), domains=("evil.example",), host="node-1"),
    event(3, namespace="bank", pod="api-b-1", feeds=("phish",), domains=("phish.example",), host="node-2",
          type_="other_type"),
    event(4, namespace="ops", pod="db-c-1", feeds=("c2",), domains=("evil.example",), host="node-1"),
]


@pytest.fixture
def api(store_url, tmp_path):
    ingest(store_url, EVENTS)
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    running, port = with_http(store_url, feeds)
    with running, httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=10) as client:
        yield client


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["events"]]


def test_list_returns_every_event_newest_first_with_its_body_as_stored(api):
    response = api.get("/events")
    assert ids(response) == newest_first(EVENTS)
    first = response.json()["events"][0]
    assert first["event"] == EVENTS[4] and first["dismissed"] is False and first["excepted_by"] == ""
    assert response.json()["next"] is None and response.json()["next_page_token"] == ""


@pytest.mark.parametrize(("query", "expected"), [
    ({"namespace": "bank"}, [3, 2]),
    ({"pod": "api-b-1"}, [3, 2]),
    ({"pod": "web-a-*"}, [1, 0]),
    ({"host": "node-2"}, [3, 1]),
    ({"feed": "malware"}, [2, 1]),
    ({"domain": "EVIL.example."}, [4, 2, 0]),
    ({"type": "other_type"}, [3]),
    ({"since": "2026-11-27T20:00:02Z"}, [4, 3, 2]),
    ({"until": "2026-11-27T20:00:02Z"}, [1, 0]),
    ({"namespace": "shop", "feed": "c2"}, [1, 0]),
])
def test_list_filters_as_the_grpc_event_filter(api, query, expected):
    assert ids(api.get("/events", params=query)) == [EVENTS[i]["id"] for i in expected]


def test_keyset_pages_follow_the_next_link_to_the_end_with_no_gap(api):
    seen, url = [], "/events?limit=2&namespace=shop"
    page = api.get("/events", params={"limit": 2})
    seen += ids(page)
    while page.json()["next"]:
        assert page.json()["next"].startswith("/api/v1/events?")
        page = api.get(page.json()["next"].removeprefix("/api/v1"))
        seen += ids(page)
    assert seen == newest_first(EVENTS)
    assert url  # the filters travel in the link too:
    first = api.get("/events", params={"limit": 1, "namespace": "shop"})
    following = first.json()["next"]
    assert "namespace=shop" in following
    assert ids(api.get(following.removeprefix("/api/v1"))) == [EVENTS[0]["id"]]


def test_get_one_event_and_404_as_json(api):
    one = api.get(f"/events/{EVENTS[2]['id']}")
    assert one.status_code == 200 and one.json()["event"] == EVENTS[2]
    missing = api.get("/events/no-such-id")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found" and "no-such-id" in missing.json()["error"]["message"]


def test_dismiss_hides_events_records_who_and_undismiss_shows_them_again(api):
    target = EVENTS[1]["id"]
    done = api.post("/events/dismiss", json={"ids": [target, "unknown-id"]})
    assert done.status_code == 200 and done.json() == {"changed": [target], "unknown": ["unknown-id"]}
    assert target not in ids(api.get("/events"))
    assert ids(api.get("/events", params={"dismissed_only": True})) == [target]
    shown = api.get(f"/events/{target}").json()
    assert shown["dismissed"] is True and shown["dismissed_by"] == "anonymous (--insecure)"
    assert shown["dismissed_at"].endswith("Z")
    assert target in ids(api.get("/events", params={"include_dismissed": "true"}))
    again = api.post("/events/undismiss", json={"ids": [target]})
    assert again.json() == {"changed": [target], "unknown": []}
    assert ids(api.get("/events")) == newest_first(EVENTS)


@pytest.mark.parametrize(("path", "params", "field"), [
    ("/events", {"limit": 0}, "query.limit"),
    ("/events", {"limit": "many"}, "query.limit"),
    ("/events", {"since": "yesterday"}, "query.since"),
    ("/events", {"since": "2026-11-27T20:00:00"}, "query.since"),
    ("/events", {"page_token": "not-a-token"}, "query.page_token"),
])
def test_bad_query_is_422_naming_the_field(api, path, params, field):
    response = api.get(path, params=params)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field and response.json()["error"]["code"] == "invalid"


def test_bad_bodies_and_unknown_paths_are_json_errors(api):
    for body in ({"ids": []}, {"ids": "one"}, {}, None):
        response = api.post("/events/dismiss", json=body)
        assert response.status_code == 422 and "error" in response.json()
    garbage = api.post("/events/dismiss", content=b"{not json", headers={"content-type": "application/json"})
    assert garbage.status_code == 422 and "error" in garbage.json()
    nowhere = api.get("/nowhere")
    assert nowhere.status_code == 404 and "/api/v1" in nowhere.json()["error"]["message"]
    wrong_method = api.delete("/events")
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]["code"] == "method_not_allowed"


def test_the_openapi_document_names_every_route(api):
    document = api.get("/openapi.json").json()
    assert {"/api/v1/events", "/api/v1/events/{event_id}", "/api/v1/events/dismiss", "/api/v1/events/undismiss",
            "/api/v1/events/stream", "/api/v1/feeds", "/api/v1/feeds/{name}", "/api/v1/feeds/{name}/sync",
            "/api/v1/feeds/{name}/manifest", "/api/v1/exceptions", "/api/v1/exceptions/{name}"} <= set(document["paths"])
