"""The store's schema as numbered migrations, the same text for SQLite and PostgreSQL.

A database records the migrations applied to it in `schema_version`; opening a store applies the missing
ones in one transaction (under an advisory lock on PostgreSQL, so replicas starting together apply them
once). Append a migration to change the schema; never edit one that has shipped. `{bytes}` is the one
spelling the two engines do not share (BLOB / BYTEA).

Times are seconds since the epoch (DOUBLE PRECISION) so that the same SQL compares them on both engines.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    """One step of the schema."""

    version: int
    """Its number: 1, 2, 3... in order."""
    description: str
    """One line recorded in schema_version."""
    statements: tuple[str, ...]
    """DDL statements, `{bytes}` standing for the engine's binary type."""


SCHEMA_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version     INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at  DOUBLE PRECISION NOT NULL
)"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "feeds: current good set and status per feed, kept versions of each set", (
        # One row per feed. version 0 means only a status was ever saved (the first pull failed).
        """
        CREATE TABLE feeds (
            name            TEXT PRIMARY KEY,
            content         TEXT NOT NULL DEFAULT '',
            version         BIGINT NOT NULL DEFAULT 0,
            sha256          TEXT NOT NULL DEFAULT '',
            entry_count     BIGINT NOT NULL DEFAULT 0,
            saved_at        DOUBLE PRECISION,
            status          TEXT NOT NULL DEFAULT '{{}}',
            status_saved_at DOUBLE PRECISION NOT NULL
        )""",
        # Whole sets, the last few versions per feed; entries = zlib of the newline-joined entries.
        """
        CREATE TABLE feed_versions (
            name        TEXT NOT NULL REFERENCES feeds (name),
            version     BIGINT NOT NULL,
            sha256      TEXT NOT NULL,
            entry_count BIGINT NOT NULL,
            entries     {bytes} NOT NULL,
            payload     {bytes},
            saved_at    DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (name, version)
        )""",
    )),
)

LATEST_VERSION = MIGRATIONS[-1].version
