"""The Secrets and ConfigMaps of a manifests folder (`dnswatch-collector --feeds-dir`), read only as the values
that SecurityEventWebhooks' `valueFrom` name in folder mode (docs/webhooks.md).

    apiVersion: v1
    kind: Secret
    metadata: {name: soc-slack}
    data: {url: aHR0cHM6Ly9ob29rcy5zbGFjay5jb20vVDAvQjAvWFhY}   # base64, as kubectl writes it
    stringData: {token: s3cr3t}                               # or as it is; wins over data, as in the API

    apiVersion: v1
    kind: ConfigMap
    metadata: {name: jira}
    data: {project: SOC}
    binaryData: {caCert: LS0tLS1CRUdJTi...}                   # base64

The namespace is not looked at: the folder is one collector's, as its namespace is in the cluster. No message
here quotes a value: a folder Secret is never logged, even when it cannot be read.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, Protocol

__all__ = ["VALUE_KINDS", "FolderValues", "read_value_object"]

VALUE_KINDS = ("Secret", "ConfigMap")
_ENCODED_FIELDS = {"Secret": ("data",), "ConfigMap": ("binaryData",)}
_PLAIN_FIELDS = {"Secret": ("stringData",), "ConfigMap": ("data",)}


class KeyReference(Protocol):
    """A key of a Secret or a ConfigMap (`dnswatch.alerting.webhooks.ValueRef` is one)."""

    kind: str
    name: str
    key: str


def read_value_object(manifest: Mapping[str, Any]) -> dict[str, str]:
    """The keys and values of a Secret or ConfigMap document; ValueError naming the field (never its value)
    when it cannot be read."""
    kind = manifest.get("kind")
    if kind not in VALUE_KINDS:
        raise ValueError(f"kind: {kind!r} is neither Secret nor ConfigMap")
    values: dict[str, str] = {}
    for field in _ENCODED_FIELDS[kind]:
        for key, encoded in _mapping(manifest, field).items():
            values[key] = _decode(encoded, f"{field}.{key}")
    for field in _PLAIN_FIELDS[kind]:
        for key, value in _mapping(manifest, field).items():
            if not isinstance(value, str):
                raise ValueError(f"{field}.{key}: must be text")
            values[key] = value
    return values


def _mapping(manifest: Mapping[str, Any], field: str) -> Mapping[str, Any]:
    value = manifest.get(field)
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise ValueError(f"{field}: must be a mapping of keys to values")
    return value


def _decode(encoded: Any, where: str) -> str:
    if not isinstance(encoded, str):
        raise ValueError(f"{where}: must be base64 text")
    try:
        return base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError(f"{where}: not base64-encoded UTF-8 text") from None


class FolderValues:
    """The folder's Secrets and ConfigMaps, by kind and name; immutable, so a reader on another thread always
    sees one whole poll's."""

    def __init__(self, objects: Mapping[tuple[str, str], Mapping[str, str]] | None = None) -> None:
        self._objects = {where: dict(values) for where, values in (objects or {}).items()}

    def lookup(self, ref: KeyReference) -> str | None:
        """The key's value; None when the object or the key is not in the folder."""
        return self._objects.get((ref.kind, ref.name), {}).get(ref.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FolderValues) and other._objects == self._objects

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._objects)))

    def __repr__(self) -> str:  # names only: the values are secrets
        return f"FolderValues({sorted(f'{kind}/{name}' for kind, name in self._objects)})"
