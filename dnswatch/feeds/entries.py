"""How a domain entry says what it matches: the three forms a parsed DomainNameSet holds (docs/detection.md).

- `name`: the name itself (hosts lines, plain lines, URLs, RPZ `name CNAME .`);
- `*.name`: its strict subdomains, never the name (`*.name` lines, RPZ `*.name CNAME .`, adblock `||*.name^`);
- `.name`: the name and every subdomain (adblock `||name^`, dnsmasq `address=/name/`, `server=/name/`,
  `local=/name/`), the meaning those formats give their rules. The leading dot is the notation squid and
  cookie domains use for the same thing; `canonical_name` never returns it, so it cannot be mistaken for a name.

The form is part of the entry's text, so it travels wherever the entries do (the collector's store, the set's
SHA-256, `DomainSet.from_names`) without a second field. A feed's `matchSubdomains: true` widens every `name`
to `.name`; a wildcard stays a wildcard.
"""

from __future__ import annotations

WILDCARD_MARK = "*."
"""Prefix of an entry matching strict subdomains only."""
SUBTREE_MARK = "."
"""Prefix of an entry matching the name and all its subdomains."""


def subtree(name: str) -> str:
    """The entry matching canonical `name` and every name under it."""
    return SUBTREE_MARK + name


def entry_name(entry: str) -> str:
    """The canonical name an entry is about, without its form's mark."""
    if entry.startswith(WILDCARD_MARK):
        return entry[2:]
    if entry.startswith(SUBTREE_MARK):
        return entry[1:]
    return entry


def covers_subdomains(entry: str, match_subdomains: bool = False) -> bool:
    """Whether `entry` matches names under its name (in a feed with `matchSubdomains` as given)."""
    return match_subdomains or entry.startswith((WILDCARD_MARK, SUBTREE_MARK))
