"""What the collector stores about feeds, the interface every backend offers, and the store's errors.

Feeds: one row per feed (its current good set's version, sha256 and size, and its status), and the sets
themselves per version, so the distribution can compute "from version A to B" after a restart. Events
come next to them behind the same interface.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import zlib
from dataclasses import dataclass, field
from typing import Any, Protocol

from dnswatch.errors import DnswatchError
from dnswatch.eventfilter import EventFilter

# Every version of a set is kept whole (not as a delta) up to this many per feed: the current one and the
# ones before it, enough to send an agent that reconnects with a recent version a delta instead of a
# snapshot. Older ones are pruned in the transaction that saves a new one.
DEFAULT_KEEP_VERSIONS = 3

# zlib level 1: a domain list compresses to about a third at level 1 and barely better at 6, which costs
# three times the CPU on a 1M-entry save.
_ZLIB_LEVEL = 1


class StoreError(DnswatchError):
    """The store cannot do what was asked (unreachable, broken, or newer than this collector)."""


class BadStoreUrl(StoreError):
    """The --db URL names no backend we have, or is malformed; the message names the scheme and the forms."""


class VersionConflict(StoreError):
    """save_feed was given a version the store already holds with another sha256, or an older version.

    With several replicas on one PostgreSQL database, the replica that gets this reloads the feed and
    saves its set again as the next version."""

    def __init__(self, message: str, *, current_version: int) -> None:
        super().__init__(message)
        self.current_version = current_version
        """The version the store holds for the feed now."""


@dataclass(frozen=True)
class FeedHeader:
    """A feed's row without its entries: what `list_feeds` returns."""

    name: str
    """The feed's name (the GlobalThreatFeed's metadata.name)."""
    content: str
    """`DomainNameSet` or `IPSet` as saved with the set; empty while no good set was ever saved."""
    version: int
    """Version of the current good set; 0 means no good set yet (only a status was saved)."""
    sha256: str
    """The caller's sha256 of the current set (opaque to the store); empty when version is 0."""
    entry_count: int
    """Number of entries in the current set."""
    saved_at: dt.datetime | None
    """When the current set was saved (UTC); None when version is 0."""
    status: dict[str, Any] = field(hash=False)
    """The feed's last status, opaque JSON (FeedStatus.to_dict()); replaced by save_feed and save_status."""
    status_saved_at: dt.datetime
    """When the status was last saved (UTC)."""


@dataclass(frozen=True)
class StoredFeed(FeedHeader):
    """A feed's row with its current good set: what `load_feed` returns."""

    entries: tuple[str, ...]
    """The set's canonical entries, in the order they were saved."""
    payload: bytes | None = None
    """The compiled payload saved with the set (e.g. the wire encoding sent to agents), if any."""


@dataclass(frozen=True)
class FeedVersion:
    """One kept version of a feed's set: what `load_version` returns, for computing deltas."""

    name: str
    """The feed's name."""
    version: int
    """This set's version."""
    sha256: str
    """The caller's sha256 of this set."""
    entries: tuple[str, ...]
    """The set's canonical entries, in the order they were saved."""
    payload: bytes | None
    """The compiled payload saved with this version, if any."""
    saved_at: dt.datetime
    """When this version was saved (UTC)."""


class Store(Protocol):
    """The collector's storage. Every method is a coroutine; blocking work runs off the event loop.

    Writes are durable when they return (SQLite synchronous=FULL; PostgreSQL commit), so a caller may
    acknowledge what it has saved."""

    backend: str
    """`sqlite` or `postgresql`."""

    async def save_feed(self, name: str, *, content: str, version: int, sha256: str,
                        entries: list[str] | tuple[str, ...], status: dict[str, Any],
                        payload: bytes | None = None) -> None:
        """Save a new good set and its status in one transaction.

        `version` must be higher than the stored one (VersionConflict otherwise), or equal to it with the
        same sha256, which is an idempotent retry and only replaces the status. Versions start at 1."""

    async def load_feed(self, name: str) -> StoredFeed | None:
        """The feed's current good set and status, or None if no good set was ever saved for it."""

    async def feed_header(self, name: str) -> FeedHeader | None:
        """The feed's row without entries (also for a feed that has only a status), or None."""

    async def list_feeds(self) -> list[FeedHeader]:
        """Every feed's row without entries, ordered by name (feeds with only a status included)."""

    async def save_status(self, name: str, status: dict[str, Any]) -> None:
        """Replace the feed's status only (a failed pull); the set stays. Creates a status-only row."""

    async def delete_feed(self, name: str) -> bool:
        """Forget the feed, its status and every version; False if there was nothing to delete."""

    async def feed_versions(self, name: str) -> list[int]:
        """The versions of the feed's set still kept, oldest first (the current one last)."""

    async def load_version(self, name: str, version: int) -> FeedVersion | None:
        """One kept version of the feed's set, or None if it was pruned or never existed."""

    # -- events (collector/store/events.py) -----------------------------------------------------------

    async def ingest_events(self, events: list[dict[str, Any]]) -> "IngestResult":
        """Store a batch of events (docs/event.md) in one durable transaction, one row per event id.

        A new id is inserted; a known id with a higher record.count replaces its row; a lower or equal count
        changes nothing. Inserted and replaced rows get new change sequence numbers. BadEvent (nothing
        stored) if an event lacks an id or a parsable time."""

    async def ingest_json(self, bodies: list[str], *, ids: list[str] | None = None,
                          wire: Any = None) -> "IngestResult":
        """ingest_events of events given as their JSON texts (as agents send them), each stored as it came;
        `ids` are the ids the texts must hold. BadEvent also for a text that is not a JSON object. `wire`,
        opaque to the store, is handed to the change listeners on each row (EventRow.wire) with the event's
        place in the batch: the batch as received, whose encodings a watch may send on."""

    async def list_events(self, filter: "EventFilter", page_size: int,
                          page_token: str = "") -> tuple[list["StoredEvent"], str]:
        """One page of matching events, newest first (time, then id); the token for the next page, or ""
        at the end. BadPageToken if `page_token` is not one this store handed out."""

    async def get_event(self, event_id: str) -> "StoredEvent | None":
        """The stored event with this id, or None."""

    async def events_since(self, seq: int, filter: "EventFilter", limit: int) -> list["StoredEvent"]:
        """Matching events whose change sequence number is greater than `seq`, in that order, at most `limit`.

        Resuming from the last seq received misses nothing and repeats nothing: numbers become visible in
        order (writers serialize on the sequence), and an event that grows comes again with its new seq."""

    async def latest_event_seq(self) -> int:
        """The highest change sequence number handed out so far (0 for none): where a watch "from now" starts."""

    async def delete_events_before(self, cutoff: dt.datetime) -> int:
        """Retention: delete the events last seen before `cutoff`; the number deleted."""

    async def dismiss_events(self, ids: list[str], by: str, at: dt.datetime) -> "MarkResult":
        """Dismiss the events with these ids, noting who and when (an event dismissed already keeps its first
        dismissal); the ids not stored are reported."""

    async def undismiss_events(self, ids: list[str]) -> "MarkResult":
        """Dismiss them no more; the ids not stored are reported."""

    async def remark_events(self, marker: Any, page_size: int = 5000, after_seq: int = 0) -> int:
        """Set every stored event's (after change `after_seq`) alert exception mark by `marker` (None: clear
        every mark), a page at a time; the number of events whose mark changed."""

    async def excepted_counts(self) -> dict[str, int]:
        """How many stored events each alert exception marks."""
    # -- forwarding (collector/store/forwardcursors.py) -----------------------------------------------

    async def forward_cursor(self, target: str) -> int | None:
        """The change sequence number the forwarding `target` has received every change up to; None if new."""

    async def forward_changes(self, seq: int, limit: int) -> tuple[int, list[tuple[int, bytes, str, bool]]]:
        """(latest seq, [(seq, body as UTF-8, excepted_by, dismissed)]): at most `limit` changes after `seq`,
        in sequence order, each with the marks the store holds beside the event."""

    async def save_forward_cursor(self, target: str, seq: int) -> None:
        """Durably record that `target` has every change up to `seq`; a cursor never moves back."""

    # -- the webhook delivery queue (collector/store/webhookqueue.py) -------------------------------------

    async def start_webhook_cursors(self, webhooks: Any) -> dict[str, int]:
        """Each webhook's dispatch cursor; a webhook never seen starts at the latest change."""

    async def enqueue_webhook_deliveries(self, rows: list[tuple[str, str, int, int, str]],
                                         cursors: dict[str, int]) -> int:
        """Queue (webhook, event id, count, seq, body) rows once each and move the cursors, in one transaction."""

    async def due_webhook_deliveries(self, webhook: str, now: float, limit: int) -> list[Any]:
        """The webhook's pending deliveries due at `now`, in change order."""

    async def record_webhook_attempts(self, results: list[Any]) -> None:
        """Write attempts' outcomes; a delivered row is never made pending again."""

    async def close(self) -> None:
        """Close the connection and the store's worker thread; the store is unusable afterwards."""


# -- events ----------------------------------------------------------------------------------------------


class BadEvent(StoreError):
    """An event given to ingest_events cannot be stored (no id, no parsable time); the batch is refused."""


class BadPageToken(StoreError):
    """list_events was given a page token it never handed out (or a damaged one)."""


@dataclass(frozen=True)
class StoredEvent:
    """One stored event and its change sequence number."""

    seq: int
    """Change sequence number of the row's last insert or update; a watch resumes after it."""
    body: str
    """The event's JSON text as last ingested; the Events service sends it on without parsing it."""
    excepted_by: str = ""
    """The active alert exception that matched the event ("" for none)."""
    dismissed_by: str | None = None
    """Who dismissed the event (the caller's identity as the collector knew it); None: not dismissed."""
    dismissed_at: float | None = None
    """When it was dismissed, epoch seconds; None: not dismissed."""

    @property
    def dismissed(self) -> bool:
        return self.dismissed_at is not None

    @functools.cached_property
    def event(self) -> dict[str, Any]:
        """The event as last ingested (its JSON), parsed on first use."""
        return json.loads(self.body)


@dataclass(frozen=True)
class MarkResult:
    """What dismiss_events or undismiss_events did."""

    changed: list[str]
    """The ids whose dismissal changed."""
    unknown: list[str]
    """The ids no stored event has."""


@dataclass(frozen=True)
class IngestResult:
    """What ingest_events did with a batch (events repeated inside the batch count once)."""

    inserted: int
    """Events whose id was new."""
    updated: int
    """Known events that grew (higher record.count) and replaced their row."""
    unchanged: int
    """Events already stored with an equal or higher count, or repeated in the batch."""


# -- the stored form of a set ---------------------------------------------------------------------------


def pack_entries(entries: list[str] | tuple[str, ...]) -> bytes:
    """zlib of the entries joined by newlines; an entry holding a newline is a caller bug (ValueError)."""
    text = "\n".join(entries)
    if entries and text.count("\n") != len(entries) - 1:
        raise ValueError("a feed entry contains a newline; entries must be canonical names or addresses")
    return zlib.compress(text.encode("utf-8"), _ZLIB_LEVEL)


def unpack_entries(blob: bytes, count: int) -> tuple[str, ...]:
    """The inverse of pack_entries; `count` tells an empty set from a set of one empty entry."""
    if count == 0:
        return ()
    entries = tuple(zlib.decompress(blob).decode("utf-8").split("\n"))
    if len(entries) != count:
        raise StoreError(f"stored feed set is damaged: {len(entries)} entries where {count} were saved")
    return entries


def from_epoch(seconds: float | None) -> dt.datetime | None:
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, dt.timezone.utc)
