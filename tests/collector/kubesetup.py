"""The collector against the fake Kubernetes API (tests/kubeapi.py): a kubeconfig pointing at it, and a wait
for what the collector writes back."""

from __future__ import annotations

import time
from pathlib import Path

import yaml


def kubeconfig(path: Path, server: str) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "fake", "cluster": {"server": server}}],
        "users": [{"name": "test", "user": {}}],
        "contexts": [{"name": "test", "context": {"cluster": "fake", "user": "test"}}],
    }))
    return path


def wait_until(condition, what: str, deadline: float = 10.0):
    """Poll `condition()` until it returns something true (returned), or fail naming `what`."""
    end = time.monotonic() + deadline
    while not (result := condition()):
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)
    return result
