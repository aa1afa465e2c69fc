"""The web UI over TLS with real token files, in Chromium: the page asks for a token when the API answers
401, refuses a wrong one with the collector's message, reads with a viewer token and shows the 403 of a
change a viewer may not make; the UI's own files need no token and carry a Content-Security-Policy."""

from __future__ import annotations

import ssl

import httpx
import pytest

from tests.collector.eventdata import event
from tests.collector.securitykit import CONSUMER_TOKENS, pki, tls_flags, token_file  # noqa: F401
from tests.collector.uikit import browser, collector_ui  # noqa: F401

pytestmark = pytest.mark.timeout(180)

VIEWER_TOKEN = "viewer-token-ui-7e57"


def test_a_wrong_token_is_refused_with_a_message_and_a_viewer_reads_but_may_not_dismiss(
        browser, pki, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    consumer = token_file(tmp_path, CONSUMER_TOKENS[0], "consumer-tokens")
    viewer = token_file(tmp_path, VIEWER_TOKEN, "viewer-tokens")
    with collector_ui(browser, tmp_path, [event(1), event(2)], *tls_flags(pki), "--consumer-token-file",
                      str(consumer), "--viewer-token-file", str(viewer), scheme="https", host="localhost",
                      context_options={"ignore_https_errors": True}) as ui:
        files = httpx.get(f"{ui.base_url}/", verify=ssl.create_default_context(cafile=str(pki.ca)))
        assert files.status_code == 200 and "script-src 'self'" in files.headers["content-security-policy"]
        page = ui.open()
        dialog = page.locator("#token-dialog")
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text("asks for a bearer token")
        page.get_by_label("Bearer token").fill("not-a-token-anyone-knows")
        page.get_by_role("button", name="Sign in").click()
        expect(dialog).to_contain_text("The collector refused that token")
        expect(page.locator("#events-table tbody tr[data-id]")).to_have_count(0)
        page.get_by_label("Bearer token").fill(VIEWER_TOKEN)
        page.get_by_role("button", name="Sign in").click()
        expect(dialog).to_be_hidden()
        expect(page.locator("#events-table tbody tr[data-id]")).to_have_count(2)
        expect(page.locator("#live-state")).to_have_text("live")
        assert page.evaluate("sessionStorage.getItem('dnswatch.token')") == VIEWER_TOKEN
        page.locator(f"tr[data-id='{event(2)['id']}'] a").click()
        page.locator("#dismiss").click()
        expect(page.locator("#notice")).to_contain_text("is for consumer tokens")
        expect(page.locator("#events-table tbody tr[data-id]")).to_have_count(2)
        assert ui.console_errors == []
