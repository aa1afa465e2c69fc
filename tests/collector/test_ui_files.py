"""The web UI's files as a real collector serves them (no browser): the page at /, its modules under /ui/
with their types and security headers, the webhooks' /events/ID link redirecting to the event's route, and
nothing outside the UI's folder; none of it in the API's OpenAPI document."""

from __future__ import annotations

import httpx
import pytest

from collector.shell.httpapi.uiroutes import UI_FOLDER
from tests.collector.httpkit import with_http

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def client(tmp_path):
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    running, port = with_http(f"sqlite:///{tmp_path / 'collector.sqlite'}", feeds)
    with running, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        yield client


def test_the_page_and_every_module_it_loads_are_served_with_their_types_and_policy(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="ui/app.js">' in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy and "frame-ancestors 'none'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    for module in sorted(UI_FOLDER.glob("*.js")):
        served = client.get(f"/ui/{module.name}")
        assert served.status_code == 200, module.name
        assert served.headers["content-type"].startswith("text/javascript")
        assert served.content == module.read_bytes()
    assert client.get("/ui/style.css").headers["content-type"].startswith("text/css")
    again = client.get("/ui/app.js", headers={"If-None-Match": client.get("/ui/app.js").headers["etag"]})
    assert again.status_code == 304


def test_the_webhooks_event_link_redirects_to_the_events_route_relative_to_where_it_is(client):
    answer = client.get("/events/6b09e3f83c989cc963a157772a03f859")
    assert answer.status_code == 302
    assert answer.headers["location"] == "../#/events/6b09e3f83c989cc963a157772a03f859"


@pytest.mark.parametrize("path", ["/ui/../__init__.py", "/ui/%2e%2e/uiroutes.py", "/ui/nothing.js", "/ui/",
                                  "/ui/..%2F..%2Fapp.py"])
def test_nothing_outside_the_ui_folder_is_served(client, path):
    answer = client.get(path)
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"]["code"] == "not_found"


def test_the_ui_is_not_part_of_the_api_document(client):
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert all(path.startswith("/api/v1/") for path in paths)
