"""What one pull of a feed did, as the collector reports it and `SyncFeedResponse.outcome` carries it.

The collector decides the outcome (collector/core/pulling.py); the consumer reads it from a sync's answer.
"""

from __future__ import annotations

__all__ = ["DISABLED", "FAILED", "NOT_MODIFIED", "OUTCOMES", "REFUSED", "UNCHANGED", "UPDATED"]

UPDATED = "Updated"
"""A good body with a set that differs from the one in force: the caller installs, persists and pushes it."""
UNCHANGED = "Unchanged"
"""A good body with the set in force (same SHA-256): a successful sync, nothing to push."""
NOT_MODIFIED = "NotModified"
"""A 304 to a conditional GET: a successful sync that keeps the set in force."""
REFUSED = "Refused"
"""A suspect body: the set in force stays, a SuspectBody condition says why."""
FAILED = "Failed"
"""No usable body (request failed, headers unresolved, body unreadable): the set in force stays."""
DISABLED = "Disabled"
"""`mode: Disabled`: nothing was pulled."""
OUTCOMES = (UPDATED, UNCHANGED, NOT_MODIFIED, REFUSED, FAILED, DISABLED)
