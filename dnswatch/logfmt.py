"""Logs for people (`--log-format text`, the default) or for a log pipeline (`--log-format json`).

    add_log_arguments(parser)                  # --log-level, --log-format
    configure_logging(args.log_level, args.log_format)

The JSON form is one object per line on stderr — what Loki, Fluent Bit, or `kubectl logs | jq` read without
a parser: `time` (RFC 3339, UTC, milliseconds), `level`, `logger`, `message`, then anything the call passed in
`extra={...}` (a feed name, a peer, a count) as fields of their own, and `exception` with the traceback when
there is one. Values that JSON cannot hold are written as their `str()`: a log line is never lost to a type.

Shared by the agent and the collector (see the import contract in pyproject.toml).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from typing import Any, TextIO

__all__ = ["LOG_FORMATS", "LOG_LEVELS", "JsonFormatter", "TEXT_FORMAT", "add_log_arguments", "configure_logging"]

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# The attributes every LogRecord has; anything else on a record came from `extra=` and is the caller's field.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime",
                                                                                         "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (a traceback's newlines are escaped inside `exception`)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _rfc3339(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_") and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str, separators=(",", ":"))


def _rfc3339(created: float) -> str:
    seconds = int(created)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int((created - seconds) * 1000):03d}Z"


def add_log_arguments(parser: argparse.ArgumentParser, *, default_level: str = "INFO") -> None:
    """`--log-level` and `--log-format` on a command's parser."""
    # Either case: `--log-level debug` is what people type.
    parser.add_argument("--log-level", default=default_level, choices=LOG_LEVELS, type=str.upper,
                        help=f"the least severe level logged (default {default_level})")
    parser.add_argument("--log-format", default="text", choices=LOG_FORMATS,
                        help="text for people, json for one JSON object per line (default text)")


def configure_logging(level: str | int = "INFO", log_format: str = "text", stream: TextIO | None = None) -> None:
    """Send the root logger to `stream` (stderr) in the format asked; replaces any handler set before."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)


class _StderrHandler(logging.StreamHandler):
    """Writes to `sys.stderr` as it is when a record is logged, not as it was at set-up: a command's `main()`
    called in-process (tests, embedding) must not leave the root logger writing to a stream replaced or
    closed since (logging's own `lastResort` handler follows sys.stderr the same way)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass  # always the current sys.stderr
