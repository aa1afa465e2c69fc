"""Who may call the HTTP API: the gRPC API's bearer tokens and roles (collector/shell/security/), checked
per route. Reading needs a viewer or consumer token; changing anything (dismissing, writing a feed or an
exception, a sync) a consumer's. Agents have nothing to do here. With --insecure every call is anonymous and
allowed, as over gRPC.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import Request

from collector.shell.httpapi.errors import ApiError
from collector.shell.security.interceptor import CONSUMER, VIEWER, Authenticator, Caller, Unauthenticated
from collector.shell.security.tokens import ReviewUnavailable

__all__ = ["READ", "WRITE", "Gate"]

log = logging.getLogger("collector.shell.security")

READ = frozenset({VIEWER, CONSUMER})
"""The roles that may read."""
WRITE = frozenset({CONSUMER})
"""The roles that may change something."""

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="dnswatch"'}


class Gate:
    """Turns a request's `Authorization` header into its Caller, or refuses it (401, 403)."""

    def __init__(self, authenticator: Authenticator | None) -> None:
        """`authenticator` None: --insecure, every call anonymous and allowed."""
        self._authenticator = authenticator

    def requiring(self, roles: frozenset[str], what: str) -> Callable[[Request], Awaitable[Caller | None]]:
        """A FastAPI dependency: the Caller (None when nothing is checked) if it holds one of `roles`."""

        async def admit(request: Request) -> Caller | None:
            if self._authenticator is None:
                return None
            where = f"{request.method} {request.url.path}"
            peer = request.client.host if request.client else "?"
            header = request.headers.get("authorization")
            metadata = [("authorization", header)] if header is not None else []
            try:
                caller = await self._authenticator.caller(metadata, {})
            except Unauthenticated as error:
                log.info("refused HTTP %s from %s: %s", where, peer, error)
                message = str(error).replace("authorization metadata", "Authorization header").replace(
                    " or a client certificate", "")
                raise ApiError(401, message, headers=_CHALLENGE) from None
            except ReviewUnavailable as error:
                log.warning("cannot check a token for HTTP %s from %s: %s", where, peer, error)
                raise ApiError(503, f"{error}; try again", headers={"Retry-After": "1"}) from None
            if not caller.roles & roles:
                held = " and ".join(sorted(caller.roles)) or "no role"
                needed = " or ".join(sorted(roles))
                log.info("refused HTTP %s from %s (%s): needs %s", where, peer, caller.identity, needed)
                raise ApiError(403, f"{what} is for {needed} tokens; these credentials carry {held}")
            return caller

        return admit
