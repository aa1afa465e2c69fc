"""Durations as every command takes them: `30s`, `15m`, `2h`, `1d`, `1w`, `500ms`, `1h30m`, or a plain number of
seconds (`60`, `0.5`), the form the flags took before units (pure).

    parse_duration("1h30m")                      # 5400.0
    parse_duration("90")                         # 90.0
    parse_duration("90", bare_number=False)      # ValueError: a time filter needs its unit

One parser for `dnswatch-agent` (`--window`, the timeouts), `dnswatch-collector` (`--pull-timeout`,
`--feeds-dir-poll`) and `dnswatch` (`--since`/`--until`, durations before now), so a duration written for one
is read the same by the others. Whether a value is in range (more than 0, finite, at least 2 s) is each flag's
own business: a plain number is read as `float` reads it, as those flags always did.
"""

from __future__ import annotations

import argparse
import re

__all__ = ["DURATION_FORMS", "duration_flag", "parse_duration"]

DURATION_FORMS = "30s, 15m, 2h, 1d, 1h30m"
"""The forms to name in a message about a duration."""

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_PARTS = re.compile(rf"(?:{_PART.pattern})+")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str, *, bare_number: bool = True) -> float:
    """Seconds from `text`: number-and-unit parts (`1h30m`), or with `bare_number` a number alone (seconds,
    as `float` reads it); ValueError saying which forms are accepted otherwise."""
    text = text.strip()
    if _PARTS.fullmatch(text):
        return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _PART.findall(text))
    if bare_number:
        try:
            return float(text)
        except ValueError:
            pass
        raise ValueError(f"{text!r} is not a duration: {DURATION_FORMS}, or a number of seconds")
    raise ValueError(f"{text!r} is not a duration: {DURATION_FORMS}")


def duration_flag(text: str) -> float:
    """`parse_duration` as an argparse `type`."""
    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
