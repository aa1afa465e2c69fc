"""What a collector's store holds, read back for assertions, and a free port to serve one on."""

from __future__ import annotations

import asyncio
import socket

from collector.store import open_store
from dnswatch.eventfilter import EventFilter


def without_lines(event: dict) -> dict:
    """The event as an agent holding its feeds from the collector sends it: the collector fills in the lines."""
    record = {**event["record"], "matches": [{**m, **{key: None for key in ("line", "line_text") if key in m}}
                                             for m in event["record"]["matches"]]}
    return {**event, "record": record}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stored(db_url: str) -> tuple[dict[str, dict], int]:
    """Every stored event by id, and the store's latest change sequence number (one per insert or update)."""
    async def read() -> tuple[dict[str, dict], int]:
        store = await open_store(db_url)
        try:
            found, token = {}, ""
            while True:
                page, token = await store.list_events(EventFilter(), 1000, token)
                found.update((item.event["id"], item.event) for item in page)
                if not token:
                    return found, await store.latest_event_seq()
        finally:
            await store.close()

    return asyncio.run(read())
