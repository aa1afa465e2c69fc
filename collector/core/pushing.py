"""Push feeds (docs/feeds.md#push-feeds): what a pushed body does to a feed, decided without I/O.

A push feed is a GlobalThreatFeed with no `pull` (Calico's push feeds); its set arrives with `dnswatch feeds
push NAME FILE` instead of from a URL. The body is read as a pulled one would be (any format of
`dnswatch.feeds.formats`), and a body that cannot be read or yields no entry at all is refused: the set in
force stays and the status is left as it was, since the push's caller hears why at once. The shrink checks
of a pull do not apply: a push is somebody's deliberate choice of the whole set.
"""

from __future__ import annotations

from datetime import datetime

from collector.core.pulling import BodyVerdict
from dnswatch.feeds.formats import FeedFormat, parse_feed_body
from dnswatch.feeds.lines import DEFAULT_MAX_BYTES, FeedError
from dnswatch.feeds.outcomes import REFUSED, UNCHANGED, UPDATED
from dnswatch.feeds.status import FeedStatus, after_success, entries_sha256

__all__ = ["judge_push"]

_SAMPLES_IN_MESSAGE = 3


def judge_push(status: FeedStatus, body: bytes, *, content: str, fmt: FeedFormat, now: datetime,
               max_bytes: int = DEFAULT_MAX_BYTES) -> BodyVerdict:
    """UPDATED or UNCHANGED with the status once the pushed set is in force (a new version only when the set
    differs), or REFUSED with the reason and `status` unchanged."""
    try:
        parsed = parse_feed_body(body, content, fmt, max_bytes)
    except FeedError as error:
        return BodyVerdict(REFUSED, status, message=f"the body cannot be read as {fmt.kind}: {error}; "
                                                    f"the set in force stays")
    if not parsed.entries:
        samples = ", ".join(f"line {number}: {text!r}" for number, text in parsed.rejected_samples[:_SAMPLES_IN_MESSAGE])
        why = f"{parsed.rejected} rejected" + (f" ({samples})" if samples else "") if parsed.rejected else "it is empty"
        return BodyVerdict(REFUSED, status, message=f"the body yields no usable {content} entry ({why}); "
                                                    f"the set in force stays")
    sha = entries_sha256(parsed.entries)
    new_status = after_success(status, parsed, now, sha)
    if sha == status.sha256 and status.version > 0:
        return BodyVerdict(UNCHANGED, new_status)
    return BodyVerdict(UPDATED, new_status, parsed)
