"""The PostgreSQL backend: for several collector replicas sharing one database."""

from __future__ import annotations

import functools
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

# Any fixed number, the same in every replica: it names the lock that serializes schema migrations.
_MIGRATION_LOCK = 0x646E7377  # "dnsw"
_CONNECT_TIMEOUT_S = 10


class PostgresDialect:
    """PostgreSQL through psycopg 3, one connection in autocommit mode with explicit transactions.

    Replicas saving the same feed serialize on its row (SELECT ... FOR UPDATE); a commit returns once the
    server has made it durable (synchronous_commit as the server sets it, on by default)."""

    backend = "postgresql"
    bytes_type = "BYTEA"
    begin_write = "BEGIN"
    for_update = " FOR UPDATE"
    separate_reads = True
    errors: tuple[type[BaseException], ...] = (psycopg.Error,)

    def __init__(self, url: str) -> None:
        self.url = url
        """The libpq URL as given (it may hold a password: never print it)."""
        params = conninfo_to_dict(url)
        self.where = (f"{params.get('host') or 'localhost'}:{params.get('port') or 5432}"
                      f"/{params.get('dbname') or params.get('user') or ''}")
        self._extra: dict[str, Any] = {}
        if "connect_timeout" not in params:
            self._extra["connect_timeout"] = _CONNECT_TIMEOUT_S

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, autocommit=True, **self._extra)

    def lock_migrations(self, conn: Any) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))

    def is_broken(self, conn: Any) -> bool:
        return bool(conn.closed or conn.broken)

    def utf8_of(self, column: str) -> str:
        return f"convert_to({column}, 'UTF8')"

    @functools.lru_cache(maxsize=256)
    def sql(self, text: str) -> str:
        # Our statements hold no literal ? or %, so the placeholder swap is a plain replace.
        return text.replace("?", "%s")
