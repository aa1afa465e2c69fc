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
    by_backend: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """(backend, statements) pairs replacing `statements` on that backend (`sqlite`, `postgresql`): for a
    layout only one engine has (WITHOUT ROWID tables, a rowid that is a column)."""

    def statements_for(self, backend: str) -> tuple[str, ...]:
        """The statements to run on `backend`."""
        return dict(self.by_backend).get(backend, self.statements)


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
    Migration(2, "events: one row per event id with a change sequence, feeds and domains side tables", (
        # One row per event id; the filter columns are copied out of `body` (the event's JSON as ingested).
        # seq: change sequence number, new on every insert and update, taken from event_sequence.
        """
        CREATE TABLE events (
            id         TEXT PRIMARY KEY,
            seq        BIGINT NOT NULL,
            time       DOUBLE PRECISION NOT NULL,
            first_seen DOUBLE PRECISION NOT NULL,
            last_seen  DOUBLE PRECISION NOT NULL,
            count      BIGINT NOT NULL,
            type       TEXT NOT NULL,
            host       TEXT NOT NULL,
            namespace  TEXT NOT NULL,
            pod        TEXT NOT NULL,
            pod_aggr   TEXT NOT NULL,
            body       TEXT NOT NULL,
            stored_at  DOUBLE PRECISION NOT NULL
        )""",
        "CREATE UNIQUE INDEX events_by_seq ON events (seq)",
        # Newest first with keyset pagination on (time, id), alone and after an equality filter.
        "CREATE INDEX events_by_time ON events (time, id)",
        "CREATE INDEX events_by_namespace ON events (namespace, time, id)",
        "CREATE INDEX events_by_pod ON events (pod, time, id)",
        "CREATE INDEX events_by_pod_aggr ON events (pod_aggr, time, id)",
        "CREATE INDEX events_by_last_seen ON events (last_seen)",
        # record.feeds and record.suspicious_domains, one row per value, for the feed and domain filters.
        # The event's time is repeated here so that a filtered page is read in (time, id) order straight
        # from the (feed, time, event_id) index, however common or rare the feed: no sort of every match.
        """
        CREATE TABLE event_feeds (
            event_id TEXT NOT NULL,
            feed     TEXT NOT NULL,
            time     DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (event_id, feed)
        )""",
        "CREATE INDEX event_feeds_by_feed ON event_feeds (feed, time, event_id)",
        """
        CREATE TABLE event_domains (
            event_id TEXT NOT NULL,
            domain   TEXT NOT NULL,
            time     DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (event_id, domain)
        )""",
        "CREATE INDEX event_domains_by_domain ON event_domains (domain, time, event_id)",
        # The last seq handed out. Every event write locks this one row first, so writers (several
        # replicas on PostgreSQL) commit in seq order and a watcher never sees seq N+1 before N.
        """
        CREATE TABLE event_sequence (
            one      INTEGER PRIMARY KEY CHECK (one = 1),
            last_seq BIGINT NOT NULL
        )""",
        "INSERT INTO event_sequence (one, last_seq) VALUES (1, 0)",
    )),
    Migration(3, "events: the namespace repeated in the feeds and domains side tables, indexed after the value", (
        # A namespace with a feed (or a domain) was read from the feed's index, testing each row's event: when
        # the two rarely or never meet, that walked every row of the feed (seconds over 1M events). With the
        # namespace beside the value, (value, namespace, time, event_id) gives such a page straight away.
        "ALTER TABLE event_feeds ADD COLUMN namespace TEXT NOT NULL DEFAULT ''",
        "UPDATE event_feeds SET namespace = COALESCE((SELECT e.namespace FROM events e "
        "WHERE e.id = event_feeds.event_id), '')",
        "CREATE INDEX event_feeds_by_feed_namespace ON event_feeds (feed, namespace, time, event_id)",
        "ALTER TABLE event_domains ADD COLUMN namespace TEXT NOT NULL DEFAULT ''",
        "UPDATE event_domains SET namespace = COALESCE((SELECT e.namespace FROM events e "
        "WHERE e.id = event_domains.event_id), '')",
        "CREATE INDEX event_domains_by_domain_namespace ON event_domains (domain, namespace, time, event_id)",
    )),
    Migration(4, "events: an index for the node (host) filter", (
        # Without it a node filter walks the time index testing each event: fine alone (a node has a share of
        # every page), but a node with a rare type read over 100 ms a page at 1M events. The type rides along
        # so that such a pair is tested in the index without reading each row.
        "CREATE INDEX events_by_host ON events (host, time, id, type)",
    )),
)

# SQLite only. An ingested event used to write about 17 B-trees: the events table, its id autoindex, the seq
# index, six more indexes, and per side table its rowid table, the (event_id, value) autoindex and two value
# indexes. Here `seq` becomes the rowid (inserts append, no seq index) and each side table is kept in its
# (value, time, event_id) order WITHOUT ROWID, with the namespace index beside it: 12 B-trees an event. A
# side row never changes for an id unless its time or namespace does (the id hashes node, client, names,
# feeds and window start), and the writer then deletes it by that key, so no (event_id, value) index is
# needed; retention finds the side rows of the events it deletes by scanning the side tables.
# PostgreSQL keeps its layout: it has no rowid to reuse, and its writer is not what limits it.
# The columns repeat migration 2's on purpose: a migration is history and must not change when a later one does.
_EVENTS_V5 = """
CREATE TABLE events_v5 (
    seq        INTEGER PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    time       DOUBLE PRECISION NOT NULL,
    first_seen DOUBLE PRECISION NOT NULL,
    last_seen  DOUBLE PRECISION NOT NULL,
    count      BIGINT NOT NULL,
    type       TEXT NOT NULL,
    host       TEXT NOT NULL,
    namespace  TEXT NOT NULL,
    pod        TEXT NOT NULL,
    pod_aggr   TEXT NOT NULL,
    body       TEXT NOT NULL,
    stored_at  DOUBLE PRECISION NOT NULL
)"""
_EVENT_COLUMNS_V5 = "seq, id, time, first_seen, last_seen, count, type, host, namespace, pod, pod_aggr, body, stored_at"


def _side_table_v5(table: str, value: str) -> tuple[str, ...]:
    return (
        f"""
        CREATE TABLE {table}_v5 (
            {value}     TEXT NOT NULL,
            time      DOUBLE PRECISION NOT NULL,
            event_id  TEXT NOT NULL,
            namespace TEXT NOT NULL DEFAULT '',
            PRIMARY KEY ({value}, time, event_id)
        ) WITHOUT ROWID""",
        f"INSERT INTO {table}_v5 ({value}, time, event_id, namespace) "
        f"SELECT {value}, time, event_id, namespace FROM {table} ORDER BY {value}, time, event_id",
        f"DROP TABLE {table}",
        f"ALTER TABLE {table}_v5 RENAME TO {table}",
        f"CREATE INDEX {table}_by_{value}_namespace ON {table} ({value}, namespace, time, event_id)",
    )


MIGRATIONS += (
    Migration(5, "events: seq is the rowid and the side tables are their query index (SQLite)", (), by_backend=(
        ("sqlite", (
            _EVENTS_V5,
            f"INSERT INTO events_v5 ({_EVENT_COLUMNS_V5}) SELECT {_EVENT_COLUMNS_V5} FROM events ORDER BY seq",
            "DROP TABLE events",
            "ALTER TABLE events_v5 RENAME TO events",
            "CREATE INDEX events_by_time ON events (time, id)",
            "CREATE INDEX events_by_namespace ON events (namespace, time, id)",
            "CREATE INDEX events_by_pod ON events (pod, time, id)",
            "CREATE INDEX events_by_pod_aggr ON events (pod_aggr, time, id)",
            "CREATE INDEX events_by_host ON events (host, time, id, type)",
            "CREATE INDEX events_by_last_seen ON events (last_seen)",
            *_side_table_v5("event_feeds", "feed"),
            *_side_table_v5("event_domains", "domain"),
        )),
    )),
)

MIGRATIONS += (
    Migration(6, "events: the alert exception that marks an event, and its dismissal", (
        # excepted_by: the name of the active AlertException that matched the event ('' for none), rewritten
        # whenever the exceptions change; dismissed_by/_at: who dismissed it and when (NULL: not dismissed).
        # Both leave the event out of lists and watches by default (docs/alert-operations.md).
        "ALTER TABLE events ADD COLUMN excepted_by TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE events ADD COLUMN dismissed_by TEXT",
        "ALTER TABLE events ADD COLUMN dismissed_at DOUBLE PRECISION",
        # Marked events are few: partial indexes keep them at hand (`events list --dismissed`, re-marking
        # the events an exception marked) at no cost to the ingest of unmarked ones.
        "CREATE INDEX events_dismissed ON events (time, id) WHERE dismissed_at IS NOT NULL",
        "CREATE INDEX events_excepted ON events (excepted_by, time, id) WHERE excepted_by <> ''",
    )),
    Migration(7, "forwarding: the change sequence number each forwarding target has received up to", (
        # One row per target (its --forward text): every change numbered up to `seq` has reached it. Written
        # only after the target has the events, so a restart resumes there (docs/forwarding.md).
        """
        CREATE TABLE forward_cursors (
            target   TEXT PRIMARY KEY,
            seq      BIGINT NOT NULL,
            saved_at DOUBLE PRECISION NOT NULL
        )""",
    )),
)

MIGRATIONS += (
    Migration(8, "webhooks: the delivery queue of each SecurityEventWebhook and its dispatch cursor", (
        # One row per (webhook, event id, count): an emission the webhook wants, with the event's JSON as it
        # was emitted (a grown event replaces its row in `events`; what was queued is delivered as it was).
        # state: pending, delivered or dead. The dispatcher writes the rows and the webhook's cursor in one
        # transaction, so each emission is queued once, a restart included (docs/webhooks.md).
        """
        CREATE TABLE webhook_deliveries (
            webhook         TEXT NOT NULL,
            event_id        TEXT NOT NULL,
            count           BIGINT NOT NULL,
            seq             BIGINT NOT NULL,
            body            TEXT NOT NULL,
            state           TEXT NOT NULL,
            attempts        INTEGER NOT NULL DEFAULT 0,
            next_attempt_at DOUBLE PRECISION NOT NULL,
            last_error      TEXT NOT NULL DEFAULT '',
            enqueued_at     DOUBLE PRECISION NOT NULL,
            done_at         DOUBLE PRECISION,
            PRIMARY KEY (webhook, event_id, count)
        )""",
        # The workers read a webhook's pending rows in change order; done rows are pruned by age.
        "CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (webhook, seq) WHERE state = 'pending'",
        "CREATE INDEX webhook_deliveries_done ON webhook_deliveries (state, done_at) WHERE state <> 'pending'",
        # Every change numbered up to `seq` has been looked at for the webhook (queued when it wanted it).
        """
        CREATE TABLE webhook_cursors (
            webhook  TEXT PRIMARY KEY,
            seq      BIGINT NOT NULL,
            saved_at DOUBLE PRECISION NOT NULL
        )""",
    )),
)

LATEST_VERSION = MIGRATIONS[-1].version
