"""Shared fixtures: a real PostgreSQL server for the session, and the collector's store on both backends."""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.pgserver import PostgresServer, PostgresUnavailable


@pytest.fixture(autouse=True)
def _root_logger_restored() -> Iterator[None]:
    """A command's `main()` called in-process configures the root logger (handlers, level) as the real process
    would; put it back afterwards, so one test's logging set-up never writes into the next test's output."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)

_database_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Async tests (`pytest.mark.anyio`) run on asyncio, as the collector does."""
    return "asyncio"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server started from the installed binaries, stopped at the end of the session.

    Skips only when the binaries (or a user to run them as) are missing; a server that fails to start
    fails the tests that need it."""
    try:
        server = PostgresServer()
    except PostgresUnavailable as missing:
        pytest.skip(str(missing))
    try:
        server.start()
    except PostgresUnavailable as missing:
        pytest.skip(str(missing))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_url(pg_server: PostgresServer) -> str:
    """URL of a database on the session's server, shared by the tests that use it."""
    return pg_server.create_database("dnswatch")


@pytest.fixture
def pg_fresh_url(pg_server: PostgresServer) -> Iterator[str]:
    """URL of an empty database of its own for one test, dropped afterwards."""
    name = f"dnswatch_test_{next(_database_numbers)}"
    yield pg_server.create_database(name)
    pg_server.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    """An empty store's URL, on each backend in turn."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path}/store.sqlite"
    return request.getfixturevalue("pg_fresh_url")


@pytest.fixture
async def store(store_url: str, anyio_backend: str) -> AsyncIterator[object]:
    """An open, empty store on each backend in turn (closed after the test)."""
    from collector.store import open_store

    opened = await open_store(store_url)
    try:
        yield opened
    finally:
        await opened.close()
