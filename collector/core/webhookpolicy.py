"""How webhook delivery answers each outcome of an attempt (pure; docs/webhooks.md, "Delivery").

    verdict = judge(status=503, retry_after=None, attempts=3, age_seconds=40.0, policy=RetryPolicy(),
                    rand=random.random)
    verdict.state, verdict.delay     # "pending" and the seconds to wait, "delivered", or "dead"

A 2xx answer is a delivery. Timeouts, connection failures, 429 and 5xx are tried again after an exponential
backoff with full jitter (a random wait between 0 and the capped exponential, so that many collectors failing
together do not come back together), or after the receiver's Retry-After when a 429 or a 503 gives one; every other
answer (4xx: the payload or the credentials are wrong, and sending them again changes nothing) is dead at
once. A delivery that has failed `max_attempts` times, or has waited `max_age_seconds`, is dead: given up on
and kept as a dead letter.
"""

from __future__ import annotations

import datetime as dt
import email.utils
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RetryPolicy", "Verdict", "backoff_seconds", "judge", "retry_after_seconds"]

PENDING = "pending"
DELIVERED = "delivered"
DEAD = "dead"


@dataclass(frozen=True)
class RetryPolicy:
    """When a failed delivery is tried again, and when it is given up on."""

    base_seconds: float = 1.0
    """The backoff's first bound: the first retry waits between 0 and this."""
    max_backoff_seconds: float = 300.0
    """The backoff's bound never grows past this."""
    max_attempts: int = 12
    """A delivery failing this many times is dead (12 attempts: about half an hour of backoff)."""
    max_age_seconds: float = 86_400.0
    """A delivery still failing this long after it was queued is dead."""
    max_retry_after_seconds: float = 3_600.0
    """A receiver's Retry-After is honoured up to this; longer is taken as this."""


@dataclass(frozen=True)
class Verdict:
    """What to do with a delivery after one attempt."""

    state: str
    """`delivered`, `pending` (tried again after `delay`) or `dead`."""
    delay: float = 0.0
    """Seconds until the next attempt, for `pending`."""
    reason: str = ""
    """Why it is not delivered: `HTTP 503`, `timed out`, ... (no secrets: only our own words and the status)."""
    transient: bool = False
    """A failure of the receiver rather than of this delivery: the webhook's other deliveries wait too."""


def backoff_seconds(attempts: int, policy: RetryPolicy, rand: Callable[[], float]) -> float:
    """Full jitter: uniform between 0 and min(max, base × 2^(attempts - 1)), `attempts` failures so far."""
    bound = min(policy.max_backoff_seconds, policy.base_seconds * 2 ** min(max(attempts - 1, 0), 30))
    return bound * rand()


def retry_after_seconds(value: str | None, now: dt.datetime) -> float | None:
    """The seconds a Retry-After header asks for: delta-seconds (`120`) or an HTTP-date; None when absent or
    unreadable. A date in the past is 0."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return max(0.0, (when - now).total_seconds())


def judge(*, status: int | None, error: str = "", retry_after: float | None = None, attempts: int,
          age_seconds: float, policy: RetryPolicy, rand: Callable[[], float]) -> Verdict:
    """The verdict on an attempt that got HTTP `status` (None: no answer, `error` says why: a timeout, a
    refused or reset connection), `attempts` being the failures so far, this one included."""
    if status is not None and 200 <= status < 300:
        return Verdict(DELIVERED)
    if status is None:
        reason = error or "no answer"
    else:
        reason = f"HTTP {status}"
    retryable = status is None or status == 429 or status >= 500
    if not retryable:
        return Verdict(DEAD, reason=f"{reason}: not retried (the receiver refuses the payload or the credentials)")
    if attempts >= policy.max_attempts:
        return Verdict(DEAD, reason=f"{reason}: given up after {attempts} attempts", transient=True)
    if status in (429, 503) and retry_after is not None:
        delay = min(retry_after, policy.max_retry_after_seconds)
    else:
        delay = backoff_seconds(attempts, policy, rand)
    if age_seconds + delay > policy.max_age_seconds:
        return Verdict(DEAD, reason=f"{reason}: given up after {age_seconds:.0f} s", transient=True)
    return Verdict(PENDING, delay=delay, reason=reason, transient=True)
