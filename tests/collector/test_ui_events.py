"""The Security Events page in Chromium against a real collector: the table from the API, an event shipped
while the page is open, filters in the URL, the detail and its deep links, dismissal and an exception made
from an event."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.collector.eventdata import event
from tests.collector.httpkit import ship
from tests.collector.uikit import browser, collector_ui  # noqa: F401

pytestmark = pytest.mark.timeout(180)

EVENTS = [
    event(0, namespace="shop", pod="web-a-1", feeds=("c2",), domains=("evil.example",), host="node-1"),
    event(1, namespace="shop", pod="web-a-2", feeds=("c2", "malware"), domains=("bad.example",), host="node-2"),
    event(2, namespace="bank", pod="api-b-1", feeds=("malware",), domains=("evil.example",), host="node-1"),
    event(3, namespace="bank", pod="api-b-1", feeds=("phish",), domains=("phish.example",), host="node-2"),
    event(4, namespace="ops", pod="db-c-1", feeds=("c2",), domains=("c2.example",), host="node-1", count=7),
]


def rows(page):
    return page.locator("#events-table tbody tr[data-id]")


def test_stored_events_fill_the_table_newest_first_with_their_fields(browser, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    with collector_ui(browser, tmp_path, EVENTS) as ui:
        page = ui.open()
        expect(rows(page)).to_have_count(5)
        expect(rows(page).first).to_have_attribute("data-id", EVENTS[4]["id"])
        first = rows(page).first.locator("td")
        expect(first.nth(1)).to_have_text("db-c-1")
        expect(first.nth(2)).to_have_text("ops")
        expect(first.nth(3)).to_contain_text("c2.example")
        expect(first.nth(5)).to_have_text("c2")
        expect(first.nth(6)).to_have_text("7")
        expect(first.nth(7)).to_have_text("node-1")
        # The time in the browser's zone, the UTC instant on hover.
        expect(first.nth(0).locator("time")).to_have_attribute("title", "2026-11-27T20:00:04Z (UTC)")
        # The chart counts the events by feed: c2 three times, malware twice, phish once.
        expect(page.locator(".chart svg[role=img]")).to_have_attribute(
            "aria-label", "Events over time by feed: c2: 3, malware: 2, phish: 1")
        page.select_option("#chart-by", "namespace")
        expect(page.locator(".chart svg[role=img]")).to_have_attribute(
            "aria-label", "Events over time by namespace: bank: 2, shop: 2, ops: 1")
        assert ui.console_errors == []


def test_an_event_shipped_while_the_page_is_open_appears_without_a_reload(browser, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    with collector_ui(browser, tmp_path, EVENTS[:2]) as ui:
        page = ui.open()
        expect(rows(page)).to_have_count(2)
        expect(page.locator("#live-state")).to_have_text("live")
        page.evaluate("window.notReloaded = true")
        fresh = event(9, namespace="shop", pod="cart-x-1", feeds=("c2",), domains=("live.example",))
        ship(ui.collector.address, "node-3", [[fresh]])
        expect(page.locator(f"tr[data-id='{fresh['id']}']")).to_contain_text("live.example")
        expect(rows(page)).to_have_count(3)
        assert page.evaluate("window.notReloaded") is True
        # The same id sent again, grown: the row is replaced, not added.
        ship(ui.collector.address, "node-3", [[{**fresh, "record": {**fresh["record"], "count": 5}}]])
        expect(page.locator(f"tr[data-id='{fresh['id']}'] td").nth(6)).to_have_text("5")
        expect(rows(page)).to_have_count(3)
        assert ui.console_errors == []


def test_filters_are_in_the_url_and_a_filtered_view_reloads_as_it_was(browser, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    with collector_ui(browser, tmp_path, EVENTS) as ui:
        page = ui.open()
        expect(rows(page)).to_have_count(5)
        page.get_by_label("Namespace", exact=True).fill("bank")
        page.get_by_label("Feed", exact=True).fill("malware")
        page.get_by_role("button", name="Apply").click()
        expect(page).to_have_url(re.compile(r"#/events\?namespace=bank&feed=malware$"))
        expect(rows(page)).to_have_count(1)
        expect(rows(page).first).to_have_attribute("data-id", EVENTS[2]["id"])
        page.reload()
        expect(rows(page)).to_have_count(1)
        expect(page.get_by_label("Namespace", exact=True)).to_have_value("bank")
        page.get_by_label("Namespace", exact=True).fill("")
        page.get_by_label("Feed", exact=True).fill("")
        page.get_by_label("Domain").fill("EVIL.example")
        page.get_by_role("button", name="Apply").click()
        expect(rows(page)).to_have_count(2)
        since = ui.open("/#/events?since=2026-11-27T20:00:03Z")
        expect(rows(since)).to_have_count(2)
        assert ui.console_errors == []


def test_the_detail_shows_the_whole_record_and_the_webhooks_link_opens_it(browser, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    with collector_ui(browser, tmp_path, EVENTS) as ui:
        target = EVENTS[1]
        # {--ui-url}/events/ID, as Slack and Jira messages link to it.
        page = ui.open(f"/events/{target['id']}")
        expect(page).to_have_url(re.compile(rf"/#/events/{target['id']}$"))
        detail = page.locator("#event-detail")
        expect(detail.locator("h2")).to_have_text("bad.example")
        expect(detail).to_contain_text("web-a-2")
        expect(detail).to_contain_text("app=web")
        expect(detail).to_contain_text("Deployment web")
        expect(detail).to_contain_text("bad.example A 198.51.100.7")
        expect(detail).to_contain_text("node-2")
        match = detail.locator("table.matches tbody tr").first
        expect(match.locator("td")).to_have_text(["bad.example", "c2", "bad.example", "question", "1", "—"])
        expect(page.locator(f"tr[data-id='{target['id']}']")).to_have_class(re.compile("selected"))
        # Opened from the table with the keyboard, closed with Escape.
        page.locator(f"tr[data-id='{EVENTS[3]['id']}'] a").focus()
        page.keyboard.press("Enter")
        expect(detail.locator("h2")).to_have_text("phish.example")
        expect(detail.locator("h2")).to_be_focused()
        page.keyboard.press("Escape")
        expect(detail).to_be_hidden()
        assert ui.console_errors == []


def test_dismiss_hides_an_event_and_undismiss_shows_it(browser, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    with collector_ui(browser, tmp_path, EVENTS) as ui:
        api = f"{ui.base_url}/api/v1"
        target = EVENTS[3]["id"]
        page = ui.open(f"/#/events/{target}")
        page.locator("#dismiss").click()
        expect(page.locator(f"tr[data-id='{target}']")).to_have_count(0)
        expect(page.locator("#notice")).to_contain_text("dismissed")
        assert httpx.get(f"{api}/events/{target}").json()["dismissed"] is True
        expect(page.locator("#dismiss")).to_have_text("Undismiss")
        page.locator("#dismiss").click()
        expect(page.locator(f"tr[data-id='{target}']")).to_have_count(1)
        assert httpx.get(f"{api}/events/{target}").json()["dismissed"] is False
        only = ui.open("/#/events?dismissed_only=true")
        expect(only.locator("#events-table tbody")).to_contain_text("No events match")
        assert ui.console_errors == []


def test_an_exception_made_from_an_event_hides_it_from_the_default_view(browser, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    with collector_ui(browser, tmp_path, EVENTS) as ui:
        api = f"{ui.base_url}/api/v1"
        target = EVENTS[0]
        page = ui.open(f"/#/events/{target['id']}")
        page.locator("#create-exception").click()
        selector = page.get_by_label("Selector")
        expect(selector).to_have_value('source_namespace = "shop" AND "record.suspicious_domains" IN {"evil.example"}')
        expect(page.get_by_label("Name", exact=True)).to_have_value("shop-evil.example")
        # A selector that does not parse: the API's 422, shown at the field it names.
        selector.fill('source_namespace = "shop" AND')
        page.get_by_role("button", name="Create exception").click()
        expect(page.locator("[data-field='spec.selector'] .field-error")).to_contain_text("selector")
        expect(selector).to_have_attribute("aria-invalid", "true")
        selector.fill('source_namespace = "shop" AND "record.suspicious_domains" IN {"evil.example"}')
        page.get_by_role("button", name="Create exception").click()
        expect(page.locator("#notice")).to_contain_text("hidden from the default view")
        expect(page.locator(f"tr[data-id='{target['id']}']")).to_have_count(0)
        expect(rows(page)).to_have_count(4)  # bank's evil.example is not shop's
        assert httpx.get(f"{api}/events/{target['id']}").json()["excepted_by"] == "shop-evil.example"
        excepted = ui.open("/#/events?include_excepted=true")
        expect(excepted.locator(f"tr[data-id='{target['id']}']")).to_contain_text("excepted by shop-evil.example")
        listed = ui.open("/#/exceptions")
        expect(listed.locator("#exceptions-table tbody tr")).to_contain_text(["shop-evil.example"])
        assert ui.console_errors == []


def test_keyset_pages_load_more_until_the_last(browser, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    many = [event(n, namespace="shop", seconds=n) for n in range(130)]
    with collector_ui(browser, tmp_path, many) as ui:
        page = ui.open()
        expect(rows(page)).to_have_count(100)
        expect(page.locator("#event-count")).to_have_text("(100+ shown)")
        page.get_by_role("button", name="Load more").click()
        expect(rows(page)).to_have_count(130)
        expect(page.get_by_role("button", name="Load more")).to_be_hidden()
        expect(rows(page).last).to_have_attribute("data-id", many[0]["id"])
        assert ui.console_errors == []
