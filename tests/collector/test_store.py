"""The collector's store, every test on SQLite and on a real PostgreSQL server (tests/pgserver.py)."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3

import pytest

from collector.store import BadStoreUrl, FeedHeader, StoredFeed, StoreError, VersionConflict, open_store
from collector.store.schema import LATEST_VERSION
from tests.pgserver import PostgresServer, free_port

ALL_VERSIONS = [(version,) for version in range(1, LATEST_VERSION + 1)]  # each migration once

pytestmark = pytest.mark.anyio


def digest(entries: list[str] | tuple[str, ...]) -> str:
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()


async def save(store, name: str, version: int, entries: list[str], *, status: dict | None = None,
               content: str = "DomainNameSet", payload: bytes | None = None) -> None:
    await store.save_feed(name, content=content, version=version, sha256=digest(entries), entries=entries,
                          status=status if status is not None else {"version": version}, payload=payload)


def domains(count: int, tag: str = "") -> list[str]:
    return [f"host{i}{tag}.example{i % 97}.com" for i in range(count)]


# -- round trips --------------------------------------------------------------------------------------------


async def test_a_large_set_round_trips_with_its_payload_and_status(store) -> None:
    entries = domains(100_000)
    status = {"entries": 100_000, "rejectedLines": 3, "errorConditions": [],
              "lastSuccessfulSync": "2026-11-27T10:00:00Z", "nested": {"ünïcode": [1, 2.5, None, True]}}
    payload = bytes(range(256)) * 1000
    await save(store, "malware", 7, entries, status=status, payload=payload)

    feed = await store.load_feed("malware")
    assert isinstance(feed, StoredFeed)
    assert feed.entries == tuple(entries)
    assert (feed.name, feed.content, feed.version, feed.sha256, feed.entry_count) == (
        "malware", "DomainNameSet", 7, digest(entries), 100_000)
    assert feed.status == status
    assert feed.payload == payload
    assert feed.saved_at is not None and feed.saved_at.tzinfo is not None

    [header] = await store.list_feeds()
    assert type(header) is FeedHeader
    assert (header.name, header.version, header.entry_count, header.status) == ("malware", 7, 100_000, status)


async def test_empty_sets_and_odd_entries_round_trip(store) -> None:
    await save(store, "empty", 1, [])
    await save(store, "one-empty-entry", 1, [""])
    odd = ["xn--bcher-kva.example", "10.0.0.0/8", "2001:db8::/32", "ünï.example", "a b", "\t"]
    await save(store, "odd", 1, odd, content="IPSet")
    assert (await store.load_feed("empty")).entries == ()
    assert (await store.load_feed("one-empty-entry")).entries == ("",)
    assert (await store.load_feed("odd")).entries == tuple(odd)
    assert (await store.load_feed("odd")).payload is None


async def test_an_entry_holding_a_newline_is_refused(store) -> None:
    with pytest.raises(ValueError, match="newline"):
        await save(store, "bad", 1, ["good.example", "bad\nexample"])
    assert await store.feed_header("bad") is None


# -- status ---------------------------------------------------------------------------------------------------


async def test_a_status_update_alone_keeps_the_last_good_set(store) -> None:
    entries = domains(1000)
    await save(store, "malware", 3, entries, status={"errorConditions": []})
    failed = {"errorConditions": [{"type": "PullFailed", "message": "HTTP 500"}]}
    await store.save_status("malware", failed)

    feed = await store.load_feed("malware")
    assert (feed.version, feed.sha256, feed.entries) == (3, digest(entries), tuple(entries))
    assert feed.status == failed
    assert feed.status_saved_at >= feed.saved_at


async def test_a_status_before_any_good_set_is_a_version_0_row(store) -> None:
    await store.save_status("new", {"errorConditions": [{"type": "PullFailed", "message": "timeout"}]})
    assert await store.load_feed("new") is None
    header = await store.feed_header("new")
    assert (header.version, header.entry_count, header.sha256, header.content, header.saved_at) == (
        0, 0, "", "", None)
    assert header.status["errorConditions"][0]["type"] == "PullFailed"
    assert [h.name for h in await store.list_feeds()] == ["new"]
    assert await store.feed_versions("new") == []

    await save(store, "new", 1, ["a.example"], status={"errorConditions": []})
    feed = await store.load_feed("new")
    assert (feed.version, feed.entries, feed.status) == (1, ("a.example",), {"errorConditions": []})


# -- versions -------------------------------------------------------------------------------------------------


async def test_the_last_three_versions_are_kept_for_deltas(store) -> None:
    sets = {version: domains(50 + version, tag=f"v{version}") for version in range(1, 6)}
    for version, entries in sets.items():
        await save(store, "malware", version, entries, payload=b"v%d" % version)

    assert await store.feed_versions("malware") == [3, 4, 5]
    previous = await store.load_version("malware", 4)
    assert (previous.version, previous.entries, previous.sha256, previous.payload) == (
        4, tuple(sets[4]), digest(sets[4]), b"v4")
    assert await store.load_version("malware", 2) is None
    assert await store.load_version("other", 1) is None
    assert (await store.load_feed("malware")).entries == tuple(sets[5])


async def test_versions_may_skip_but_never_go_back(store) -> None:
    await save(store, "malware", 2, ["a.example"])
    await save(store, "malware", 5, ["b.example"])  # versions need only increase
    with pytest.raises(VersionConflict, match="holds version 5") as older:
        await save(store, "malware", 4, ["c.example"])
    assert older.value.current_version == 5
    with pytest.raises(VersionConflict, match="another sha256"):
        await save(store, "malware", 5, ["c.example"])
    with pytest.raises(ValueError, match="at least 1"):
        await save(store, "malware", 0, ["c.example"])
    feed = await store.load_feed("malware")
    assert (feed.version, feed.entries) == (5, ("b.example",))
    assert await store.feed_versions("malware") == [2, 5]


async def test_saving_the_same_version_again_is_an_idempotent_retry(store) -> None:
    await save(store, "malware", 1, ["a.example"], status={"try": 1})
    await save(store, "malware", 1, ["a.example"], status={"try": 2})
    feed = await store.load_feed("malware")
    assert (feed.version, feed.entries, feed.status) == (1, ("a.example",), {"try": 2})
    assert await store.feed_versions("malware") == [1]


async def test_keep_versions_is_configurable(store_url) -> None:
    store = await open_store(store_url, keep_versions=5)
    try:
        for version in range(1, 9):
            await save(store, "malware", version, [f"v{version}.example"])
        assert await store.feed_versions("malware") == [4, 5, 6, 7, 8]
    finally:
        await store.close()
    with pytest.raises(ValueError, match="at least 2"):
        await open_store(store_url, keep_versions=1)


# -- listing and deleting --------------------------------------------------------------------------------------


async def test_feeds_are_listed_by_name_in_code_point_order(store) -> None:
    names = ["zeta", "a-b", "ab", "a.b", "a0", "b", "a"]
    for name in names:
        await save(store, name, 1, [f"{name}.example"])
    await store.save_status("status-only", {})
    assert [header.name for header in await store.list_feeds()] == sorted(names + ["status-only"])


async def test_deleting_a_feed_forgets_its_status_and_versions(store) -> None:
    await save(store, "malware", 1, ["a.example"])
    await save(store, "malware", 2, ["b.example"])
    await save(store, "keep", 1, ["k.example"])
    assert await store.delete_feed("malware") is True
    assert await store.delete_feed("malware") is False
    assert await store.load_feed("malware") is None
    assert await store.feed_header("malware") is None
    assert await store.feed_versions("malware") == []
    assert [header.name for header in await store.list_feeds()] == ["keep"]
    await save(store, "malware", 1, ["again.example"])  # a deleted feed starts over
    assert (await store.load_feed("malware")).entries == ("again.example",)


# -- restart ---------------------------------------------------------------------------------------------------


async def test_everything_survives_closing_and_reopening_the_store(store_url) -> None:
    """What "the last good set survives a collector restart" rests on."""
    first = await open_store(store_url)
    big = domains(20_000)
    await save(first, "malware", 1, domains(10, tag="old"))
    await save(first, "malware", 2, big, status={"entries": 20_000}, payload=b"\x00compiled")
    await first.save_status("malware", {"entries": 20_000, "errorConditions": [{"type": "PullFailed"}]})
    await save(first, "ips", 4, ["10.0.0.0/8", "192.0.2.1"], content="IPSet")
    await first.save_status("broken", {"errorConditions": [{"type": "ConfigError"}]})
    before = [await first.load_feed("malware"), await first.load_feed("ips"), await first.list_feeds(),
              await first.load_version("malware", 1)]
    await first.close()

    second = await open_store(store_url)
    try:
        after = [await second.load_feed("malware"), await second.load_feed("ips"), await second.list_feeds(),
                 await second.load_version("malware", 1)]
        assert after == before
        assert after[0].entries == tuple(big) and after[0].payload == b"\x00compiled"
        assert after[0].status["errorConditions"] == [{"type": "PullFailed"}]
        await save(second, "malware", 3, ["new.example"])  # and it goes on from there
        assert await second.feed_versions("malware") == [1, 2, 3]
    finally:
        await second.close()


async def test_reopening_does_not_migrate_twice_and_a_newer_schema_is_refused(store_url, store) -> None:
    await store.close()
    again = await open_store(store_url)
    await again.close()
    if store_url.startswith("sqlite"):
        with sqlite3.connect(store_url.removeprefix("sqlite://")) as conn:
            assert conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall() == ALL_VERSIONS
            conn.execute("INSERT INTO schema_version VALUES (99, 'from the future', 0)")
    else:
        import psycopg

        with psycopg.connect(store_url, autocommit=True) as conn:
            assert conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall() == ALL_VERSIONS
            conn.execute("INSERT INTO schema_version VALUES (99, 'from the future', 0)")
    with pytest.raises(StoreError, match="schema version 99.*upgrade the collector"):
        await open_store(store_url)


async def test_a_closed_store_says_so(store) -> None:
    await store.close()
    with pytest.raises(StoreError, match="closed"):
        await store.list_feeds()


# -- replicas ----------------------------------------------------------------------------------------------------


async def test_two_replicas_saving_the_same_feed_take_turns_without_corrupting_it(store_url) -> None:
    """Two store instances on one database (two collector replicas): each version is saved exactly once,
    a replica that lost the race gets VersionConflict and retries, and every kept set matches its sha256."""
    a, b = await asyncio.gather(open_store(store_url), open_store(store_url))  # migrations race too
    rounds = 12

    async def replica(store, tag: str) -> tuple[list[int], int]:
        won, conflicts = [], 0
        for round_number in range(rounds):
            await save(store, f"own-{tag}", round_number + 1, domains(100, tag=f"{tag}{round_number}"))
            while True:
                header = await store.feed_header("shared")
                version = (header.version if header else 0) + 1
                try:
                    await save(store, "shared", version, domains(300, tag=f"-{tag}-{version}"),
                               status={"by": tag, "version": version})
                except VersionConflict:
                    conflicts += 1
                    continue
                won.append(version)
                break
        return won, conflicts

    try:
        (won_a, conflicts_a), (won_b, conflicts_b) = await asyncio.gather(replica(a, "a"), replica(b, "b"))
        assert sorted(won_a + won_b) == list(range(1, 2 * rounds + 1))
        feed = await b.load_feed("shared")
        assert feed.version == 2 * rounds and digest(feed.entries) == feed.sha256
        writer = "a" if feed.version in won_a else "b"
        assert feed.status == {"by": writer, "version": feed.version}
        assert feed.entries[0].startswith(f"host0-{writer}-{feed.version}.")
        for version in await a.feed_versions("shared"):
            kept = await a.load_version("shared", version)
            assert digest(kept.entries) == kept.sha256
        for store, tag in ((a, "a"), (b, "b")):
            own = await store.load_feed(f"own-{tag}")
            assert own.version == rounds and own.entries == tuple(domains(100, tag=f"{tag}{rounds - 1}"))
    finally:
        await a.close()
        await b.close()


async def test_two_replicas_saving_a_new_feed_at_once_one_wins(store_url) -> None:
    a, b = await asyncio.gather(open_store(store_url), open_store(store_url))
    try:
        results = await asyncio.gather(save(a, "raced", 1, ["from-a.example"]),
                                       save(b, "raced", 1, ["from-b.example"]), return_exceptions=True)
        assert sorted(type(result).__name__ for result in results) == ["NoneType", "VersionConflict"]
        winner = "a" if results[0] is None else "b"
        feed = await a.load_feed("raced")
        assert (feed.version, feed.entries) == (1, (f"from-{winner}.example",))
    finally:
        await a.close()
        await b.close()


async def test_a_lost_postgresql_connection_is_replaced(pg_server, pg_fresh_url) -> None:
    store = await open_store(pg_fresh_url)
    try:
        await save(store, "malware", 1, ["a.example"])
        database = pg_fresh_url.rsplit("/", 1)[1]
        pg_server.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      f"WHERE datname = '{database}' AND pid <> pg_backend_pid()")
        assert (await store.load_feed("malware")).entries == ("a.example",)
        await save(store, "malware", 2, ["b.example"])
        assert (await store.load_feed("malware")).version == 2
    finally:
        await store.close()


# -- URLs ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url, names", [
    ("mysql://user@db/dnswatch", "'mysql'"),
    ("redis://localhost", "'redis'"),
    ("/var/lib/dnswatch/db.sqlite", "no scheme"),
    ("db.sqlite", "no scheme"),
    ("sqlite://somehost/db.sqlite", "names a host"),
    ("sqlite://", "no file path"),
    ("postgresql://user@127.0.0.1/db?nosuchoption=1", "malformed postgresql"),
])
async def test_a_bad_url_gives_one_clear_line(url: str, names: str) -> None:
    with pytest.raises(BadStoreUrl) as error:
        await open_store(url)
    message = str(error.value)
    assert names in message and "\n" not in message
    assert "sqlite:///" in message and "postgresql://" in message  # says what would work


async def test_an_unreachable_postgresql_is_one_line_without_the_password() -> None:
    with pytest.raises(StoreError) as error:
        await open_store(f"postgresql://dnswatch:s3cret@127.0.0.1:{free_port()}/dnswatch?connect_timeout=5")
    message = str(error.value)
    assert message.startswith("postgresql store at 127.0.0.1:") and "\n" not in message
    assert "s3cret" not in message


async def test_sqlite_takes_relative_paths_and_memory(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "relative").mkdir()
    for url in ("sqlite:relative/store.sqlite", "sqlite:///:memory:"):
        store = await open_store(url)
        try:
            await save(store, "malware", 1, ["a.example"])
            assert (await store.load_feed("malware")).entries == ("a.example",)
        finally:
            await store.close()
    assert (tmp_path / "relative" / "store.sqlite").is_file()


async def test_sqlite_makes_only_the_file_never_its_folders(tmp_path) -> None:
    with pytest.raises(StoreError) as error:
        await open_store(f"sqlite://{tmp_path}/deep/er/store.sqlite")
    assert str(error.value) == (f"the database's folder {tmp_path}/deep/er does not exist: create it first, or "
                                "give a path in a folder that exists")
    assert list(tmp_path.iterdir()) == []


async def test_sqlite_runs_in_wal_mode_with_full_sync(tmp_path) -> None:
    url = f"sqlite://{tmp_path}/store.sqlite"
    store = await open_store(url)
    try:
        assert await store._call(lambda conn: conn.execute("PRAGMA journal_mode").fetchone()[0]) == "wal"
        assert await store._call(lambda conn: conn.execute("PRAGMA synchronous").fetchone()[0]) == 2  # FULL
    finally:
        await store.close()


def test_the_test_server_stops_and_leaves_nothing_behind(pg_server) -> None:
    with PostgresServer() as server:
        root = server.root
        postmaster = int((server.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        server.sql("SELECT 1")
    assert not root.exists()
    assert _exited(postmaster)


def _exited(pid: int) -> bool:
    """True once `pid` is gone or a zombie (pg_ctl's server is init's child, reaped when init gets to it)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(") ", 1)[1].startswith("Z")
    except FileNotFoundError:
        return True
