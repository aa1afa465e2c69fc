"""Where bearer tokens are found: files of static tokens (a mounted Secret, re-read when it changes) and the
Kubernetes TokenReview API. Tokens are compared in constant time, never logged, and known by their SHA-256.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from dnswatch.errors import DnswatchError
from collector.shell.security.settings import file_signature, read_token_file

__all__ = ["ReviewUnavailable", "StaticTokens", "TokenReviewer", "token_digest"]

# One logger for the collector's security, whichever of its modules writes the line.
log = logging.getLogger("collector.shell.security")

_CONCURRENT_REVIEWS = 8
_REVIEW_TIMEOUT_SECONDS = 5.0


class ReviewUnavailable(DnswatchError):
    """The Kubernetes API could not review a token just now (the caller is told UNAVAILABLE and retries)."""


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class StaticTokens:
    """The bearer tokens of one role, from files re-read whenever they change."""

    def __init__(self, role: str, paths: Iterable[Path]) -> None:
        self.role = role
        self._files = {path: (None, ()) for path in paths}  # path -> (signature, digests)

    @property
    def files(self) -> tuple[Path, ...]:
        return tuple(self._files)

    def _digests(self) -> list[bytes]:
        digests: list[bytes] = []
        for path, (seen, held) in list(self._files.items()):
            try:
                signature = file_signature(path)
                if signature != seen:
                    held = tuple(token_digest(token) for token in read_token_file(path))
                    self._files[path] = (signature, held)
            except (OSError, DnswatchError) as error:  # mid-rotation: the tokens read last stay valid
                log.warning("cannot re-read the %s token file %s (%s); keeping its last tokens",
                            self.role, path, error)
            digests.extend(held)
        return digests

    def holds(self, digest: bytes) -> bool:
        """Whether a token with this SHA-256 is listed, compared against every listed one in constant time."""
        found = False
        for known in self._digests():
            found |= hmac.compare_digest(known, digest)
        return found


class TokenReviewer:
    """ServiceAccount tokens checked by the Kubernetes API (TokenReview), each answer reused briefly."""

    def __init__(self, api_client, *, audiences: Sequence[str] = (), cache_seconds: float = 10.0,
                 clock: Callable[[], float] = time.monotonic, cache_size: int = 4096) -> None:
        from kubernetes import client  # slow to import, and only TokenReview needs it

        self._api = client.AuthenticationV1Api(api_client)
        self._client = client
        self._audiences = list(audiences)
        self._cache_seconds = cache_seconds
        self._cache_size = cache_size
        self._clock = clock
        self._answers: dict[bytes, tuple[float, str | None]] = {}  # digest -> (expiry, username or None)
        self._pending: dict[bytes, asyncio.Task] = {}
        # A flood of made-up tokens must not become a flood of TokenReviews: a few at a time, the rest wait.
        self._concurrent = asyncio.Semaphore(_CONCURRENT_REVIEWS)
        self.reviews = 0
        """TokenReviews asked of the API (the rest came from the cache)."""

    async def username(self, token: str, digest: bytes) -> str | None:
        """The authenticated user the token stands for (`system:serviceaccount:NS:NAME`), or None.

        Raises ReviewUnavailable when the API cannot answer.
        """
        cached = self._answers.get(digest)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        # The same token arriving on many calls at once is reviewed once; the review is a task of its own so
        # that a caller who gives up (a cancelled call) does not cancel it for the others.
        task = self._pending.get(digest)
        if task is None:
            task = asyncio.ensure_future(self._review_and_remember(token, digest))
            self._pending[digest] = task
            task.add_done_callback(lambda done: (self._pending.pop(digest, None),
                                                 done.cancelled() or done.exception()))
        return await asyncio.shield(task)

    async def _review_and_remember(self, token: str, digest: bytes) -> str | None:
        async with self._concurrent:
            answer = await asyncio.to_thread(self._review, token)
        now = self._clock()
        if len(self._answers) >= self._cache_size:
            self._answers = {k: v for k, v in self._answers.items() if v[0] > now}
            while len(self._answers) >= self._cache_size:
                del self._answers[next(iter(self._answers))]
        self._answers[digest] = (now + self._cache_seconds, answer)
        return answer

    def _review(self, token: str) -> str | None:
        client = self._client
        spec = client.V1TokenReviewSpec(token=token, audiences=self._audiences or None)
        self.reviews += 1
        try:
            review = self._api.create_token_review(client.V1TokenReview(spec=spec),
                                                   _request_timeout=_REVIEW_TIMEOUT_SECONDS)
        except Exception as error:  # noqa: BLE001 - ApiException, urllib3 errors: the API is not answering
            # The error text may quote the request, token included: say only what kind of failure it was.
            status = getattr(error, "status", None)
            raise ReviewUnavailable(f"the Kubernetes API could not review the token "
                                    f"({f'HTTP {status}' if status else type(error).__name__})") from None
        status = review.status
        if status is None or not status.authenticated or status.user is None:
            return None
        if self._audiences and not set(self._audiences) & set(status.audiences or ()):
            return None
        return status.user.username
