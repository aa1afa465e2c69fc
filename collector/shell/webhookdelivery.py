"""Webhook delivery, assembled: the dispatcher, a sender per SecurityEventWebhook, Test, the queue's counts and
its pruning (docs/webhooks.md, "Delivery").

    delivery = WebhookDelivery(keeper, store, bell, WebhookMetrics(metrics.registry), DeliverySettings(...))
    delivery.start()          # follows the keeper: a sender per webhook, made and closed as the set changes
    ...
    await delivery.close()    # before the store closes: attempts in flight written back, cursors saved

The queue is in the store (collector/store/webhookqueue.py): a restart resumes where delivery stopped, and an
emission acknowledged by its receiver is never sent again. Delivery is at least once: an attempt whose answer
came but whose outcome was not written yet (a crash at that moment) is sent again, with the same
Idempotency-Key.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from collector.shell.eventbell import EventBell
from collector.shell.secretlogfilter import SecretLogFilter
from collector.shell.webhookdispatch import DispatchSettings, WebhookDispatcher
from collector.shell.webhookkeeper import TestResult, WebhookKeeper
from collector.shell.webhookmetrics import WebhookMetrics
from collector.shell.webhooksender import SenderSettings, WebhookSender, post_once
from collector.store import StoreError
from dnswatch.alerting.webhooks import SecurityEventWebhook

__all__ = ["DeliverySettings", "WebhookDelivery"]

log = logging.getLogger("dnswatch.collector.webhooks")


@dataclass(frozen=True)
class DeliverySettings:
    """How webhooks are delivered."""

    ui_url: str | None = None
    """The collector's UI (`--ui-url`): Slack and Jira payloads link to `{ui_url}/events/{id}`."""
    sender: SenderSettings = field(default_factory=SenderSettings)
    dispatch: DispatchSettings = field(default_factory=DispatchSettings)
    keep_delivered_seconds: float = 86_400.0
    """Delivered rows are pruned this long after their acknowledgement (a day)."""
    keep_dead_seconds: float = 7 * 86_400.0
    """Dead letters are pruned this long after they were given up on (a week)."""
    prune_interval_seconds: float = 3_600.0
    counts_interval_seconds: float = 1.0
    """How often the queue's pending and dead counts are read for the metrics and the status."""


class WebhookDelivery:
    """Every webhook's delivery, started and closed together."""

    def __init__(self, keeper: WebhookKeeper, store: Any, bell: EventBell, metrics: WebhookMetrics,
                 settings: DeliverySettings = DeliverySettings()) -> None:
        self._keeper = keeper
        self._store = store
        self._metrics = metrics
        self._settings = settings
        self.senders: dict[str, WebhookSender] = {}
        self.dispatcher = WebhookDispatcher(store, bell, keeper, self._queued, settings.dispatch)
        self._tested: dict[str, SecurityEventWebhook] = {}
        self._tests: set[asyncio.Task[None]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self._redaction = SecretLogFilter()

    def start(self) -> None:
        self._redaction.install()
        self._keeper.set_tester(self.test)
        self.dispatcher.start()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._follow_keeper(), name="webhook senders"),
                       loop.create_task(self._count(), name="webhook queue counts"),
                       loop.create_task(self._prune(), name="webhook queue pruning")]

    async def close(self) -> None:
        """Stop the dispatcher and every sender; what is queued stays queued for the next start."""
        self._stop.set()
        self._keeper.set_tester(None)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for task in self._tests:
            task.cancel()
        await asyncio.gather(*self._tests, return_exceptions=True)
        await self.dispatcher.close()
        await asyncio.gather(*(sender.close() for sender in self.senders.values()))
        await self.dispatcher.save()
        self._redaction.uninstall()

    async def test(self, webhook: SecurityEventWebhook) -> TestResult:
        """Webhooks.Test: one sample event to the webhook now, whatever its state; the result is its status."""
        config = await self._keeper.resolved(webhook.name)
        if config is None:
            return TestResult(False, "no such webhook")
        result = await post_once(webhook, config, self._settings.sender, self._settings.ui_url, self._redaction)
        self._keeper.record_delivery(webhook.name, at=dt.datetime.now(dt.timezone.utc), ok=result.delivered,
                                     error=result.error)
        if result.delivered:
            log.info("webhook %s: the sample event was delivered (HTTP %d)", webhook.name, result.http_status)
        else:
            log.warning("webhook %s: the sample event was not delivered: %s", webhook.name, result.error)
        return result

    # -- inside ---------------------------------------------------------------------------------------------

    def _queued(self, names: set[str]) -> None:
        for name in names:
            sender = self.senders.get(name)
            if sender is not None:
                sender.wake()

    async def _follow_keeper(self) -> None:
        generation = -1
        while not self._stop.is_set():
            if generation >= 0:
                generation = await self._keeper.wait_changed(generation)
            else:
                generation = self._keeper.generation
            webhooks = {webhook.name: webhook for webhook in self._keeper.webhooks}
            for name in [name for name in self.senders if name not in webhooks]:
                sender = self.senders.pop(name)
                await sender.close()
                self._metrics.forget(name)
            for name in webhooks:
                if name not in self.senders:
                    self.senders[name] = WebhookSender(name, self._keeper, self._store, self._metrics,
                                                       self._settings.sender, ui_url=self._settings.ui_url,
                                                       redaction=self._redaction)
                    self.senders[name].start()
            self._tested = {name: tested for name, tested in self._tested.items() if name in webhooks}
            for name, webhook in webhooks.items():
                if webhook.state == "Test" and webhook.valid and self._tested.get(name) != webhook:
                    # Once per spec: the same spec seen again (another field of the set changed) is not sent.
                    self._tested[name] = webhook
                    task = asyncio.get_running_loop().create_task(self.test(webhook), name=f"webhook test {name}")
                    self._tests.add(task)
                    task.add_done_callback(self._tests.discard)

    async def _count(self) -> None:
        while not self._stop.is_set():
            try:
                counts = await self._store.webhook_queue_counts()
            except StoreError as error:
                log.debug("webhook queue counts: %s", error)
                counts = None
            if counts is not None:
                for name in self.senders:
                    pending, dead = counts.get(name, (0, 0))
                    self._metrics.queue(name, pending=pending, dead=dead)
                    self._keeper.record_delivery(name, at=dt.datetime.now(dt.timezone.utc), ok=False,
                                                 pending=pending, dead_letters=dead)
            await asyncio.sleep(self._settings.counts_interval_seconds)

    async def _prune(self) -> None:
        settings = self._settings
        while not self._stop.is_set():
            now = time.time()
            try:
                pruned = await self._store.prune_webhook_deliveries(now - settings.keep_delivered_seconds,
                                                                    now - settings.keep_dead_seconds)
                if pruned:
                    log.info("webhook queue: %d delivered or dead rows pruned", pruned)
            except StoreError as error:
                log.warning("webhook queue: pruning failed: %s", error)
            await asyncio.sleep(settings.prune_interval_seconds)
