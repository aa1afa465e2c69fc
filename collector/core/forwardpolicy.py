"""Which events go to the forwarding targets: the one decision, kept here so that it is made in one place.

Today every change of the store's change sequence is forwarded. Events excepted by an alert exception or
dismissed by an analyst are to be left out of forwarding later: that rule belongs in `is_forwarded`, and
nowhere else (the forwarder asks it of every change it reads, and moves its cursor past the changes it
declines just as past those it forwarded). docs/forwarding.md describes it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["is_forwarded"]


def is_forwarded(change: Any) -> bool:
    """Whether this change of the store's change sequence goes to the forwarding targets. `change` has the
    attributes of the store's EventChange: seq, id, body, time, type, host, namespace, pod, pod_aggr, and
    feeds and domains (read from the body when asked). Every change, for now."""
    return True
