"""Delivering one SecurityEventWebhook's queue to its receiver (docs/webhooks.md, "Delivery").

A sender takes the webhook's due rows from the store in change order and posts each (collector/core/
webhookpayloads.py) with at most `concurrency` requests in flight, on an httpx transport of its own (TLS with
the webhook's `caCert` when it has one). Each outcome is judged by collector/core/webhookpolicy.py and written
back to the store; outcomes that come together are written in one transaction, and a row stays "in flight" (not
taken again) until its outcome is written. A 2xx marks the row delivered, and a delivered row is never sent
again. A failure of the receiver (timeout, connection, 429, 5xx) holds the whole webhook until the retry is due,
so a receiver that is away is not hammered with the rest of the queue.

A webhook whose configuration cannot be resolved (a Secret missing) delivers nothing and waits for the keeper
to change or its configuration to be read again. Secrets (the resolved config's) never reach a log line: the
errors kept and logged are our own words and the HTTP status, redacted all the same.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import ssl
import time
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec

from collector.core.webhookpayloads import WebhookRequest, idempotency_key, sample_event, webhook_request
from collector.core.webhookpolicy import DEAD, DELIVERED, PENDING, RetryPolicy, Verdict, judge, retry_after_seconds
from collector.shell.secretlogfilter import SecretLogFilter
from collector.shell.webhookkeeper import TestResult, WebhookKeeper
from collector.shell.webhookmetrics import WebhookMetrics
from collector.store import StoreError
from collector.store.webhookqueue import AttemptResult, QueuedDelivery
from dnswatch.alerting.webhooks import ResolvedConfig, SecurityEventWebhook, WebhookCondition, redact

__all__ = ["SenderSettings", "WebhookSender", "post_once"]

log = logging.getLogger("dnswatch.collector.webhooks")

_decode = msgspec.json.Decoder().decode


@dataclass(frozen=True)
class SenderSettings:
    """How a webhook's queue is sent."""

    concurrency: int = 4
    """Requests in flight per webhook at most."""
    batch: int = 500
    """Due rows read per query: with the rows waiting for their outcomes to be written, at most this many are
    delivered per `write_interval_seconds`."""
    timeout_seconds: float = 10.0
    """One attempt, connecting and answering, takes at most this long."""
    write_interval_seconds: float = 0.25
    """Outcomes are written together at most this often: each write is a durable commit on the store's one
    writer, queued between the ingest's group commits (at 0.05 s, three webhooks' commits took the ingest
    beside them from 30,000 to 13,000 events/s). After a crash, what was answered in this time is sent again."""
    poll_seconds: float = 5.0
    """The longest wait when nothing is due (the dispatcher wakes the sender when it queues)."""
    config_retry_seconds: float = 30.0
    """How often an incomplete configuration is read again when the keeper says nothing."""
    retry: RetryPolicy = RetryPolicy()


class WebhookSender:
    """Sends one webhook's queue until `close`."""

    def __init__(self, name: str, keeper: WebhookKeeper, store: Any, metrics: WebhookMetrics,
                 settings: SenderSettings = SenderSettings(), *, ui_url: str | None = None,
                 redaction: SecretLogFilter | None = None) -> None:
        """`redaction` is told the webhook's secrets before each request, for the HTTP client's own logs."""
        self.name = name
        self._redaction = redaction
        self._keeper = keeper
        self._store = store
        self._metrics = metrics
        self._settings = settings
        self._ui_url = ui_url
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._in_flight: set[tuple[str, str, int]] = set()
        self._attempts: set[asyncio.Task[None]] = set()
        self._results: list[AttemptResult] = []
        self._writing: asyncio.Task[None] | None = None
        self._progress = asyncio.Event()
        self._hold_until = 0.0
        self._failed_since_read = False
        self._client: httpx.AsyncHTTPTransport | None = None
        self._client_for: tuple[tuple[str, str], ...] | None = None
        self._said_incomplete = ""
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._metrics.start(self.name)
        self._task = asyncio.get_running_loop().create_task(self.run(), name=f"webhook {self.name}")

    def wake(self) -> None:
        """New rows were queued."""
        self._wake.set()

    async def close(self, timeout: float = 10.0) -> None:
        """Stop taking rows; attempts in flight get `timeout` seconds to finish and be written back."""
        self._stop.set()
        self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        if self._attempts:
            await asyncio.wait(self._attempts, timeout=timeout)
            for task in self._attempts:
                task.cancel()
            await asyncio.gather(*self._attempts, return_exceptions=True)
        if self._writing is not None:
            await asyncio.gather(self._writing, return_exceptions=True)
        if self._results:
            await self._write_results()
        if self._client is not None:
            await self._client.aclose()

    # -- the loop ---------------------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._run()
        except Exception as error:  # noqa: BLE001 - a bug: said; the queue stays in the store
            log.error("webhook %s: delivery stopped: %r", self.name, error)

    async def _run(self) -> None:
        settings = self._settings
        while not self._stop.is_set():
            generation = self._keeper.generation
            webhook = self._keeper.get(self.name)
            if webhook is None:
                return
            if not webhook.delivers:
                await self._idle(generation, settings.poll_seconds)
                continue
            config = await self._keeper.resolved(self.name)
            if config is None:
                return
            if not config.complete:
                self._incomplete(config)
                await self._idle(generation, settings.config_retry_seconds)
                continue
            self._said_incomplete = ""
            if self._redaction is not None:
                self._redaction.hold(self.name, config.secrets)
            wait = self._hold_until - time.time()
            if wait > 0:
                await self._idle(generation, wait)
                continue
            if self._failed_since_read and self._in_flight:
                # The failed row is read again once its retry is written: it goes first, in change order.
                self._progress.clear()
                await self._idle(generation, settings.poll_seconds, self._progress)
                continue
            try:
                due = await self._store.due_webhook_deliveries(self.name, time.time(), settings.batch)
            except StoreError as error:
                log.warning("webhook %s: reading the queue failed: %s", self.name, error)
                await self._idle(generation, settings.poll_seconds)
                continue
            rows = [row for row in due if row.key not in self._in_flight]
            if not rows:
                if self._in_flight:
                    self._progress.clear()
                    await self._idle(generation, settings.poll_seconds, self._progress)
                    continue
                self._wake.clear()
                try:
                    upcoming = await self._store.next_webhook_attempt(self.name)
                except StoreError:
                    upcoming = None
                timeout = settings.poll_seconds if upcoming is None else min(settings.poll_seconds,
                                                                               max(0.0, upcoming - time.time()))
                await self._idle(generation, timeout, self._wake)
                continue
            try:
                client = await self._client_of(config)
            except (ssl.SSLError, ValueError) as error:
                self._incomplete(ResolvedConfig({}, conditions=(_bad_ca(error),)))
                await self._idle(generation, settings.config_retry_seconds)
                continue
            self._failed_since_read = False
            for row in rows:
                await self._slots.acquire()
                if self._stop.is_set() or self._failed_since_read:
                    # After a failure the queue is read again: the failed row, first in change order, goes
                    # first once it is due (full jitter may make that at once).
                    self._slots.release()
                    break
                self._in_flight.add(row.key)
                task = asyncio.get_running_loop().create_task(self._attempt(client, webhook, config, row))
                self._attempts.add(task)
                task.add_done_callback(self._attempts.discard)

    async def _idle(self, generation: int, timeout: float, *events: asyncio.Event) -> None:
        """Until the keeper changes, a stop, one of `events`, or `timeout` seconds."""
        waiters = [asyncio.ensure_future(self._keeper.wait_changed(generation)),
                   asyncio.ensure_future(self._stop.wait()), *(asyncio.ensure_future(e.wait()) for e in events)]
        try:
            await asyncio.wait(waiters, timeout=max(0.0, timeout), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    def _incomplete(self, config: ResolvedConfig) -> None:
        why = "; ".join(condition.message for condition in config.conditions)
        if why != self._said_incomplete:
            log.warning("webhook %s delivers nothing until its configuration can be read: %s", self.name, why)
            self._said_incomplete = why

    # -- one attempt --------------------------------------------------------------------------------------

    async def _attempt(self, client: httpx.AsyncHTTPTransport, webhook: SecurityEventWebhook, config: ResolvedConfig,
                       row: QueuedDelivery) -> None:
        started = time.monotonic()
        try:
            # The generic payload is the body as stored: parsing it would only cost time.
            event = {} if webhook.consumer == "Generic" else _decode(row.body)
            request = webhook_request(webhook.consumer, config.values, row.body, event,
                                      key=idempotency_key(self.name, row.event_id, row.count), ui_url=self._ui_url)
        except (msgspec.DecodeError, KeyError, TypeError, ValueError) as error:
            verdict = Verdict(DEAD, reason=f"no payload can be made of this event: {type(error).__name__}")
        else:
            if webhook.state == "Debug":
                log.info("webhook %s (Debug): %s", self.name, request.redacted(config.secrets))
            try:
                status, error_text, retry_after = await post(client, request, self._settings.timeout_seconds)
            except (ValueError, TypeError, httpx.InvalidURL) as error:
                # A request that cannot be made (a header value that is not ASCII): it never will be.
                verdict = Verdict(DEAD, reason=f"the request cannot be made: {type(error).__name__}")
            else:
                verdict = judge(status=status, error=error_text, retry_after=retry_after,
                                attempts=row.attempts + 1, age_seconds=time.time() - row.enqueued_at,
                                policy=self._settings.retry, rand=random.random)
        seconds = time.monotonic() - started
        now = time.time()
        reason = redact(verdict.reason, config.secrets)
        if verdict.state == PENDING and verdict.transient:
            self._hold_until = max(self._hold_until, now + verdict.delay)
            self._failed_since_read = True
        self._results.append(AttemptResult(row.key, verdict.state, row.attempts + 1,
                                           now + verdict.delay if verdict.state == PENDING else row.next_attempt_at,
                                           reason))
        outcome = {DELIVERED: "delivered", PENDING: "retried", DEAD: "dead"}[verdict.state]
        self._metrics.attempt(self.name, outcome, seconds=seconds,
                              waited=now - row.enqueued_at if verdict.state == DELIVERED else None)
        at = dt.datetime.now(dt.timezone.utc)
        self._keeper.record_delivery(self.name, at=at, ok=verdict.state == DELIVERED, error=reason)
        if verdict.state == DEAD:
            log.warning("webhook %s: event %s (count %d) is a dead letter: %s", self.name, row.event_id, row.count,
                        reason)
        elif verdict.state == PENDING and row.attempts == 0:
            log.info("webhook %s: delivering event %s failed (%s); trying again in %.1f s", self.name,
                     row.event_id, reason, verdict.delay)
        self._slots.release()
        if self._writing is None or self._writing.done():
            self._writing = asyncio.get_running_loop().create_task(self._write_results())

    async def _write_results(self) -> None:
        """Write the outcomes gathered, a few at a time in one transaction (each write is a durable commit on
        the store's writer, between the ingest's); then their rows may be taken again."""
        while self._results:
            if not self._stop.is_set():
                await asyncio.sleep(self._settings.write_interval_seconds)
            results, self._results = self._results, []
            try:
                await self._store.record_webhook_attempts(results)
            except StoreError as error:
                # Not written: the rows are still pending in the store and will be sent again (at least once).
                log.warning("webhook %s: writing %d outcomes failed: %s", self.name, len(results), error)
            for result in results:
                self._in_flight.discard(result.key)
            self._progress.set()

    async def _client_of(self, config: ResolvedConfig) -> httpx.AsyncHTTPTransport:
        """The webhook's client, made again when its configuration (its CA) changed."""
        ca = config.values.get("caCert", "")
        identity = (("caCert", ca),)
        if self._client is None or self._client_for != identity:
            if self._client is not None:
                await self._client.aclose()
            self._client = make_client(ca, self._settings.concurrency, self._settings.timeout_seconds)
            self._client_for = identity
        return self._client


def make_client(ca_pem: str, connections: int, timeout: float) -> httpx.AsyncHTTPTransport:
    """An HTTP transport (a pool of kept-alive connections) trusting `ca_pem` (PEM text) when given, else the
    system's CAs. The transport, not an httpx.AsyncClient: a webhook needs none of a client's layers (cookies,
    auth flows, redirects, event hooks), and they were half of each request's CPU (about 1 ms a delivery
    here, most of the collector's cost of a webhook)."""
    verify: ssl.SSLContext | bool = True
    if ca_pem:
        verify = ssl.create_default_context(cadata=ca_pem)
    return httpx.AsyncHTTPTransport(verify=verify, limits=httpx.Limits(
        max_connections=connections, max_keepalive_connections=connections))


async def post(client: httpx.AsyncHTTPTransport, request: WebhookRequest,
               timeout: float) -> tuple[int | None, str, float | None]:
    """(HTTP status or None, why there was none, Retry-After in seconds or None) of one POST. The error says
    what failed in our words: httpx's own text may quote the URL, which can be a secret."""
    try:
        response = await asyncio.wait_for(_exchange(client, request, timeout), timeout)
    except (httpx.TimeoutException, asyncio.TimeoutError):
        return None, f"timed out after {timeout:g} s", None
    except httpx.ConnectError as error:
        return None, f"cannot connect: {_cause(error)}", None
    except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError) as error:
        return None, f"the connection broke: {_cause(error)}", None
    except httpx.HTTPError as error:
        return None, f"the request failed: {type(error).__name__}", None
    except ssl.SSLError as error:
        return None, f"TLS failed: {error.reason or type(error).__name__}", None
    except OSError as error:
        return None, f"cannot connect: {error.strerror or type(error).__name__}", None
    retry_after = retry_after_seconds(response.headers.get("retry-after"), dt.datetime.now(dt.timezone.utc))
    return response.status_code, "", retry_after


async def _exchange(client: httpx.AsyncHTTPTransport, request: WebhookRequest, timeout: float) -> httpx.Response:
    """One request through the transport, its answer read whole (so that the connection is kept for the next)."""
    outgoing = httpx.Request("POST", request.url, headers=list(request.headers), content=request.content,
                             extensions={"timeout": httpx.Timeout(timeout).as_dict()})
    response = await client.handle_async_request(outgoing)
    try:
        await response.aread()
    finally:
        await response.aclose()
    return response


def _bad_ca(error: BaseException) -> WebhookCondition:
    return WebhookCondition("InvalidConfig", f"config caCert: not PEM certificates a TLS client can trust "
                            f"({type(error).__name__})")


def _cause(error: BaseException) -> str:
    """The innermost OS or TLS reason of a transport error ("Connection refused", "certificate verify
    failed"), never a URL."""
    seen = error
    while seen.__cause__ is not None or seen.__context__ is not None:
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"TLS: certificate verify failed ({seen.verify_message}; a private CA goes in caCert)"
        if isinstance(seen, ssl.SSLError):
            return f"TLS: {seen.reason or 'handshake failed'}"
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
    return type(error).__name__


async def post_once(webhook: SecurityEventWebhook, config: ResolvedConfig, settings: SenderSettings,
                    ui_url: str | None = None, redaction: SecretLogFilter | None = None) -> TestResult:
    """Send one sample event to the webhook now (Webhooks.Test, `state: Test`): no queue, no retry."""
    if not config.complete:
        return TestResult(False, "; ".join(condition.message for condition in config.conditions))
    if redaction is not None:
        redaction.hold(webhook.name, config.secrets)
    now = dt.datetime.now(dt.timezone.utc)
    event = sample_event(webhook.name, now)
    body = msgspec.json.encode(event).decode("utf-8")
    try:
        request = webhook_request(webhook.consumer, config.values, body, event,
                                  key=idempotency_key(webhook.name, event["id"], 0), ui_url=ui_url)
    except (KeyError, ValueError) as error:
        return TestResult(False, f"no payload can be made: {type(error).__name__}")
    if webhook.state == "Debug":
        log.info("webhook %s (Debug, test): %s", webhook.name, request.redacted(config.secrets))
    try:
        client = make_client(config.values.get("caCert", ""), 1, settings.timeout_seconds)
    except (ssl.SSLError, ValueError) as error:
        return TestResult(False, _bad_ca(error).message)
    async with client:
        status, error, _ = await post(client, request, settings.timeout_seconds)
    if status is not None and 200 <= status < 300:
        return TestResult(True, "", status)
    return TestResult(False, redact(error or f"HTTP {status}", config.secrets), status or 0)
