"""The collector's storage behind one interface: SQLite by default, PostgreSQL for several replicas (docs/operations.md).

    store = await open_store("sqlite:///var/lib/dnswatch/db.sqlite")   # or postgresql://user@host/db
    await store.save_feed("malware", content="DomainNameSet", version=1, sha256=..., entries=[...],
                          status=status.to_dict())
    feed = await store.load_feed("malware")        # StoredFeed | None, the last good set and its status
    await store.close()

What is kept, and why: the current good set of every feed and its status (so a restarted collector serves
the same sets at the same versions), plus the last `keep_versions` whole sets per feed (default 3), so that
an agent which reconnects holding a recent version gets a delta computed from two stored sets.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from collector.store.base import (DEFAULT_KEEP_VERSIONS, BadStoreUrl, FeedHeader, FeedVersion, Store,
                                  StoredFeed, StoreError, VersionConflict)
from collector.store.base import BadEvent, BadPageToken, IngestResult, MarkResult, StoredEvent
from collector.store.sql import Dialect, SqlStore

__all__ = ["BadStoreUrl", "DEFAULT_KEEP_VERSIONS", "FeedHeader", "FeedVersion", "Store", "StoreError",
           "StoredFeed", "VersionConflict", "open_store", "URL_FORMS",
           "BadEvent", "BadPageToken", "IngestResult", "MarkResult", "StoredEvent"]

URL_FORMS = ("sqlite:///ABSOLUTE/PATH.sqlite, sqlite:RELATIVE/PATH.sqlite or "
             "postgresql://USER[:PASSWORD]@HOST[:PORT]/DB")
"""The --db forms we accept, for messages."""


async def open_store(url: str, *, keep_versions: int = DEFAULT_KEEP_VERSIONS) -> Store:
    """Connect to the store at `url`, creating or upgrading its schema; BadStoreUrl or StoreError if not."""
    return await SqlStore(_dialect_for(url), keep_versions=keep_versions).open()


def _dialect_for(url: str) -> Dialect:
    # Each backend's driver is imported only when asked for: a SQLite collector never loads psycopg.
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "sqlite":
        from collector.store.sqlite import SqliteDialect

        return SqliteDialect(_sqlite_path(url))
    if scheme in ("postgresql", "postgres"):
        import psycopg

        from collector.store.postgres import PostgresDialect

        try:
            return PostgresDialect(url)
        except psycopg.Error:
            raise BadStoreUrl(f"malformed postgresql store URL; use {URL_FORMS}") from None
    if not scheme or "/" in scheme or "\\" in scheme:
        raise BadStoreUrl(f"store URL has no scheme (a bare path?); use {URL_FORMS}")
    raise BadStoreUrl(f"unsupported store URL scheme {scheme!r}; use {URL_FORMS}")


def _sqlite_path(url: str) -> str:
    parts = urlsplit(url)
    if parts.netloc:
        raise BadStoreUrl(f"sqlite store URL names a host ({parts.netloc!r}); use {URL_FORMS}")
    path = unquote(parts.path)
    if path == "/:memory:":
        path = ":memory:"
    if not path:
        raise BadStoreUrl(f"sqlite store URL has no file path; use {URL_FORMS}")
    return path
