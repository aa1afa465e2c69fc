"""The Threat Feeds page in Chromium against a real collector and a real HTTP feed server: a feed added
through the form is pulled and listed with its entries, a 422 is shown at its field, the manifest downloads,
and the Action menu edits, disables and deletes."""

from __future__ import annotations

import re

import pytest
import yaml

from harness.collector import manifest, pulled
from harness.feedserver import FeedServer
from tests.collector.uikit import browser, collector_ui  # noqa: F401

pytestmark = pytest.mark.timeout(180)

BODY = b"evil.example\nbad.example\n*.c2.example\nnot a name at all!\n"


def feed_row(page, name: str):
    return page.locator(f"#feeds-table tr[data-feed='{name}']")


def test_a_feed_added_through_the_form_is_pulled_and_listed_with_its_entries(browser, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    with FeedServer() as server, collector_ui(browser, tmp_path, []) as ui:
        server.serve("/ui-c2.txt", BODY)
        page = ui.open("/#/feeds")
        expect(page.locator("#feeds-table tbody")).to_contain_text("No feeds yet")
        page.locator("#add-feed").click()
        page.get_by_label("Name", exact=True).fill("ui-c2")
        page.get_by_label("Description").fill("C2 domains from the test server")
        page.get_by_label("URL").fill(server.url("/ui-c2.txt"))
        page.get_by_label("Pull period").fill("1m")
        page.get_by_label("Labels").fill("team=secops")
        page.get_by_role("button", name="Add Feed").click()
        period_error = page.locator("[data-field='spec.pull.period'] .field-error")
        expect(period_error).to_contain_text("5m")
        expect(page.get_by_label("Pull period")).to_be_focused()
        page.get_by_label("Pull period").fill("1h")
        page.get_by_role("button", name="Add Feed").click()
        expect(page).to_have_url(re.compile(r"#/feeds/ui-c2$"))
        ui.collector.wait_for(pulled("ui-c2"), "the feed added through the UI pulled", deadline=20)
        listed = ui.open("/#/feeds")
        cells = feed_row(listed, "ui-c2").locator("td")
        expect(cells.nth(0)).to_have_text("DomainNameSet")
        expect(cells.nth(1)).to_have_text("Enabled")
        expect(cells.nth(2)).to_have_text("3")
        expect(cells.nth(3)).to_have_text("1")
        expect(cells.nth(5)).to_have_text("1")
        expect(cells.nth(7)).to_contain_text("RejectedLines")
        written = yaml.safe_load((tmp_path / "feeds" / "globalthreatfeed-ui-c2.yaml").read_text())
        assert written["metadata"]["labels"] == {"team": "secops"}
        assert written["spec"]["pull"] == {"period": "1h", "http": {
            "url": server.url("/ui-c2.txt"), "format": {"newlineDelimited": {}}}}
        detail = ui.open("/#/feeds/ui-c2")
        expect(detail.locator("main")).to_contain_text("not a name at all!")  # a rejected sample, with why
        assert ui.console_errors == []


def test_the_action_menu_downloads_edits_disables_and_deletes_a_feed(browser, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    with FeedServer() as server:
        server.serve("/c2.txt", BODY)
        (tmp_path / "feeds").mkdir()
        text = manifest("c2", server.url("/c2.txt")).replace("spec:\n", "spec:\n  severity: 70\n")
        (tmp_path / "feeds" / "globalthreatfeed-c2.yaml").write_text(text)
        with collector_ui(browser, tmp_path, []) as ui:
            ui.collector.wait_for(pulled("c2"), "c2 pulled")
            page = ui.open("/#/feeds")
            row = feed_row(page, "c2")
            expect(row.locator("td").nth(2)).to_have_text("3")
            row.get_by_label("Actions for c2").first.click()
            with page.expect_download() as downloading:
                row.get_by_role("menuitem", name="Download manifest").click()
            download = downloading.value
            assert download.suggested_filename == "c2.yaml"
            downloaded = yaml.safe_load(open(download.path(), encoding="utf-8"))
            assert downloaded["kind"] == "GlobalThreatFeed" and downloaded["metadata"]["name"] == "c2"

            row.get_by_label("Actions for c2").first.click()
            row.get_by_role("menuitem", name="Sync now").click()
            expect(page.locator("#notice")).to_contain_text("Feed c2: ")

            row.get_by_label("Actions for c2").first.click()
            row.get_by_role("menuitem", name="Edit").click()
            expect(page).to_have_url(re.compile(r"#/feeds/c2/edit$"))
            expect(page.get_by_label("URL")).to_have_value(server.url("/c2.txt"))
            page.get_by_label("Description").fill("edited in the UI")
            page.get_by_role("button", name="Save").click()
            expect(page).to_have_url(re.compile(r"#/feeds/c2$"))
            expect(page.locator("dl.facts")).to_contain_text("edited in the UI")
            edited = yaml.safe_load((tmp_path / "feeds" / "globalthreatfeed-c2.yaml").read_text())
            assert edited["spec"]["severity"] == 70  # a field the form does not show is kept

            page.goto(f"{ui.base_url}/#/feeds")
            row = feed_row(page, "c2")
            row.get_by_label("Actions for c2").first.click()
            row.get_by_role("menuitem", name="Disable").click()
            expect(feed_row(page, "c2").locator("td").nth(1)).to_have_text("Disabled")

            page.once("dialog", lambda dialog: dialog.accept())
            feed_row(page, "c2").get_by_label("Actions for c2").first.click()
            feed_row(page, "c2").get_by_role("menuitem", name="Delete").click()
            expect(page.locator("#notice")).to_contain_text("Feed c2 deleted")
            expect(feed_row(page, "c2")).to_have_count(0)
            assert not (tmp_path / "feeds" / "globalthreatfeed-c2.yaml").exists()
            assert ui.console_errors == []
