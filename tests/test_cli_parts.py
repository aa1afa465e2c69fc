"""The pure parts the three commands share for their flags: one duration syntax (dnswatch/durations.py) and the
collector's address checked before any connection (dnswatch/collectoraddress.py)."""

from __future__ import annotations

import argparse

import pytest

from dnswatch.collectoraddress import check_collector_address
from dnswatch.durations import duration_flag, parse_duration
from dnswatch.errors import BadInput


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("15m", 900), ("2h", 7200), ("1d", 86400), ("1w", 604800), ("1h30m", 5400), ("500ms", 0.5),
    ("1.5s", 1.5), (" 2m ", 120),
    # A plain number is seconds, as float reads it: the form the flags took before units.
    ("60", 60), ("0.5", 0.5), ("0", 0),
])
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)
    assert duration_flag(text) == pytest.approx(seconds)


def test_a_bare_number_can_be_refused_where_it_would_be_ambiguous():
    assert parse_duration("90s", bare_number=False) == 90
    with pytest.raises(ValueError, match="not a duration: 30s, 15m, 2h, 1d, 1h30m$"):
        parse_duration("90", bare_number=False)


@pytest.mark.parametrize("text", ["", "soon", "1y", "m", "-5m", "1h 30m", "5 s"])
def test_what_is_no_duration(text):
    with pytest.raises(ValueError, match="is not a duration: 30s, 15m, 2h, 1d, 1h30m, or a number of seconds"):
        parse_duration(text)
    with pytest.raises(argparse.ArgumentTypeError):
        duration_flag(text)


@pytest.mark.parametrize("address", ["collector.dnswatch:7443", "127.0.0.1:1", "[::1]:7443", "[2001:db8::1]:443",
                                     "dns:///collector.dnswatch:7443", "unix:/run/dnswatch.sock",
                                     "ipv4:127.0.0.1:7443"])
def test_addresses_that_are_used_as_they_are(address):
    assert check_collector_address(address) == address


@pytest.mark.parametrize(("address", "says"), [
    ("", "--collector is empty: give the collector's address, HOST:PORT"),
    ("::1:7443", "an IPv6 address goes in brackets: --collector [::1]:7443"),
    ("fe80::1", "an IPv6 address goes in brackets, followed by the port: --collector [fe80::1]:PORT"),
    ("[::1]", "no port"),
    ("https://user@collector:7443/x", "a URL, but --collector takes HOST:PORT: give --collector collector:7443"),
    ("HTTP://collector", "give --collector collector:PORT"),
    ("collector", "no port: give HOST:PORT, e.g. --collector collector:7443"),
    (":7443", "no host"),
    ("collector:http", "the port must be a number from 1 to 65535"),
    ("collector:0", "the port must be a number from 1 to 65535"),
])
def test_addresses_that_are_mistakes_name_the_form_to_use(address, says):
    with pytest.raises(BadInput, match=None) as raised:
        check_collector_address(address)
    assert says in str(raised.value)
