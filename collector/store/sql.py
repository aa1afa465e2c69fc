"""The one implementation of the store over SQL, shared by SQLite and PostgreSQL.

Every transaction is written once, against the DB-API connection of the backend (stdlib sqlite3, or
psycopg 3's connection), in SQL both engines accept; a `Dialect` supplies the few spellings that differ.
Each store owns one worker thread holding its connection: calls queue on it in order, so the event loop
never blocks on the database, and the compression of a large set (which would block the loop with any
driver) runs on the default executor before the write is queued. One code path is why the PostgreSQL
side does not use psycopg's async connection: the two backends could not then share these transactions.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import json
import time
from typing import Any, Callable, Iterator, Protocol, TypeVar

from collector.store.base import (DEFAULT_KEEP_VERSIONS, FeedHeader, FeedVersion, StoredFeed, StoreError,
                                  VersionConflict, from_epoch, pack_entries, unpack_entries)
from collector.store.events import EventStoreMixin
from collector.store.forwardcursors import ForwardCursorMixin
from collector.store.schema import LATEST_VERSION, MIGRATIONS, SCHEMA_VERSION_TABLE
from collector.store.webhookqueue import WebhookQueueMixin

T = TypeVar("T")

_HEADER = "name, content, version, sha256, entry_count, saved_at, status, status_saved_at"


class Dialect(Protocol):
    """What differs between the engines: connecting, a few spellings, and which errors are theirs."""

    backend: str
    """`sqlite` or `postgresql`, as in messages."""
    where: str
    """Where the database is, for messages (never a password)."""
    bytes_type: str
    """The binary column type: BLOB or BYTEA."""
    begin_write: str
    """The statement opening a write transaction (SQLite takes its write lock up front)."""
    for_update: str
    """Suffix locking the selected row until commit (empty on SQLite, whose writers are serialized)."""
    errors: tuple[type[BaseException], ...]
    """The driver's exception classes, turned into StoreError."""
    separate_reads: bool
    """Whether a second connection sees the same database (not so for SQLite's :memory:)."""

    def connect(self) -> Any:
        """A new connection in autocommit mode (transactions are opened explicitly)."""

    def lock_migrations(self, conn: Any) -> None:
        """Serialize schema migrations between processes, inside the open transaction."""

    def is_broken(self, conn: Any) -> bool:
        """True when the connection is lost and a new one is needed."""

    def sql(self, text: str) -> str:
        """The statement in the driver's parameter style (written with `?`)."""

    def utf8_of(self, column: str) -> str:
        """The SQL expression of a text column's UTF-8 bytes (read without decoding them)."""


class SqlStore(EventStoreMixin, ForwardCursorMixin, WebhookQueueMixin):
    """A Store over one SQL connection in a worker thread. Build it with `open_store(url)`.

    The event methods come from EventStoreMixin (collector/store/events.py), the forwarding cursors from
    ForwardCursorMixin (collector/store/forwardcursors.py), the webhook queue from WebhookQueueMixin
    (collector/store/webhookqueue.py)."""

    def __init__(self, dialect: Dialect, *, keep_versions: int = DEFAULT_KEEP_VERSIONS) -> None:
        if keep_versions < 2:
            raise ValueError("keep_versions must be at least 2 (the current set and the one before it)")
        self.backend = dialect.backend
        self._dialect = dialect
        self._keep_versions = keep_versions
        self._conn: Any = None
        self._closed = False
        self._thread = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"dnswatch-store-{dialect.backend}")
        self._reader: _Reader | None = None

    async def open(self) -> "SqlStore":
        """Connect and bring the schema up to date."""
        try:
            await self._call(self._migrate)
        except BaseException:
            await self.close()
            raise
        return self

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True

        def close_connection() -> None:
            if self._conn is not None:
                with contextlib.suppress(*self._dialect.errors):
                    self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._thread, close_connection)
        self._thread.shutdown(wait=True)
        if self._reader is not None:
            await asyncio.get_running_loop().run_in_executor(self._reader.thread, self._reader.close)
            self._reader.thread.shutdown(wait=True)
        self._close_ingest_line()

    async def __aenter__(self) -> "SqlStore":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.backend} {self._dialect.where}>"

    # -- feeds ------------------------------------------------------------------------------------------

    async def save_feed(self, name: str, *, content: str, version: int, sha256: str,
                        entries: list[str] | tuple[str, ...], status: dict[str, Any],
                        payload: bytes | None = None) -> None:
        if not isinstance(version, int) or version < 1:
            raise ValueError(f"feed {name!r}: version must be an integer of at least 1, got {version!r}")
        blob = await asyncio.to_thread(pack_entries, entries)
        status_json = json.dumps(status, separators=(",", ":"))
        await self._call(self._save_feed, name, content, version, sha256, len(entries), blob,
                         None if payload is None else bytes(payload), status_json)

    async def load_feed(self, name: str) -> StoredFeed | None:
        row = await self._call(self._fetch_one,
                               f"SELECT {_prefixed('f.')}, v.entries, v.payload FROM feeds AS f "
                               "JOIN feed_versions AS v ON v.name = f.name AND v.version = f.version "
                               "WHERE f.name = ?", (name,))
        if row is None:
            return None
        entries = await asyncio.to_thread(unpack_entries, row[8], row[4])
        return StoredFeed(*_header_fields(row), entries=entries, payload=_bytes_or_none(row[9]))

    async def feed_header(self, name: str) -> FeedHeader | None:
        row = await self._call(self._fetch_one, f"SELECT {_HEADER} FROM feeds WHERE name = ?", (name,))
        return None if row is None else FeedHeader(*_header_fields(row))

    async def list_feeds(self) -> list[FeedHeader]:
        rows = await self._call(self._fetch_all, f"SELECT {_HEADER} FROM feeds", ())
        # Sorted here, by code point: ORDER BY would follow the PostgreSQL database's collation.
        return sorted((FeedHeader(*_header_fields(row)) for row in rows), key=lambda header: header.name)

    async def save_status(self, name: str, status: dict[str, Any]) -> None:
        await self._call(self._execute_write,
                         "INSERT INTO feeds (name, status, status_saved_at) VALUES (?, ?, ?) "
                         "ON CONFLICT (name) DO UPDATE SET status = excluded.status, "
                         "status_saved_at = excluded.status_saved_at",
                         (name, json.dumps(status, separators=(",", ":")), time.time()))

    async def delete_feed(self, name: str) -> bool:
        return await self._call(self._delete_feed, name)

    async def feed_versions(self, name: str) -> list[int]:
        rows = await self._call(self._fetch_all,
                                "SELECT version FROM feed_versions WHERE name = ? ORDER BY version", (name,))
        return [row[0] for row in rows]

    async def load_version(self, name: str, version: int) -> FeedVersion | None:
        row = await self._call(self._fetch_one,
                               "SELECT sha256, entry_count, entries, payload, saved_at FROM feed_versions "
                               "WHERE name = ? AND version = ?", (name, version))
        if row is None:
            return None
        entries = await asyncio.to_thread(unpack_entries, row[2], row[1])
        return FeedVersion(name=name, version=version, sha256=row[0], entries=entries,
                           payload=_bytes_or_none(row[3]), saved_at=from_epoch(row[4]))  # type: ignore[arg-type]

    # -- transactions, run on the store's thread ---------------------------------------------------------

    def _save_feed(self, conn: Any, name: str, content: str, version: int, sha256: str, count: int,
                   blob: bytes, payload: bytes | None, status_json: str) -> None:
        now = time.time()
        with self._transaction(conn):
            # Make sure the row exists, then lock it: a replica saving the same feed waits here.
            self._exec(conn, "INSERT INTO feeds (name, status_saved_at) VALUES (?, ?) "
                             "ON CONFLICT (name) DO NOTHING", (name, now))
            current, current_sha = self._exec(
                conn, f"SELECT version, sha256 FROM feeds WHERE name = ?{self._dialect.for_update}",
                (name,)).fetchone()
            if version == current and sha256 == current_sha:  # a retry of a save that went through
                self._exec(conn, "UPDATE feeds SET status = ?, status_saved_at = ? WHERE name = ?",
                           (status_json, now, name))
                return
            if version <= current:
                raise VersionConflict(
                    f"feed {name!r}: cannot save version {version}, the store holds version {current}"
                    + (" with another sha256" if version == current else ""), current_version=current)
            self._exec(conn, "INSERT INTO feed_versions (name, version, sha256, entry_count, entries, payload, "
                             "saved_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (name, version, sha256, count, blob, payload, now))
            self._exec(conn, "UPDATE feeds SET content = ?, version = ?, sha256 = ?, entry_count = ?, "
                             "saved_at = ?, status = ?, status_saved_at = ? WHERE name = ?",
                       (content, version, sha256, count, now, status_json, now, name))
            self._exec(conn, "DELETE FROM feed_versions WHERE name = ? AND version NOT IN "
                             "(SELECT version FROM feed_versions WHERE name = ? ORDER BY version DESC LIMIT ?)",
                       (name, name, self._keep_versions))

    def _delete_feed(self, conn: Any, name: str) -> bool:
        with self._transaction(conn):
            self._exec(conn, "DELETE FROM feed_versions WHERE name = ?", (name,))
            return self._exec(conn, "DELETE FROM feeds WHERE name = ?", (name,)).rowcount > 0

    def _execute_write(self, conn: Any, statement: str, params: tuple[Any, ...]) -> None:
        with self._transaction(conn):
            self._exec(conn, statement, params)

    def _fetch_one(self, conn: Any, statement: str, params: tuple[Any, ...]) -> Any:
        return self._exec(conn, statement, params).fetchone()

    def _fetch_all(self, conn: Any, statement: str, params: tuple[Any, ...]) -> list[Any]:
        return self._exec(conn, statement, params).fetchall()

    def _migrate(self, conn: Any) -> None:
        with self._transaction(conn):
            self._dialect.lock_migrations(conn)
            conn.execute(SCHEMA_VERSION_TABLE)
            applied = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0
            if applied > LATEST_VERSION:
                raise StoreError(f"the {self.backend} database at {self._dialect.where} has schema version "
                                 f"{applied}, newer than this collector knows ({LATEST_VERSION}); "
                                 "upgrade the collector")
            for migration in MIGRATIONS:
                if migration.version <= applied:
                    continue
                for statement in migration.statements_for(self.backend):
                    conn.execute(statement.format(bytes=self._dialect.bytes_type))
                self._exec(conn, "INSERT INTO schema_version (version, description, applied_at) "
                                 "VALUES (?, ?, ?)", (migration.version, migration.description, time.time()))

    # -- plumbing ----------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self, conn: Any) -> Iterator[None]:
        conn.execute(self._dialect.begin_write)
        try:
            yield
        except BaseException:
            with contextlib.suppress(*self._dialect.errors):
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _exec(self, conn: Any, statement: str, params: tuple[Any, ...]) -> Any:
        return conn.execute(self._dialect.sql(statement), params)

    async def _call(self, work: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise StoreError(f"the {self.backend} store is closed")
        return await asyncio.get_running_loop().run_in_executor(
            self._thread, functools.partial(self._run, work, *args))

    async def _call_reading(self, work: Callable[..., T], *args: Any) -> T:
        """`_call` for a read that may run on a connection and thread of its own, beside the writes: the
        event watches' reads of new rows, which on the store's one thread waited behind the ingest's group
        commits and made the next commit wait behind them. A database only one connection can see (SQLite's
        :memory:) has no second reader: the read queues on the store's thread."""
        if not self._dialect.separate_reads:
            return await self._call(work, *args)
        if self._closed:
            raise StoreError(f"the {self.backend} store is closed")
        if self._reader is None:
            self._reader = _Reader(self._dialect, f"dnswatch-store-{self.backend}-read")
        return await asyncio.get_running_loop().run_in_executor(
            self._reader.thread, functools.partial(self._reader.run, work, *args))

    def _run(self, work: Callable[..., T], *args: Any) -> T:
        """On the store's thread: (re)connect if needed, run one unit of work, translate driver errors.

        A unit that fails because the connection was lost (a PostgreSQL restart or failover) runs once more
        on a new connection. That is safe for every unit here: reads, and writes that are idempotent when
        the first attempt did commit (save_feed of the same version and sha256 only rewrites the status)."""
        for attempt in (1, 2):
            try:
                if self._conn is None or self._dialect.is_broken(self._conn):
                    self._conn = None
                    self._conn = self._dialect.connect()
                return work(self._conn, *args)
            except self._dialect.errors as error:
                if attempt == 1 and self._conn is not None and self._dialect.is_broken(self._conn):
                    continue
                raise _store_error(self._dialect, error) from error
        raise AssertionError("unreachable")


class _Reader:
    """A second connection, for reads only, and the thread that uses it."""

    def __init__(self, dialect: Dialect, name: str) -> None:
        self.dialect = dialect
        self.conn: Any = None
        self.thread = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    def run(self, work: Callable[..., T], *args: Any) -> T:
        """SqlStore._run on this connection (reads are safe to run again on a new one)."""
        for attempt in (1, 2):
            try:
                if self.conn is None or self.dialect.is_broken(self.conn):
                    self.conn = None
                    self.conn = self.dialect.connect()
                return work(self.conn, *args)
            except self.dialect.errors as error:
                if attempt == 1 and self.conn is not None and self.dialect.is_broken(self.conn):
                    continue
                raise _store_error(self.dialect, error) from error
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(*self.dialect.errors):
                self.conn.close()
            self.conn = None


def _store_error(dialect: Dialect, error: BaseException) -> StoreError:
    first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return StoreError(f"{dialect.backend} store at {dialect.where}: {first_line}")


def _prefixed(prefix: str) -> str:
    return ", ".join(prefix + column.strip() for column in _HEADER.split(","))


def _header_fields(row: Any) -> tuple[Any, ...]:
    """FeedHeader's fields, in order, from a row starting with the _HEADER columns."""
    return (row[0], row[1], row[2], row[3], row[4], from_epoch(row[5]), json.loads(row[6]),
            from_epoch(row[7]))


def _bytes_or_none(value: Any) -> bytes | None:
    return None if value is None else bytes(value)
