"""The installed dnswatch's version: `--version` of every command and the build-info metric of either process."""

from __future__ import annotations

import importlib.metadata

__all__ = ["package_version", "version_line"]


def package_version() -> str:
    """The installed dnswatch's version; `unknown` when run from a tree that was never installed."""
    try:
        return importlib.metadata.version("dnswatch")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def version_line(prog: str) -> str:
    """What `PROG --version` prints."""
    return f"{prog} {package_version()}"
