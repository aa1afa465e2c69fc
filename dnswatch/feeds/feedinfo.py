"""A feed as consumers see it (`dnswatch feeds list|get`, the Feeds gRPC service): spec parts and status.

The JSON form (`record`) has the CRD status's field names; `-o table` (consumer/feedtable.py) and `-o yaml` show
the same record, so the three outputs never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dnswatch.feeds.rejections import rejection_reason
from dnswatch.feeds.status import FeedStatus

__all__ = ["FeedInfo", "RefusedManifest"]


@dataclass(frozen=True)
class RefusedManifest:
    """A manifest the collector refused (or a feeds-folder file it cannot read), shown by `dnswatch feeds list`."""

    origin: str
    """Where it is: `projectcalico.org/v3 GlobalThreatFeed/c2`, or a file (and document) of the feeds folder."""
    name: str
    """The feed's name; empty when the manifest has none that can be read."""
    message: str
    """Why, naming the field; a URL in it is redacted."""

    def record(self) -> dict[str, Any]:
        return {"origin": self.origin, "name": self.name, "message": self.message}


@dataclass(frozen=True)
class FeedInfo:
    """The parts of a GlobalThreatFeed that are safe to show (never its headers), with its status."""

    name: str
    """The GlobalThreatFeed's name."""
    content: str
    """`DomainNameSet` or `IPSet`; empty when unknown (a feed restored from the store before its spec is read)."""
    mode: str
    """`Enabled` or `Disabled`."""
    status: FeedStatus
    """Where the last pulls left it."""
    description: str = ""
    """`spec.description`."""
    url: str = ""
    """`spec.pull.http.url` as it may be shown (`dnswatch.urlredact.redacted_url`: no password, no query
    values); empty when the spec is not known yet."""
    period_seconds: float | None = None
    """`spec.pull.period` in seconds; None when the spec is not known yet."""
    format: str = ""
    """`newlineDelimited`, `json` or `csv`."""
    match_subdomains: bool = False
    """`spec.matchSubdomains`."""
    pushed: bool = False
    """A push feed (no `spec.pull`): its set comes from `dnswatch feeds push`, never from a URL."""
    source: str = ""
    """Where its manifest is (`dnswatch.dev/v1 GlobalThreatFeed/c2`, or a feeds-folder file); empty before
    it is read."""

    def rejected(self) -> list[dict[str, Any]]:
        """The rejected samples of the set in force, each with why it is no entry."""
        return [{"line": number, "text": text, "reason": rejection_reason(text, self.content, self.format)}
                for number, text in self.status.rejected_samples]

    def record(self) -> dict[str, Any]:
        """The JSON object of `dnswatch feeds list -o json`."""
        status = self.status.to_dict()
        return {
            "name": self.name,
            "content": self.content,
            "mode": self.mode,
            "entries": status["entries"],
            "rejectedLines": status["rejectedLines"],
            "lastSuccessfulSync": status["lastSuccessfulSync"],
            "errorConditions": status["errorConditions"],
            "version": status["version"],
            "sha256": status["sha256"],
        }

    def detail(self) -> dict[str, Any]:
        """`record` with the spec's other safe fields, for `dnswatch feeds get`."""
        return {
            **self.record(),
            "description": self.description,
            "url": self.url,
            "periodSeconds": self.period_seconds,
            "format": self.format,
            "matchSubdomains": self.match_subdomains,
            "push": self.pushed,
            "source": self.source,
            "rejectedSamples": self.rejected(),
        }
