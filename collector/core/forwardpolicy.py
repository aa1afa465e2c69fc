"""Which events go to the forwarding targets: the one decision, kept here so that it is made in one place.

Today every change of the store's change sequence is forwarded. Events excepted by an alert exception or
dismissed by an analyst are to be left out of forwarding later: that rule belongs in `is_forwarded`, and
nowhere else (the forwarder asks it of every emission it reads, and moves its cursor past those it declines
just as past those it forwarded: a declined emission is not forwarded later either, though a later emission
of the same event is asked about again). docs/forwarding.md describes it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["is_forwarded"]


def is_forwarded(emission: Any) -> bool:
    """Whether this emission of an event goes to the forwarding targets. `emission` is a
    collector.core.forwardline.Forwarded: `seq`, `body` (the event's JSON as stored) and `event` (the event
    parsed, docs/event.md; parsed when first asked for, so a rule that needs no field costs nothing). Every
    emission, for now."""
    return True
