"""The live-capture testbed as a fixture: harness/netns.py's `Testbed`, fresh for each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.netns import NamespacesUnavailable, Testbed


@pytest.fixture
def testbed() -> Iterator[Testbed]:
    """A fresh testbed for one test; skipped (with why) only where network namespaces cannot be made."""
    try:
        bed = Testbed.create()
    except NamespacesUnavailable as reason:
        pytest.skip(f"live-capture testbed unavailable: {reason}")
    try:
        yield bed
    finally:
        bed.close()
