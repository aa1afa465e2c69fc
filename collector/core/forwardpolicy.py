"""Which events go to the forwarding targets: the one decision, kept here so that it is made in one place.

An emission is forwarded unless the event is hidden at that moment: excepted by an active alert exception
or dismissed by an analyst (dnswatch.alerting.visibility, the rule the event listing and watches apply).
The forwarder asks it of every emission it reads, with the marks the store holds beside the event, and moves
its cursor past those it declines just as past those it forwarded: a declined emission is not forwarded later
either (an exception removed afterwards does not send the events it had hidden), though a later emission of
the same event is asked about again. docs/forwarding.md describes it.
"""

from __future__ import annotations

from dnswatch.alerting.visibility import is_hidden

__all__ = ["is_forwarded"]


def is_forwarded(excepted_by: str, dismissed: bool) -> bool:
    """Whether an emission of an event marked `excepted_by` (an exception's name, "" for none) and
    `dismissed` goes to the forwarding targets."""
    return not is_hidden(excepted_by, dismissed)
