"""Rendering events for people (`-o table`) and for programs (`-o json`, one object per line)."""

from __future__ import annotations

import json
import sys
from typing import TextIO


class JsonLines:
    """Writes each event emission as it happens: a later emission of an id supersedes the earlier ones."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self._out = out

    def __call__(self, event: dict) -> None:
        self._out.write(json.dumps(event, separators=(",", ":"), ensure_ascii=False) + "\n")
        self._out.flush()

    def close(self) -> None:
        pass


class Table:
    """Keeps the latest emission of each event id and prints them, in order of first sight, at the end."""

    COLUMNS = ("TIME", "SOURCE", "CLIENT", "SUSPICIOUS", "FEEDS", "QUERY", "RCODE", "COUNT")

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self._out = out
        self._latest: dict[str, dict] = {}

    def __call__(self, event: dict) -> None:
        self._latest[event["id"]] = event

    def close(self) -> None:
        rows = [self.COLUMNS] + [self._row(event) for event in self._latest.values()]
        widths = [max(len(row[i]) for row in rows) for i in range(len(self.COLUMNS))]
        for row in rows:
            self._out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() + "\n")
        self._out.flush()

    @staticmethod
    def _row(event: dict) -> tuple[str, ...]:
        record = event["record"]
        if event["source_name"] != "-":
            source = f"{event['source_namespace']}/{event['source_name']}"
        elif event["source_namespace"] != "-":
            source = f"{event['source_namespace']}/{event['source_name_aggr']}"
        else:
            source = "-"
        suspicious = ",".join(record["suspicious_domains"] + record["suspicious_ips"])
        query = f"{record.get('qname') or '-'} {record.get('qtype') or ''}".strip()
        return (
            event["time"],
            source,
            event["source_ip"],
            suspicious,
            ",".join(record["feeds"]),
            query,
            record.get("rcode") or "-",
            str(record["count"]),
        )


def renderer(kind: str, out: TextIO = sys.stdout):
    return {"json": JsonLines, "table": Table}[kind](out)
