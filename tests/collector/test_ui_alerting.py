"""The Exceptions and Webhooks pages in Chromium against a real collector: an exception created, edited
(its 422 shown at the field) and deleted through the forms; a webhook listed with its status and a test
delivery sent to a real receiver."""

from __future__ import annotations

import re

import pytest
import yaml

from harness.webhookreceiver import WebhookReceiver
from tests.collector.eventdata import event
from tests.collector.uikit import browser, collector_ui  # noqa: F401

pytestmark = pytest.mark.timeout(180)


def test_an_exception_is_created_edited_and_deleted_through_its_forms(browser, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    events = [event(0, namespace="ci", domains=("a.test.example",)), event(1, namespace="shop")]
    with collector_ui(browser, tmp_path, events) as ui:
        page = ui.open("/#/exceptions")
        expect(page.locator("#exceptions-table tbody")).to_contain_text("No exceptions")
        page.get_by_role("link", name="Add exception").click()
        page.get_by_label("Name", exact=True).fill("ci-scanner")
        page.get_by_label("Selector").fill('source_namespace = ci AND "record.suspicious_domains" IN {"*.test.example"}')
        page.get_by_label("Period (optional)").fill("168h")
        page.get_by_role("button", name="Add exception").click()
        # A period counts from a start time: the API's 422 names the field.
        expect(page.locator("[data-field='spec.period'] .field-error")).to_contain_text("startTime")
        page.get_by_label("Period (optional)").fill("")
        page.get_by_role("button", name="Add exception").click()
        expect(page).to_have_url(re.compile(r"#/exceptions/ci-scanner$"))
        expect(page.locator("dl.facts")).to_contain_text("active")
        expect(page.locator("dl.facts dd").nth(1)).to_have_text("1")  # the ci event it hides

        page.get_by_role("link", name="Edit").click()
        page.get_by_label("Description").fill("the CI runners resolve test domains on purpose")
        page.get_by_role("button", name="Save").click()
        expect(page).to_have_url(re.compile(r"#/exceptions/ci-scanner$"))
        expect(page.locator("dl.facts")).to_contain_text("the CI runners resolve test domains on purpose")
        written = yaml.safe_load((tmp_path / "feeds" / "alertexception-ci-scanner.yaml").read_text())
        assert written["spec"]["description"] == "the CI runners resolve test domains on purpose"

        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Delete").click()
        expect(page).to_have_url(re.compile(r"#/exceptions$"))
        expect(page.locator("#exceptions-table tbody")).to_contain_text("No exceptions")
        assert not (tmp_path / "feeds" / "alertexception-ci-scanner.yaml").exists()
        assert ui.console_errors == []


def test_a_webhook_is_listed_with_its_status_and_a_test_event_reaches_the_receiver(browser, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    with WebhookReceiver() as receiver:
        (tmp_path / "feeds").mkdir()
        (tmp_path / "feeds" / "securityeventwebhook-soc.yaml").write_text(
            "apiVersion: dnswatch.dev/v1\nkind: SecurityEventWebhook\nmetadata:\n  name: soc\nspec:\n"
            "  consumer: Generic\n  state: Enabled\n  query: \"\"\n  config:\n    - name: url\n"
            f"      value: {receiver.url('/hook')}\n")
        with collector_ui(browser, tmp_path, []) as ui:
            page = ui.open("/#/webhooks")
            row = page.locator("#webhooks-table tbody tr").filter(has_text="soc")
            expect(row.locator("td").nth(0)).to_have_text("Generic")
            expect(row.locator("td").nth(1)).to_have_text("Enabled")
            row.get_by_role("button", name="Send a test event to soc").click()
            expect(page.locator("#notice")).to_contain_text("the sample event was delivered (HTTP 200)")
            assert [r.path for r in receiver.received] == ["/hook"]
            row.get_by_role("link", name="soc").click()
            expect(page.locator("main h1")).to_have_text("Webhook soc")
            expect(page.locator("main pre").first).to_contain_text("Generic")
            assert ui.console_errors == []
