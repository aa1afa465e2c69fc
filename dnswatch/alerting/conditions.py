"""What the alerting resources (AlertException, SecurityEventWebhook) share (pure): why one is not in force,
the shape of the `errorConditions` / `conditions` its status and `dnswatch ... get` show, and the reading of
what surrounds its spec (apiVersion, metadata.name, the spec's known fields)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["API_VERSIONS", "Envelope", "ResourceCondition", "read_envelope"]


@dataclass(frozen=True)
class ResourceCondition:
    """A `type` (`InvalidSpec`, `InvalidSelector`, `InvalidQuery`, `InvalidConfig`) and a message naming the
    field."""

    type: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"type": self.type, "message": self.message}


API_VERSIONS = ("dnswatch.dev/v1", "projectcalico.org/v3")
"""Ours and Calico's: a manifest written for Calico applies unchanged."""
_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")  # RFC 1123 subdomain


@dataclass(frozen=True)
class Envelope:
    """What every alerting manifest has around its spec, read: its name, its apiVersion (ours when it is
    neither), its spec (empty when it is none) and what is wrong with them, each naming the field."""

    name: str
    api_version: str
    spec: Mapping[str, Any]
    problems: tuple[str, ...]


def read_envelope(manifest: Mapping[str, Any], name: str | None, spec_fields: set[str]) -> Envelope:
    """The envelope of `manifest`; `name` is the resource's name when the caller knows it (else metadata.name),
    and `spec_fields` the fields its kind's spec may have."""
    metadata = manifest.get("metadata") if isinstance(manifest.get("metadata"), Mapping) else {}
    name = name if name is not None else str(metadata.get("name") or "")
    problems: list[str] = []
    api_version = manifest.get("apiVersion")
    if api_version not in API_VERSIONS:
        problems.append(f"apiVersion: {api_version!r} is not one of {', '.join(API_VERSIONS)}")
        api_version = API_VERSIONS[0]
    if not _NAME.fullmatch(name) or len(name) > 253:
        problems.append(f"metadata.name: {name!r} is not a DNS subdomain name")
    spec = manifest.get("spec")
    if not isinstance(spec, Mapping):
        problems.append("spec: required, a mapping")
        spec = {}
    problems += [f"spec.{unknown}: unknown field (known: {', '.join(sorted(spec_fields))})"
                 for unknown in sorted(set(spec) - spec_fields)]
    return Envelope(name, api_version, spec, tuple(problems))
