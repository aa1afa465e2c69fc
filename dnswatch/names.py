"""Canonical domain names: the one form in which feeds and packets are compared (docs/detection.md).

Canonical means lower-case ASCII, A-labels (punycode) for internationalised labels, no trailing dot and no
empty labels. Labels are not otherwise validated, because attackers query odd names (underscores, binary
bytes); only a string that cannot be a name at all is refused.
"""

from __future__ import annotations

import idna

MAX_NAME_OCTETS = 255  # RFC 1035 §3.1, counted on the wire
MAX_LABEL_OCTETS = 63


def canonical_name(text: str) -> str | None:
    """Return `text` in canonical form, or None when it cannot be a domain name.

    A leading `*.` (a wildcard) is kept as is; the rest is canonicalised. `Bücher.example.` and
    `xn--bcher-kva.example` both become `xn--bcher-kva.example`.
    """
    text = text.strip()
    wildcard = text.startswith("*.")
    if wildcard:
        text = text[2:]
    labels = [label for label in text.split(".") if label]
    if not labels:
        return None
    if not text.isascii():
        try:
            labels = [_a_label(label) for label in labels]
        except (UnicodeError, idna.IDNAError):
            return None
    canonical = ".".join(labels).lower()
    if any(len(label) > MAX_LABEL_OCTETS for label in labels) or _wire_length(labels) > MAX_NAME_OCTETS:
        return None
    if any(ch.isspace() or ch == "/" for ch in canonical):
        return None
    return "*." + canonical if wildcard else canonical


def _a_label(label: str) -> str:
    if label.isascii():
        return label
    # UTS #46 mapping first (case folding, width), as browsers and resolvers do before encoding.
    return idna.encode(label, uts46=True).decode("ascii")


def _wire_length(labels: list[str]) -> int:
    return sum(len(label) + 1 for label in labels) + 1
