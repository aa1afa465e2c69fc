"""Pulling GlobalThreatFeeds over HTTP(S) (docs/feeds.md): the I/O around `collector.core.pulling`.

One `httpx.AsyncClient` for every feed (the collector runs asyncio, with grpc.aio beside it). A pull resolves
the headers, GETs the URL (conditional when a good set is held, redirects followed by hand so header values
never follow a redirect to another origin), unpacks the body as it arrives within the size limit
(`BodyReader`), retries what the policy says may pass, all within one deadline (the pull timeout), and hands
the body to `judge_body`. The result says what happened; the caller keeps the sets. Every message and log
line shows the feed's URL redacted (`dnswatch.urlredact`): its password and query values go to the server
only.

    async with FeedPuller(settings, resolve=kube_lookup, on_result=store_and_push) as puller:
        puller.set_feed(spec, state_from_the_store)
        await puller.run()            # each feed on its period, with jitter, until cancelled
        ...
        result = await puller.sync_now("c2")
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

import httpx

from dnswatch.feeds.formats.stix_format import parse_objects
from dnswatch.feeds.lines import DOMAIN_NAME_SET, ParsedFeed
from dnswatch.feeds.publicsuffixes import refuse_public_suffixes
from dnswatch.feeds.spec import FeedSpec, HeaderSpec
from dnswatch.urlredact import redact_urls, redacted_url, url_secrets
from dnswatch.feeds.outcomes import DISABLED, FAILED, NOT_MODIFIED, REFUSED, UNCHANGED, UPDATED
from collector.core.pulling import (
    CONNECTION,
    HTTP_STATUS,
    PROTOCOL,
    TIMEOUT,
    TOO_LARGE,
    BodyReader,
    BodyRefused,
    BodyVerdict,
    HeaderRef,
    PullFailure,
    RetryPolicy,
    SchedulePolicy,
    Secret,
    SuspectPolicy,
    Validators,
    header_value_problem,
    judge_body,
    judge_parsed,
)
from collector.core.taxii import (MEDIA_TYPE, Page, TaxiiError, TaxiiState, check_media_type, collections_url,
                                  find_collection, merge, next_state, objects_url, read_page)
from dnswatch.feeds.status import (HEADER_RESOLUTION, PARSE_FAILED, PULL_FAILED, FeedStatus, after_failure,
                                   after_not_modified)

__all__ = ["FeedPuller", "FeedState", "PullResult", "PullerSettings", "Resolver"]

log = logging.getLogger(__name__)

Resolver = Callable[[HeaderRef], "str | None | Awaitable[str | None]"]
"""Reads a header value from a ConfigMap or Secret key: the value, or None when the object or key is missing.
May be a coroutine function; an exception it raises becomes a HeaderResolution condition."""


@dataclass(frozen=True)
class PullerSettings:
    """How feeds are pulled; built once from flags by the collector's command."""

    connect_timeout: float = 10.0
    """Seconds to open a connection (TCP and TLS)."""
    read_timeout: float = 30.0
    """Seconds to wait for any one read of the answer."""
    pull_timeout: float = 60.0
    """Seconds one pull may take in all: header lookups, every attempt, the backoff between them and the whole
    body. Read timeouts alone do not bound a pull: a server that sends a byte every few seconds satisfies
    each read. A sync (`sync_now`) returns within it too, counted from when it was asked."""
    max_body_bytes: int = 128 * 1024 * 1024
    """A body past this (after Content-Encoding, and again after a gzip body is unpacked) is refused."""
    max_redirects: int = 5
    """Redirects followed per request."""
    user_agent: str = "dnswatch-collector"
    max_concurrent_pulls: int = 4
    """Pulls in flight at once: at start-up every feed is due, and each holds its body in memory while parsed."""
    retry: RetryPolicy = RetryPolicy()
    """Retries within one pull."""
    schedule: SchedulePolicy = SchedulePolicy()
    """When each feed is pulled next."""
    suspect: SuspectPolicy = SuspectPolicy()
    """Which bodies are refused."""


@dataclass(frozen=True)
class FeedState:
    """What the puller remembers of a feed between pulls; the caller persists it with the last good set."""

    status: FeedStatus = FeedStatus()
    """The feed's status, describing the set in force."""
    validators: Validators = Validators()
    """ETag / Last-Modified of the set in force, for the next conditional GET."""
    failures_in_a_row: int = 0
    """Failed or refused pulls since the last good one; brings the next pull forward."""
    taxii: TaxiiState | None = None
    """A TAXII feed's indicators and where its next pull starts (`collector.core.taxii`); kept in memory only."""


@dataclass(frozen=True)
class PullResult:
    """What one pull did. Only UPDATED carries a set: the caller installs it; otherwise the set in force stays."""

    feed: str
    """The feed's name."""
    outcome: str
    """UPDATED, UNCHANGED, NOT_MODIFIED, REFUSED, FAILED or DISABLED (`collector.core.pulling`)."""
    state: FeedState
    """The feed's state after the pull (its status included)."""
    parsed: ParsedFeed | None = None
    """The new set, for UPDATED only."""
    message: str = ""
    """Why, for REFUSED and FAILED: the error condition's message, never a header value."""
    attempts: int = 0
    """HTTP requests made (retries included); 0 when none was."""
    body: bytes | None = None
    """The body as pulled, for UPDATED and UNCHANGED from one HTTP body (not a TAXII collection): where events
    find the line of the entry that matched (dnswatch/feeds/entrylines.py)."""

    @property
    def status(self) -> FeedStatus:
        return self.state.status


class _Failed(Exception):
    def __init__(self, failure: PullFailure) -> None:
        super().__init__(failure.detail)
        self.failure = failure


class _TaxiiPullFailed(Exception):
    """A request of a TAXII pull failed; the message is the PullFailed condition's."""


@dataclass
class _Fetched:
    status_code: int
    body: bytes = b""
    content_type: str | None = None
    validators: Validators = field(default_factory=Validators)
    date_added_last: str | None = None
    """TAXII's `X-TAXII-Date-Added-Last`, for an objects page."""


class FeedPuller:
    """Pulls each feed on its period and on demand. Use as `async with`: it owns its httpx client."""

    def __init__(
        self,
        settings: PullerSettings = PullerSettings(),
        *,
        resolve: Resolver | None = None,
        on_result: Callable[[PullResult], Awaitable[None] | None] | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        verify: bool | str = True,
    ) -> None:
        """`resolve` reads valueFrom headers; `on_result` hears of every pull (scheduled or not); `rng`,
        `sleep` (retry backoff only) and `clock` are there so tests can replay delays and times."""
        self.settings = settings
        self._resolve = resolve
        self._on_result = on_result
        self._rng = rng if rng is not None else random.Random()
        self._sleep = sleep
        self._clock = clock
        self._verify = verify
        self._client: httpx.AsyncClient | None = None
        self._specs: dict[str, FeedSpec] = {}
        self._states: dict[str, FeedState] = {}
        self._fresh: set[str] = set()  # feeds whose URL, format or content changed since their set was pulled
        self._locks: dict[str, asyncio.Lock] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._pull_soon: set[str] = set()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._running = False
        self._stopped = asyncio.Event()
        self._slots = asyncio.Semaphore(settings.max_concurrent_pulls)

    async def __aenter__(self) -> FeedPuller:
        _redact_url_logs()
        s = self.settings
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(s.read_timeout, connect=s.connect_timeout),
            follow_redirects=False,  # followed by hand: see _request
            # Only the encodings BodyReader undoes (httpx would add br and zstd when their packages are there).
            headers={"User-Agent": s.user_agent, "Accept-Encoding": "gzip, deflate"},
            verify=self._verify,
            trust_env=False,  # no proxies or netrc credentials picked up from the environment by surprise
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._stopped.set()  # a run() still going returns
        await self._stop_tasks()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # ------------------------------------------------------------------------------------------ the feeds

    def set_feed(self, spec: FeedSpec, state: FeedState | None = None) -> None:
        """Add a feed or apply a new spec; `state` restores what the store kept (status, validators).

        A new URL, format or content drops the validators and pulls soon, without the shrink and empty checks
        (the set in force came from another feed); new headers or a feed enabled again pull soon; a new
        period counts from now. The same spec again changes nothing, so an echo does not delay the next pull.
        """
        name = spec.name
        old = self._specs.get(name)
        self._specs[name] = spec
        if state is not None:
            self._states[name] = state
        current = self._states.setdefault(name, FeedState())
        self._locks.setdefault(name, asyncio.Lock())
        wake = self._wake.setdefault(name, asyncio.Event())
        if old is not None and _feed_identity(old) != _feed_identity(spec):
            self._states[name] = replace(current, validators=Validators(), taxii=None)
            self._fresh.add(name)
            self._pull_soon.add(name)
        elif old is not None and (old.headers != spec.headers or (spec.enabled and not old.enabled)):
            self._pull_soon.add(name)
        if old is None or old != spec or state is not None:
            wake.set()
        if self._running:
            self._ensure_task(name)

    def remove_feed(self, name: str) -> None:
        """Forget a feed and stop its schedule (the caller drops its set)."""
        self._specs.pop(name, None)
        self._states.pop(name, None)
        self._fresh.discard(name)
        self._pull_soon.discard(name)
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()

    def feeds(self) -> list[str]:
        return sorted(self._specs)

    def state(self, name: str) -> FeedState:
        """The feed's state; KeyError for an unknown feed."""
        return self._states[name]

    # ------------------------------------------------------------------------------------------ pulling

    async def sync_now(self, name: str, *, accept_shrink: bool = False) -> PullResult:
        """Pull `name` now (`dnswatch feeds sync`), then count its period from now; KeyError for an unknown feed.

        `accept_shrink` is an operator's word that the feed really shrank (or emptied): the body is taken
        without the shrink and empty checks. A web page is refused all the same.

        It returns within the pull timeout from now, whatever the feed's server does: waiting for a pull of
        this feed already under way (which ends within its own, earlier, deadline) or for a pull slot counts,
        and the sync's own pull has what is left.
        """
        deadline = asyncio.get_running_loop().time() + self.settings.pull_timeout
        result = await self.pull(name, accept_shrink=accept_shrink, deadline=deadline)
        if name in self._wake:
            self._wake[name].set()  # its schedule starts again from this pull
        return result

    async def pull(self, name: str, *, accept_shrink: bool = False, deadline: float | None = None) -> PullResult:
        """One pull of `name`, with retries; updates the feed's state and tells `on_result`.

        It ends by `deadline` (the event loop's clock), waiting for a pull slot included; None: the pull
        timeout from when a slot is free. A pull that cannot start by its deadline fails and changes nothing.
        """
        if name not in self._specs:
            raise KeyError(name)
        loop = asyncio.get_running_loop()
        lock = self._locks[name]
        try:
            async with asyncio.timeout_at(deadline):
                await lock.acquire()
                try:
                    await self._slots.acquire()
                except BaseException:
                    lock.release()
                    raise
        except TimeoutError:
            result = self._not_started(name)
        else:
            try:
                spec = self._specs[name]
                state = self._states[name]
                ends = deadline if deadline is not None else loop.time() + self.settings.pull_timeout
                try:
                    result = await self._pull(spec, state, accept_shrink, ends)
                finally:
                    self._slots.release()
                if self._specs.get(name) is spec:  # not removed or replaced while the request ran
                    self._states[name] = result.state
                    if result.outcome in (UPDATED, UNCHANGED, NOT_MODIFIED):
                        self._fresh.discard(name)
            finally:
                lock.release()
        _log_result(result)
        if self._on_result is not None:
            returned = self._on_result(result)
            if inspect.isawaitable(returned):
                await returned
        return result

    def _not_started(self, name: str) -> PullResult:
        message = (f"the pull could not start within the pull timeout of {self.settings.pull_timeout:g} s: "
                   f"all {self.settings.max_concurrent_pulls} pull slots were taken, or a pull of this feed "
                   f"was still running")
        return PullResult(name, FAILED, self._states.get(name, FeedState()), message=message)

    async def _pull(self, spec: FeedSpec, state: FeedState, accept_shrink: bool, deadline: float) -> PullResult:
        if not spec.enabled:
            return PullResult(spec.name, DISABLED, state)
        try:
            async with asyncio.timeout_at(deadline):
                headers, secrets, problem = await self._resolve_headers(spec.headers)
        except TimeoutError:
            problem = f"the header values were not read within the pull timeout of {self.settings.pull_timeout:g} s"
        if problem is not None:
            return self._failed(spec.name, state, HEADER_RESOLUTION, problem, attempts=0)
        if spec.taxii is not None:
            secrets += [Secret(part) for part in url_secrets(spec.url)]
            return await self._pull_taxii(spec, state, headers, secrets, accept_shrink, deadline)
        if state.status.version > 0:  # a 304 is only of use when there is a set to keep
            headers.update((k, v.encode("latin-1")) for k, v in state.validators.request_headers().items())
        secrets += [Secret(part) for part in url_secrets(spec.url)]
        fetched, attempts = await self._fetch_with_retries(spec.url, headers, secrets, deadline)
        if isinstance(fetched, PullFailure):
            if fetched.condition == PARSE_FAILED:  # a .gz body that cannot be unpacked, as judge_body says it
                return self._failed(spec.name, state, PARSE_FAILED, f"the body cannot be read: {fetched.detail}",
                                    attempts)
            tries = f" (after {attempts} attempts)" if attempts > 1 else ""
            shown = redacted_url(spec.url)  # the URL's password and query values are for the request only
            return self._failed(spec.name, state, PULL_FAILED, f"GET {shown}: {fetched.detail}{tries}", attempts)
        if fetched.status_code == 304:
            status = after_not_modified(state.status, self._clock())
            validators = _merge(state.validators, fetched.validators)
            return PullResult(spec.name, NOT_MODIFIED, FeedState(status, validators), attempts=attempts)
        verdict = await asyncio.to_thread(  # parsing a million lines must not stall the event loop
            judge_body,
            state.status,
            fetched.body,
            fetched.content_type,
            content=spec.content,
            fmt=spec.format,
            now=self._clock(),
            match_subdomains=spec.match_subdomains,
            compare_with_set_in_force=not accept_shrink and spec.name not in self._fresh,
            max_bytes=self.settings.max_body_bytes,
            policy=self.settings.suspect,
        )
        if verdict.outcome in (UPDATED, UNCHANGED):
            # Validators only ever describe an accepted body: keeping a refused one's ETag would turn the next
            # pull into a 304 that "succeeds" with the old set and clears the SuspectBody condition.
            new_state = FeedState(verdict.status, fetched.validators, 0)
        else:
            new_state = FeedState(verdict.status, state.validators, state.failures_in_a_row + 1)
        return PullResult(spec.name, verdict.outcome, new_state, verdict.parsed, verdict.message, attempts,
                          body=fetched.body if verdict.outcome in (UPDATED, UNCHANGED) else None)

    def _failed(self, name: str, state: FeedState, kind: str, message: str, attempts: int) -> PullResult:
        status = after_failure(state.status, kind, message, self._clock())
        new_state = replace(state, status=status, failures_in_a_row=state.failures_in_a_row + 1)
        return PullResult(name, FAILED, new_state, message=message, attempts=attempts)

    async def _pull_taxii(self, spec: FeedSpec, state: FeedState, headers: dict[str, bytes], secrets: list[Secret],
                          accept_shrink: bool, deadline: float) -> PullResult:  # fmt: skip
        # The collection's id from the API root's list, then its objects page by page (collector.core.taxii):
        # everything on the first pull, what was added since on the later ones.
        assert spec.taxii is not None
        headers = {**headers, "Accept": MEDIA_TYPE.encode()}
        held = state.taxii or TaxiiState()
        counted = [0]  # requests made, retries included
        limit = self.settings.max_body_bytes
        pages: list[Page] = []
        try:
            listed = await self._taxii_get(collections_url(spec.url), headers, secrets, deadline, counted)
            collection = find_collection(listed.body, spec.taxii.collection)
            size, seen, next_page = 0, set(), None
            while True:
                url = objects_url(spec.url, collection, held.added_after, next_page)
                fetched = await self._taxii_get(url, headers, secrets, deadline, counted)
                size += len(fetched.body)
                if size > limit:
                    raise TaxiiError(f"the collection's pages are over the limit of {limit} bytes together")
                page = read_page(fetched.body, fetched.date_added_last)
                pages.append(page)
                if not page.more:
                    break
                if page.next in seen:
                    raise TaxiiError(f"the server gives the page {page.next!r} twice")
                seen.add(page.next)
                next_page = page.next
        except _TaxiiPullFailed as failed:
            return self._failed(spec.name, state, PULL_FAILED, str(failed), counted[0])
        except TaxiiError as error:
            message = f"the TAXII collection cannot be read: {_redact(str(error), secrets)}"
            return self._failed(spec.name, state, PARSE_FAILED, message, counted[0])
        objects = [obj for page in pages for obj in page.objects]
        now = self._clock()

        def judge() -> tuple[dict[str, dict], BodyVerdict]:
            indicators = merge(held.indicators, objects)
            parsed = parse_objects(indicators.values(), spec.content, now)
            if spec.content == DOMAIN_NAME_SET:  # as judge_body does: nothing covering a public suffix is taken
                parsed = refuse_public_suffixes(parsed, spec.match_subdomains)
            verdict = judge_parsed(state.status, parsed, now=now, policy=self.settings.suspect,
                                   compare_with_set_in_force=not accept_shrink and spec.name not in self._fresh)
            return indicators, verdict

        indicators, verdict = await asyncio.to_thread(judge)  # a large collection must not stall the event loop
        if verdict.outcome in (UPDATED, UNCHANGED):
            new_state = FeedState(verdict.status, Validators(), 0, next_state(held, pages, indicators))
        else:  # refused: the next pull reads the same pages again
            new_state = replace(state, status=verdict.status, failures_in_a_row=state.failures_in_a_row + 1)
        return PullResult(spec.name, verdict.outcome, new_state, verdict.parsed, verdict.message, counted[0])

    async def _taxii_get(self, url: str, headers: dict[str, bytes], secrets: list[Secret], deadline: float,
                         counted: list[int]) -> _Fetched:  # fmt: skip
        fetched, attempts = await self._fetch_with_retries(url, headers, secrets, deadline)
        counted[0] += attempts
        if isinstance(fetched, PullFailure):
            tries = f" (after {attempts} attempts)" if attempts > 1 else ""
            raise _TaxiiPullFailed(f"GET {redacted_url(url)}: {fetched.detail}{tries}")
        if fetched.status_code != 200:
            raise TaxiiError(f"GET {redacted_url(url)} answered {fetched.status_code}, not 200")
        check_media_type(fetched.content_type)
        return fetched

    async def _resolve_headers(
        self, specs: tuple[HeaderSpec, ...]
    ) -> tuple[dict[str, bytes], list[Secret], str | None]:
        values: list[tuple[str, Secret]] = []
        for header in specs:
            if header.value is not None:
                values.append((header.name, Secret(header.value)))
                continue
            ref = (
                HeaderRef("ConfigMap", header.config_map_ref.name, header.config_map_ref.key)
                if header.config_map_ref is not None
                else HeaderRef("Secret", header.secret_ref.name, header.secret_ref.key)  # type: ignore[union-attr]
            )
            try:
                if self._resolve is None:
                    raise LookupError("no ConfigMap/Secret lookup is configured (file mode)")
                value = self._resolve(ref)
                if inspect.isawaitable(value):
                    value = await value
            except Exception as error:  # noqa: BLE001 - any lookup failure becomes a condition, not a crash
                if header.optional:
                    continue
                return {}, [], f"header {header.name}: cannot read {ref}: {_describe(error)}"
            if value is None:
                if header.optional:
                    continue
                return {}, [], f"header {header.name}: {ref} does not exist (and the header is not optional)"
            value = value.strip()
            problem = header_value_problem(value)
            if problem is not None:
                return {}, [], f"header {header.name}: the value from {ref} {problem}"
            values.append((header.name, Secret(value)))
        # Bytes, not str: httpx quotes a str value it cannot encode in its exception message.
        headers = {name: secret.reveal().encode("latin-1") for name, secret in values}
        return headers, [secret for _, secret in values], None

    async def _fetch_with_retries(
        self, url: str, headers: dict[str, bytes], secrets: list[Secret], deadline: float
    ) -> tuple[_Fetched | PullFailure, int]:
        policy = self.settings.retry
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            attempt += 1
            try:
                async with asyncio.timeout_at(deadline):
                    return await self._request(url, headers), attempt
            except _Failed as failed:
                failure = failed.failure
            except TimeoutError:
                # The whole pull's time is spent: no retry could end within it.
                detail = f"no complete answer within {self.settings.pull_timeout:g} s, the pull timeout"
                return PullFailure(TIMEOUT, detail), attempt
            except httpx.HTTPError as error:
                failure = _classify(error, self.settings)
            failure = replace(failure, detail=_redact(failure.detail, secrets))
            if not policy.should_retry(failure, attempt):
                return failure, attempt
            delay = policy.delay(attempt, self._rng)
            if loop.time() + delay >= deadline:
                return replace(failure, detail=f"{failure.detail}; no time left for a retry within the pull "
                                               f"timeout of {self.settings.pull_timeout:g} s"), attempt
            log.debug("GET %s: %s; retry %d in %.2f s", redacted_url(url), failure.detail, attempt, delay)
            await self._sleep(delay)

    async def _request(self, url: str, headers: dict[str, bytes]) -> _Fetched:
        assert self._client is not None, "use FeedPuller as `async with`"
        origin = httpx.URL(url)
        current = origin
        for _ in range(self.settings.max_redirects + 1):
            same_origin = (current.scheme, current.host, current.port) == (origin.scheme, origin.host, origin.port)
            # The feed's headers (API keys) go to the feed's origin only, never to where a redirect points.
            request = self._client.build_request("GET", current, headers=headers if same_origin else None)
            response = await self._client.send(request, stream=True)
            try:
                if response.is_redirect and response.next_request is not None:
                    current = response.next_request.url
                    continue
                return await self._read(response)
            finally:
                await response.aclose()
        raise _Failed(PullFailure(PROTOCOL, f"more than {self.settings.max_redirects} redirects"))

    async def _read(self, response: httpx.Response) -> _Fetched:
        validators = Validators(response.headers.get("etag"), response.headers.get("last-modified"))
        if response.status_code == 304:
            return _Fetched(304, validators=validators)
        if not 200 <= response.status_code <= 299:
            reason = f" {response.reason_phrase}" if response.reason_phrase else ""
            raise _Failed(PullFailure(HTTP_STATUS, f"HTTP {response.status_code}{reason}", response.status_code))
        limit = self.settings.max_body_bytes
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _Failed(PullFailure(TOO_LARGE, f"the body is {declared} bytes, over the limit of {limit}"))
        # The bytes as sent, unpacked here piece by piece: httpx would inflate each network read whole (64 kB
        # of a gzip bomb is 64 MB), and a .gz body is unpacked as it arrives too, so refusing a bomb costs
        # about the limit in memory, not a multiple of it.
        try:
            reader = BodyReader(limit, response.headers.get("content-encoding"))
            async for chunk in response.aiter_raw():
                reader.push(chunk)
            body = reader.finish()
        except BodyRefused as refused:
            raise _Failed(refused.failure) from None
        return _Fetched(response.status_code, body, response.headers.get("content-type"), validators,
                        response.headers.get("x-taxii-date-added-last"))

    # ------------------------------------------------------------------------------------------ the schedule

    async def run(self) -> None:
        """Pull every enabled feed on its period, with jitter, until cancelled or the puller is closed; feeds
        set meanwhile join in."""
        self._running = True
        try:
            for name in list(self._specs):
                self._ensure_task(name)
            await self._stopped.wait()  # the work happens in the feeds' tasks
        finally:
            self._running = False
            await self._stop_tasks()

    def _ensure_task(self, name: str) -> None:
        task = self._tasks.get(name)
        if task is None or task.done():
            self._tasks[name] = asyncio.create_task(self._feed_loop(name), name=f"pull {name}")

    async def _feed_loop(self, name: str) -> None:
        schedule = self.settings.schedule
        spec, state = self._specs[name], self._states[name]
        delay = schedule.first_pull_delay(spec.period_seconds, state.status.last_successful_sync, self._clock(),
                                          self._rng)  # fmt: skip
        while name in self._specs and self._specs[name].enabled:
            wake = self._wake[name]
            wake.clear()
            if name in self._pull_soon:
                delay = 0.0
            try:
                await asyncio.wait_for(wake.wait(), timeout=delay)
            except TimeoutError:
                self._pull_soon.discard(name)
                try:
                    await self.pull(name)
                except KeyError:
                    return  # removed meanwhile
                except Exception:  # noqa: BLE001 - one feed's bad luck (or on_result's) must not end the schedule
                    log.exception("feed %s: the pull failed unexpectedly", name)
            if name not in self._specs:
                return
            # After a pull, a sync now, or a new period: count the next wait from now.
            failures = self._states[name].failures_in_a_row
            delay = schedule.next_pull_delay(self._specs[name].period_seconds, self._rng, failures)

    async def _stop_tasks(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# ---------------------------------------------------------------------------------------------- helpers


def _feed_identity(spec: FeedSpec) -> tuple:
    # What makes a body another feed's: its set in force is then no yardstick for shrinking.
    return (spec.url, spec.content, spec.format, spec.taxii)


def _merge(old: Validators, new: Validators) -> Validators:
    return Validators(new.etag or old.etag, new.last_modified or old.last_modified)


def _classify(error: httpx.HTTPError, settings: PullerSettings) -> PullFailure:
    if isinstance(error, httpx.ConnectTimeout):
        return PullFailure(TIMEOUT, f"could not connect within {settings.connect_timeout:g} s")
    if isinstance(error, httpx.TimeoutException):
        return PullFailure(TIMEOUT, f"no data within the read timeout of {settings.read_timeout:g} s")
    if isinstance(error, (httpx.NetworkError, httpx.RemoteProtocolError)):
        # RemoteProtocolError is what a connection closed or reset before a whole answer looks like.
        return PullFailure(CONNECTION, f"connection failed: {_describe(error)}")
    if isinstance(error, httpx.DecodingError):
        return PullFailure(PROTOCOL, f"the body cannot be decoded: {_describe(error)}")
    return PullFailure(PROTOCOL, _describe(error))


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _redact(text: str, secrets: list[Secret]) -> str:
    # Defence in depth: no message built from a library's exception may carry a header value, nor a URL's
    # credentials (httpx names the URL in some messages; a redirect's Location may carry a token too).
    text = redact_urls(text)
    for secret in secrets:
        value = secret.reveal()
        if value:
            text = text.replace(value, "***")
    return text


class _RedactUrls(logging.Filter):
    """Hides URL credentials in every record of a logger, its traceback included: httpx logs each request's
    URL at INFO, and an unexpected exception's text may quote one."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "://" in message:
            record.msg, record.args = redact_urls(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text and "://" in record.exc_text:
            record.exc_text = redact_urls(record.exc_text)
        return True


# The loggers that see feed URLs: ours, and those of the HTTP client (httpcore logs per module, and a filter
# on a logger does not apply to its children's records).
_URL_LOGGERS = (__name__, "httpx", "httpcore.connection", "httpcore.http11", "httpcore.http2")


def _redact_url_logs() -> None:
    for name in _URL_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactUrls) for f in logger.filters):
            logger.addFilter(_RedactUrls())


def _log_result(result: PullResult) -> None:
    status = result.status
    if result.outcome in (FAILED, REFUSED):
        log.warning("feed %s: %s: %s", result.feed, result.outcome, result.message)
    elif result.outcome == UPDATED:
        log.info("feed %s: %d entries (%d lines rejected), version %d", result.feed, status.entries,
                 status.rejected_lines, status.version)  # fmt: skip
    elif result.outcome in (UNCHANGED, NOT_MODIFIED):
        log.info("feed %s: %s, %d entries, version %d", result.feed, result.outcome, status.entries, status.version)
