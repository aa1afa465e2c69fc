"""Every fuzz target by name, in the order `--all` runs them. A target module is imported only when its
target runs, inside atheris's instrumentation, so that the code under test is instrumented for coverage."""

from __future__ import annotations

import importlib

from fuzz.oracle import Target

# target name -> the module whose TARGETS list holds it
MODULES = {
    "scanner": "fuzz.dns",
    "events": "fuzz.dns",
    "decode": "fuzz.frames",
    "pcap": "fuzz.captures",
    "feedlines": "fuzz.feeds",
    "feedformats": "fuzz.feeds",
    "manifest": "fuzz.manifests",
}


def names() -> list[str]:
    return list(MODULES)


def load(name: str) -> Target:
    """The target called `name` (its module imported now); KeyError for an unknown name."""
    module = importlib.import_module(MODULES[name])
    return next(target for target in module.TARGETS if target.name == name)
