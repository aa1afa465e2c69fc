"""URL redaction (dnswatch/urlredact.py): credentials never shown, everything else as written."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dnswatch.urlredact import MASK, redact_urls, redacted_url, url_secrets


@pytest.mark.parametrize(("url", "shown"), [
    ("https://user:hunter22@feeds.example/c2.txt", "https://user:***@feeds.example/c2.txt"),
    ("https://feeds.example/c2.txt?token=abc&key=def", "https://feeds.example/c2.txt?token=***&key=***"),
    ("https://user:pw@host:8443/p/a/t/h?token=t&fmt=csv#frag", "https://user:***@host:8443/p/a/t/h?token=***&fmt=***#***"),
    ("https://ghp_0123456789abcdef@host/feed", "https://***@host/feed"),  # a token as the user name
    ("https://:onlypass@host/feed", "https://***@host/feed"),
    ("https://host/feed?0123456789abcdef", "https://host/feed?***"),  # a bare token as the whole query
    ("https://host/feed?a=&b=1", "https://host/feed?a=&b=***"),
    ("http://[2001:db8::1]:8080/f?k=v", "http://[2001:db8::1]:8080/f?k=***"),
    ("https://u:p%40ss@host/f", "https://u:***@host/f"),
    ("https://u:pa/ss@host/feed", "https://u:***@host/feed"),  # an unencoded `/` in the password
    ("https://host/@scope/feed", "https://host/@scope/feed"),  # an `@` in the path is no userinfo
    ("https://feeds.example/c2.txt", "https://feeds.example/c2.txt"),
    ("file:///var/feeds/c2.txt", "file:///var/feeds/c2.txt"),
    ("", ""),
])
def test_redacted_url(url, shown):
    assert redacted_url(url) == shown
    assert redacted_url(shown) == shown  # redacting again changes nothing


def test_urls_inside_a_text_are_redacted_and_the_sentence_kept():
    text = ("Client error '404 Not Found' for url 'https://u:s3cret-pw@h.example/x?token=t0k3n-abc'\n"
            "Redirect location: https://cdn.example/f?sig=abcdef&exp=1, then GET http://u:pw1234@h/y: HTTP 500.")
    assert redact_urls(text) == (
        "Client error '404 Not Found' for url 'https://u:***@h.example/x?token=***'\n"
        "Redirect location: https://cdn.example/f?sig=***&exp=***, then GET http://u:***@h/y: HTTP 500.")
    assert redact_urls("no url here: user:pw@host") == "no url here: user:pw@host"


def test_url_secrets_lists_the_hidden_parts_as_written_and_decoded():
    secrets = url_secrets("https://user:p%40ssw0rd@h/f?token=a%2Bb%2Bc%2Bd&page=1#fragment")
    assert set(secrets) == {"p%40ssw0rd", "p@ssw0rd", "a%2Bb%2Bc%2Bd", "a+b+c+d", "fragment"}
    assert "1" not in secrets  # too short to scrub from free text
    assert url_secrets("https://h/f") == ()


_SECRET = st.text(string.ascii_letters + string.digits + "-._~!$'()*+,;=%", min_size=6, max_size=30).filter(
    lambda s: "%" not in s or s.endswith("%"))


@given(password=_SECRET, token=_SECRET, path=st.text(string.ascii_lowercase + "/", max_size=20))
def test_a_password_or_query_value_never_survives(password, token, path):
    marker_password, marker_token = f"P{password}Z", f"T{token}Q"
    url = f"https://user:{marker_password}@feeds.example/{path}?token={marker_token}&fmt=txt"
    shown = redacted_url(url)
    assert marker_password not in shown and marker_token not in shown
    assert shown == f"https://user:{MASK}@feeds.example/{path}?token={MASK}&fmt={MASK}"
    in_text = redact_urls(f"GET {url}: HTTP 404 Not Found")
    assert marker_password not in in_text and marker_token not in in_text


@given(st.text(max_size=80))
def test_any_text_is_redacted_without_failing(text):
    assert isinstance(redacted_url(text), str)
    assert isinstance(redact_urls(text), str)
    assert isinstance(url_secrets(text), tuple)
