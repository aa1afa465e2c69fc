"""TAXII 2.1 collections as a feed source (`pull.taxii`, docs/feeds.md): the pure part of a pull.

A pull asks the API root for its collections (`GET {api root}collections/`), picks the one the spec names
by id or title, then reads its objects page after page (`GET .../collections/{id}/objects/`): each answer is
an envelope `{"more": true, "next": "...", "objects": [...]}`, and the next page is asked for with `next`.
The first pull reads the whole collection; each later one only what was added since (`added_after`, the
`X-TAXII-Date-Added-Last` of the last page read), merged into the indicators already held, a newer version
of an indicator (a later `modified`) replacing the older. What is held lives in the puller's memory only: a
restarted collector reads the whole collection once again.

Pure: the shell (`collector.shell.puller`) makes the requests this module names and hands it the answers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any
from urllib.parse import quote, urlencode

MEDIA_TYPE = "application/taxii+json;version=2.1"
"""What every request accepts and every answer must be (TAXII 2.1, section 1.6.8)."""
PAGE_LIMIT = 1000
"""Objects asked for per page; a server may send fewer."""
DATE_ADDED_LAST = "X-TAXII-Date-Added-Last"

# The fields of an indicator a feed uses: the rest (descriptions, kill chains, external references) need not
# be held between pulls.
_KEPT = ("type", "id", "modified", "pattern", "pattern_type", "valid_until", "revoked")
_EARLIEST = datetime.min.replace(tzinfo=timezone.utc)  # an indicator without a readable `modified`


class TaxiiError(ValueError):
    """An answer that does not fit TAXII 2.1, or a collection that cannot be read; the message says why."""


@dataclass(frozen=True)
class TaxiiState:
    """What a TAXII feed holds between pulls: where the next one starts, and the indicators so far."""

    added_after: str | None = None
    """The `X-TAXII-Date-Added-Last` of the last page read: the next pull asks for what was added after."""
    indicators: Mapping[str, dict] = field(default_factory=lambda: MappingProxyType({}))
    """The newest version of each indicator read, by id."""


@dataclass(frozen=True)
class Page:
    """One envelope of a collection's objects."""

    objects: list
    more: bool
    next: str | None
    date_added_last: str | None


def collections_url(api_root: str) -> str:
    return api_root.rstrip("/") + "/collections/"


def objects_url(api_root: str, collection_id: str, added_after: str | None, next_page: str | None) -> str:
    query: dict[str, str] = {"limit": str(PAGE_LIMIT)}
    if added_after:
        query["added_after"] = added_after
    if next_page:
        query["next"] = next_page
    return f"{collections_url(api_root)}{quote(collection_id, safe='')}/objects/?{urlencode(query)}"


def check_media_type(content_type: str | None) -> None:
    """Refuse an answer that is not TAXII 2.1 JSON (a web page, a TAXII 2.0 server, plain JSON)."""
    kind = (content_type or "").replace(" ", "").lower()
    if kind.split(";")[0] != "application/taxii+json" or ("version=" in kind and "version=2.1" not in kind):
        raise TaxiiError(f"the answer is {content_type or 'of no Content-Type'}, not {MEDIA_TYPE}")


def find_collection(body: bytes, wanted: str) -> str:
    """The id of the collection `wanted` names (by id, else by title) in a `collections/` answer."""
    document = _json(body, "the collections answer")
    collections = document.get("collections", []) if isinstance(document, dict) else None
    if not isinstance(collections, list):
        raise TaxiiError("the collections answer has no list of collections")
    listed = [c for c in collections if isinstance(c, dict) and isinstance(c.get("id"), str)]
    chosen = next((c for c in listed if c["id"] == wanted), None) or next(
        (c for c in listed if c.get("title") == wanted), None
    )
    if chosen is None:
        names = ", ".join(f"{c['id']} ({c.get('title', 'no title')})" for c in listed) or "none"
        raise TaxiiError(f"the API root has no collection {wanted!r} (it has: {names})")
    if chosen.get("can_read") is False:
        raise TaxiiError(f"collection {wanted!r} cannot be read with these credentials (can_read is false)")
    return chosen["id"]


def read_page(body: bytes, date_added_last: str | None) -> Page:
    """An objects answer; raises TaxiiError for one that is no envelope."""
    document = _json(body, "the objects answer")
    if not isinstance(document, dict):
        raise TaxiiError("the objects answer is not an envelope")
    objects = document.get("objects", [])
    if not isinstance(objects, list):
        raise TaxiiError("the envelope's objects are not a list")
    more = document.get("more", False) is True
    next_page = document.get("next")
    if more and not (isinstance(next_page, str) and next_page):
        raise TaxiiError("the envelope says there is more but gives no next")
    return Page(objects, more, next_page if more else None, date_added_last)


def merge(held: Mapping[str, dict], objects: list) -> dict[str, dict]:
    """`held` with the indicators among `objects`, the newest version of each kept."""
    merged = dict(held)
    for obj in objects:
        if not isinstance(obj, dict) or obj.get("type") != "indicator" or not isinstance(obj.get("id"), str):
            continue
        kept = {key: obj[key] for key in _KEPT if key in obj}
        old = merged.get(obj["id"])
        if old is None or _moment(kept.get("modified")) >= _moment(old.get("modified")):
            merged[obj["id"]] = kept
    return merged


def next_state(previous: TaxiiState, pages: list[Page], indicators: dict[str, dict]) -> TaxiiState:
    """Where the pull after one that read `pages` starts."""
    added_after = next((page.date_added_last for page in reversed(pages) if page.date_added_last),
                       previous.added_after)  # fmt: skip
    return TaxiiState(added_after, MappingProxyType(indicators))


def _moment(text: Any) -> datetime:
    if isinstance(text, str):
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return _EARLIEST
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return _EARLIEST


def _json(body: bytes, what: str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as error:
        raise TaxiiError(f"{what} is not valid JSON: {error}") from None
