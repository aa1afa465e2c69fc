"""DomainSet: exact, wildcard and matchSubdomains semantics (docs/detection.md) and its memory bound."""

import pytest

from dnswatch.feeds.domainset import DomainSet


def match(domains: DomainSet, name: str) -> str | None:
    labels = name.split(".")
    starts, position = [], 0
    for label in labels[:-1]:
        position += len(label) + 1
        starts.append(position)
    return domains.match(name.encode(), starts)


@pytest.mark.parametrize(
    ("entries", "match_subdomains", "name", "expected"),
    [
        (["evil.com"], False, "evil.com", "evil.com"),
        (["evil.com"], False, "a.evil.com", None),  # Calico: a plain entry is exact
        (["evil.com"], False, "notevil.com", None),
        (["evil.com"], False, "com", None),
        (["*.evil.com"], False, "a.evil.com", "*.evil.com"),
        (["*.evil.com"], False, "x.y.evil.com", "*.evil.com"),
        (["*.evil.com"], False, "evil.com", None),  # a wildcard does not match its apex
        (["evil.com"], True, "evil.com", "evil.com"),
        (["evil.com"], True, "deep.sub.evil.com", "evil.com"),
        (["evil.com"], True, "xevil.com", None),
        (["*.evil.com"], True, "evil.com", None),  # matchSubdomains widens plain entries only
        (["evil.com", "*.evil.com"], False, "evil.com", "evil.com"),
        (["evil.com", "*.evil.com"], False, "a.evil.com", "*.evil.com"),
        (["*.evil.com", "*.b.evil.com"], False, "a.b.evil.com", "*.b.evil.com"),  # most specific wins
        ([], False, "evil.com", None),
    ],
)
def test_entry_semantics(entries, match_subdomains, name, expected):
    assert match(DomainSet.from_names(entries, match_subdomains), name) == expected


def test_duplicates_count_once_and_membership():
    domains = DomainSet.from_names(["a.example", "a.example", "*.a.example", "b.example"])
    assert len(domains) == 2  # a.example and *.a.example share one slot holding both kinds
    assert "a.example" in domains and "*.a.example" in domains and "b.example" in domains
    assert "*.b.example" not in domains and "c.example" not in domains


def test_large_set_finds_every_entry_and_stays_compact():
    names = [f"host{i}.zone{i % 977}.example" for i in range(200_000)]
    domains = DomainSet.from_names(names)
    assert len(domains) == len(names)
    assert all(domains.kind(name.encode()) for name in names[::97])
    assert not any(domains.kind(f"other{i}.example".encode()) for i in range(5000))
    assert domains.nbytes / len(names) <= 16  # the agent memory target per feed domain (docs/architecture.md)
