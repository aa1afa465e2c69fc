"""Whether a stored event is shown (pure): the one rule the event listing, the event watch and every later
consumer of stored events (webhooks, forwarding) apply.

An event is hidden by default when an active AlertException matched it (the store keeps the exception's name
beside the event) or when someone dismissed it. See docs/alert-operations.md.
"""

from __future__ import annotations

__all__ = ["is_hidden"]


def is_hidden(excepted_by: str, dismissed: bool, *, include_excepted: bool = False,
              include_dismissed: bool = False) -> bool:
    """Whether an event marked `excepted_by` (an exception's name, "" for none) and `dismissed` is left out,
    unless asked for: call it with the store's marks of the event (StoredEvent.excepted_by, .dismissed)."""
    return (bool(excepted_by) and not include_excepted) or (dismissed and not include_dismissed)
