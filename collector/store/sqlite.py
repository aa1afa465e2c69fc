"""The SQLite backend: the embedded default, one file (WAL), durable on every commit."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from collector.store.base import StoreError

# A writer from another process (a second collector on the same file, or a CLI) holds the write lock for
# one transaction; wait for it rather than fail.
_BUSY_TIMEOUT_S = 30.0

_CACHE_KIB = 64 * 1024
_CHECKPOINT_BYTES = 40 << 20
_PAGE_BYTES = 16 * 1024


class SqliteDialect:
    """SQLite through the standard library, in WAL mode with synchronous=FULL.

    synchronous=FULL syncs the WAL at every commit, so a saved feed or an acknowledged event batch
    survives a power loss, not only a crash of the collector."""

    backend = "sqlite"
    bytes_type = "BLOB"
    begin_write = "BEGIN IMMEDIATE"
    for_update = ""
    errors: tuple[type[BaseException], ...] = (sqlite3.Error,)

    def __init__(self, path: str) -> None:
        self.path = path
        """The database file, or `:memory:`."""
        self.where = path
        self.separate_reads = path != ":memory:"
        """A file is shared by connections (WAL: readers do not wait for the writer); :memory: is not."""

    def connect(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            # Only the file is made: a folder that is missing is more often a typo or an unmounted volume
            # than a wish for a new tree (made where, and owned by whom?), and SQLite says nothing useful.
            folder = Path(self.path).parent
            if not folder.is_dir():
                what = "is not a folder" if folder.exists() else "does not exist"
                raise StoreError(f"the database's folder {folder} {what}: create it first, or give a path in "
                                 "a folder that exists")
        conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        # 16 KiB pages rather than 4: an event is ~1 kB of JSON and a dozen index entries, and each commit
        # writes every page it touched to the WAL, frame by frame. With 16 KiB pages SQLite's own time per
        # ingested event fell by about a third here (insert 18-23 -> 15 µs, commit 13-14 -> 8 µs; 60,000
        # events in 6,000-event transactions) and the file by 15 %. Only a new database takes it (before its
        # first table); an existing one keeps the page size it was made with.
        conn.execute(f"PRAGMA page_size = {_PAGE_BYTES}")
        _switch_to_wal(conn)
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        # Event ingest writes each event into about a dozen B-trees (the table, its indexes, the side tables)
        # at random places (ids are hashes): a 64 MB page cache (the default is 2 MB) and a checkpoint every
        # 40 MB of WAL (the default is 1,000 pages, 4 MB at 4 KiB) rather than every 4 MB, so a hot index page
        # is copied back once per checkpoint instead of ten times, took the store thread's CPU per ingested
        # event from about 70 to 57 µs here (60k events in 500-event batches, three runs of each). The cache
        # is an upper bound, filled only as pages are read.
        conn.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
        page_bytes = conn.execute("PRAGMA page_size").fetchone()[0]
        conn.execute(f"PRAGMA wal_autocheckpoint = {_CHECKPOINT_BYTES // page_bytes}")
        return conn

    def lock_migrations(self, conn: Any) -> None:
        """BEGIN IMMEDIATE already holds the database's write lock."""

    def is_broken(self, conn: Any) -> bool:
        return False

    def sql(self, text: str) -> str:
        return text

    def utf8_of(self, column: str) -> str:
        return f"CAST({column} AS BLOB)"  # the database's encoding is UTF-8 (SQLite's default)


def _switch_to_wal(conn: sqlite3.Connection) -> None:
    """Put the database in WAL mode (it stays so); another connection doing the same is waited for.

    Changing the journal mode of a new database bypasses the busy timeout: two collectors (or two stores
    in one test) opening a fresh file at once would get "database is locked" straight away."""
    deadline = time.monotonic() + _BUSY_TIMEOUT_S
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() in ("wal", "memory"):
                return
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
