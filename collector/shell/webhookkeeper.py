"""The collector's SecurityEventWebhooks: held by name as the sources give them, their configuration read from
Secrets and ConfigMaps when delivery asks for it, and what delivery last did, for the status and the CLI
(docs/webhooks.md).

    keeper = WebhookKeeper(resolve=source.resolve)   # None in folder mode without value sources
    keeper.replace({"soc-slack": manifest})          # from the folder or the Kubernetes source
    config = await keeper.resolved("soc-slack")      # values and secrets; conditions when one is missing
    keeper.record_delivery("soc-slack", at=now, ok=False, error="HTTP 503", pending=12)
    keeper.status("soc-slack")                       # the resource's status, as written back and shown

Delivery follows the set with `generation` and `wait_changed`, and answers `Webhooks.Test` through the tester
it installs (`set_tester`). Only the event loop that delivery runs on may call the keeper.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from dnswatch.alerting.webhooks import (ResolvedConfig, SecurityEventWebhook, ValueRef, WebhookCondition, redact,
                                        read_security_event_webhook, resolve_config)

__all__ = ["DeliveryStatus", "TestResult", "WebhookKeeper"]

log = logging.getLogger(__name__)

Resolver = Callable[[ValueRef], Awaitable["str | None"]]
"""A Secret or ConfigMap key's value, None when the object or the key is missing; raises LookupError (or
OSError) when it cannot be read."""
Tester = Callable[[SecurityEventWebhook], Awaitable["TestResult"]]


@dataclass(frozen=True)
class TestResult:
    """What sending one sample event to a webhook gave."""

    __test__ = False  # not a pytest test class, despite its name

    delivered: bool
    error: str = ""
    """Why not, secrets redacted."""
    http_status: int = 0
    """The receiver's answer; 0 when none came."""


@dataclass(frozen=True)
class DeliveryStatus:
    """What delivery last did for one webhook."""

    last_delivery: dt.datetime | None = None
    """When a delivery last succeeded."""
    last_error: str = ""
    """The last failure, secrets redacted; cleared by a success."""
    last_error_at: dt.datetime | None = None
    delivered: int = 0
    """Deliveries acknowledged since the collector started."""
    failed: int = 0
    """Attempts that failed since the collector started."""
    pending: int = 0
    """Deliveries queued, as delivery last counted them."""
    dead_letters: int = 0
    """Deliveries given up on, as delivery last counted them."""


class WebhookKeeper:
    """The webhooks by name, their resolved configuration and their delivery status."""

    def __init__(self, resolve: Resolver | None = None, *, resolve_ttl_seconds: float = 30.0) -> None:
        """`resolve` reads `valueFrom` keys; None: every `valueFrom` is missing. A resolved configuration is
        reused for `resolve_ttl_seconds` (a Secret rotated in the API is used within that)."""
        self._resolve = resolve
        self._ttl = resolve_ttl_seconds
        self._webhooks: dict[str, SecurityEventWebhook] = {}
        self._resolved: dict[str, tuple[float, ResolvedConfig]] = {}
        self._delivery: dict[str, DeliveryStatus] = {}
        self._tester: Tester | None = None
        self.generation = 0
        """Bumped by every change of the set (or of the value sources, `values_changed`)."""
        self._changed = asyncio.Event()  # set, and replaced, at each change

    # -- the set, from the sources ----------------------------------------------------------------------

    @property
    def webhooks(self) -> list[SecurityEventWebhook]:
        """Every webhook held, by name."""
        return [self._webhooks[name] for name in sorted(self._webhooks)]

    def get(self, name: str) -> SecurityEventWebhook | None:
        return self._webhooks.get(name)

    def replace(self, manifests: Mapping[str, Mapping[str, Any]]) -> None:
        """Hold exactly these webhooks (name -> manifest), read and validated here."""
        self._webhooks = {name: read_security_event_webhook(manifest, name) for name, manifest in manifests.items()}
        for webhook in self._webhooks.values():
            self._warn(webhook)
        self._delivery = {name: status for name, status in self._delivery.items() if name in self._webhooks}
        self._bump()

    def upsert(self, name: str, manifest: Mapping[str, Any]) -> SecurityEventWebhook:
        webhook = self._webhooks[name] = read_security_event_webhook(manifest, name)
        self._warn(webhook)
        self._bump()
        return webhook

    def delete(self, name: str) -> None:
        if self._webhooks.pop(name, None) is not None:
            self._delivery.pop(name, None)
            self._bump()

    def values_changed(self) -> None:
        """A Secret or ConfigMap may have changed: read every configuration again when next asked."""
        self._bump()

    async def wait_changed(self, after: int) -> int:
        """Wait until `generation` passes `after`; the new generation."""
        while self.generation <= after:
            await self._changed.wait()
        return self.generation

    # -- configuration ----------------------------------------------------------------------------------

    async def resolved(self, name: str) -> ResolvedConfig | None:
        """The webhook's configuration with its `valueFrom` keys read (None: no such webhook). A key that
        cannot be read is a condition of the result, never an exception."""
        webhook = self._webhooks.get(name)
        if webhook is None:
            return None
        cached = self._resolved.get(name)
        if cached is not None and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        values: dict[ValueRef, str | None] = {}
        problems: list[WebhookCondition] = []
        for item in webhook.config:
            if item.ref is None or item.ref in values:
                continue
            if self._resolve is None:
                values[item.ref] = None
                continue
            try:
                values[item.ref] = await self._resolve(item.ref)
            except (LookupError, OSError, ValueError) as error:
                values[item.ref] = ""
                problems.append(WebhookCondition("InvalidConfig", f"config {item.name}: cannot read "
                                                 f"{item.ref.describe()}: {error}"))
        config = resolve_config(webhook, values.get)
        if problems:
            config = replace(config, conditions=(*problems, *config.conditions))
        if self._webhooks.get(name) is webhook:  # not replaced while the keys were read
            self._resolved[name] = (time.monotonic(), config)
        return config

    # -- delivery's reports -----------------------------------------------------------------------------

    def record_delivery(self, name: str, *, at: dt.datetime, ok: bool, error: str = "", pending: int | None = None,
                        dead_letters: int | None = None) -> None:
        """Delivery's report of one attempt (or, with neither `ok` attempt nor error, only new counts)."""
        if name not in self._webhooks:
            return
        status = self._delivery.get(name, DeliveryStatus())
        secrets = self._secrets(name)
        if ok:
            status = replace(status, last_delivery=at, last_error="", delivered=status.delivered + 1)
        elif error:
            status = replace(status, last_error=redact(error, secrets), last_error_at=at, failed=status.failed + 1)
        if pending is not None:
            status = replace(status, pending=pending)
        if dead_letters is not None:
            status = replace(status, dead_letters=dead_letters)
        self._delivery[name] = status

    def delivery(self, name: str) -> DeliveryStatus:
        return self._delivery.get(name, DeliveryStatus())

    def status(self, name: str) -> dict[str, Any] | None:
        """The resource's status: `conditions` (why it delivers nothing, empty when it delivers), the last
        delivery and the last error, and the queue's counts. None: no such webhook."""
        webhook = self._webhooks.get(name)
        if webhook is None:
            return None
        cached = self._resolved.get(name)
        conditions = [*webhook.conditions, *(cached[1].conditions if cached else ())]
        delivery = self.delivery(name)
        status: dict[str, Any] = {"state": webhook.state,
                                  "conditions": [condition.to_dict() for condition in conditions],
                                  "pending": delivery.pending, "deadLetters": delivery.dead_letters}
        if delivery.last_delivery is not None:
            status["lastDelivery"] = _stamp(delivery.last_delivery)
        if delivery.last_error:
            status["lastError"] = delivery.last_error
            status["lastErrorTime"] = _stamp(delivery.last_error_at)
        return status

    # -- Test ---------------------------------------------------------------------------------------------

    def set_tester(self, tester: Tester | None) -> None:
        """Installed by delivery: sends one sample event to a webhook."""
        self._tester = tester

    async def test(self, name: str) -> TestResult:
        """Send one sample event to the webhook now, whatever its state; KeyError when there is none."""
        webhook = self._webhooks.get(name)
        if webhook is None:
            raise KeyError(name)
        if self._tester is None:
            return TestResult(False, "this collector does not deliver webhooks")
        return await self._tester(webhook)

    # -- inside ---------------------------------------------------------------------------------------------

    def _secrets(self, name: str) -> tuple[str, ...]:
        cached = self._resolved.get(name)
        return cached[1].secrets if cached else ()

    def _bump(self) -> None:
        self._resolved.clear()
        self.generation += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    @staticmethod
    def _warn(webhook: SecurityEventWebhook) -> None:
        for condition in webhook.conditions:
            log.warning("SecurityEventWebhook %s delivers nothing: %s", webhook.name, condition.message)


def _stamp(at: dt.datetime | None) -> str:
    if at is None:
        return ""
    return at.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
