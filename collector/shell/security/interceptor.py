"""Who may call what: the two roles, the role each gRPC service needs, how a call's credentials become a
`Caller` (`Authenticator`), and the server interceptor that checks every call before its handler runs.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import grpc

from dnswatch.errors import DnswatchError
from dnswatch_pb.v1 import alerting_pb2, distribution_pb2, events_pb2, feeds_pb2
from collector.shell.security.settings import ServerSecurity
from collector.shell.security.tokens import ReviewUnavailable, StaticTokens, TokenReviewer, token_digest

__all__ = ["AGENT", "CONSUMER", "VIEWER", "AuthInterceptor", "Authenticator", "Caller", "authenticator_for"]

# One logger for the collector's security, whichever of its modules writes the line.
log = logging.getLogger("collector.shell.security")

AGENT = "agent"
CONSUMER = "consumer"
VIEWER = "viewer"
"""Reads feeds, events and exceptions over the HTTP API and changes nothing; no gRPC service is for it."""

OPEN = "open"
"""The 'role' of services anyone may call: health and reflection."""

SERVICE_ROLES: dict[str, str] = {
    distribution_pb2.DESCRIPTOR.services_by_name["FeedDistribution"].full_name: AGENT,
    events_pb2.DESCRIPTOR.services_by_name["EventIngest"].full_name: AGENT,
    feeds_pb2.DESCRIPTOR.services_by_name["Feeds"].full_name: CONSUMER,
    events_pb2.DESCRIPTOR.services_by_name["Events"].full_name: CONSUMER,
    alerting_pb2.DESCRIPTOR.services_by_name["AlertExceptions"].full_name: CONSUMER,
    alerting_pb2.DESCRIPTOR.services_by_name["Webhooks"].full_name: CONSUMER,
    "grpc.health.v1.Health": OPEN,
    "grpc.reflection.v1alpha.ServerReflection": OPEN,
    "grpc.reflection.v1.ServerReflection": OPEN,
}
"""The role each service needs, by its full name."""

_SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True)
class Caller:
    """Who made a call, as far as the collector could tell."""

    roles: frozenset[str]
    """The roles the credentials carry (empty: authenticated but allowed nothing)."""
    identity: str
    """How the caller was recognised, for logs: never the token itself."""


class Unauthenticated(DnswatchError):
    """No credentials, or credentials nobody knows."""


@dataclass
class Authenticator:
    """Turns a call's credentials (metadata and TLS peer) into a `Caller`."""

    static: Sequence[StaticTokens] = ()
    reviewer: TokenReviewer | None = None
    service_accounts: dict[str, Sequence[str]] = field(default_factory=dict)
    """Role -> `NS/NAME` or `NS/*` patterns for reviewed tokens."""

    async def caller(self, metadata: Sequence[tuple[str, str | bytes]], peer: dict[str, list[bytes]]) -> Caller:
        roles: set[str] = set()
        identities: list[str] = []
        # Properties of a peer certificate exist only on the --mtls-listen port: the main port never asks for
        # one (require_client_auth=False), and that port refuses the handshake unless --client-ca signed it.
        if peer.get("x509_pem_cert") or peer.get("x509_subject"):
            roles.add(AGENT)
            names = peer.get("x509_subject_alternative_name") or peer.get("x509_common_name") or [b"?"]
            identities.append(f"client certificate {names[0].decode(errors='replace')}")
        token = _bearer_token(metadata)
        if token is not None:
            token_roles, identity = await self._token_roles(token)
            roles |= token_roles
            identities.append(identity)
        elif not identities:
            raise Unauthenticated("no credentials: present a bearer token (authorization: Bearer TOKEN) "
                                  "or a client certificate")
        return Caller(frozenset(roles), ", ".join(identities))

    async def _token_roles(self, token: str) -> tuple[set[str], str]:
        if not token:
            raise Unauthenticated("the authorization metadata is not 'Bearer TOKEN'")
        digest = token_digest(token)
        roles = {tokens.role for tokens in self.static if tokens.holds(digest)}
        if roles:
            return roles, f"{'/'.join(sorted(roles))} token"
        if self.reviewer is not None:
            username = await self.reviewer.username(token, digest)
            if username is not None:
                return self._account_roles(username), username
        raise Unauthenticated("unknown, expired or malformed bearer token")

    def _account_roles(self, username: str) -> set[str]:
        if not username.startswith(_SERVICE_ACCOUNT_PREFIX):
            return set()
        namespace, _, name = username[len(_SERVICE_ACCOUNT_PREFIX):].partition(":")
        return {role for role, patterns in self.service_accounts.items()
                if f"{namespace}/{name}" in patterns or f"{namespace}/*" in patterns}


def _bearer_token(metadata: Sequence[tuple[str, str | bytes]]) -> str | None:
    for key, value in metadata:
        if key.lower() != "authorization":
            continue
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        scheme, _, token = value.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return ""  # an authorization header that is no bearer token: unknown, not absent
    return None


def authenticator_for(security: ServerSecurity, api_client=None) -> Authenticator:
    """The authenticator the settings describe; `api_client` (kubernetes) is needed with `token_review`."""
    static = [StaticTokens(AGENT, security.agent_token_files), StaticTokens(CONSUMER, security.consumer_token_files),
              StaticTokens(VIEWER, security.viewer_token_files)]
    reviewer = None
    if security.token_review:
        reviewer = TokenReviewer(api_client, audiences=security.token_audiences,
                                 cache_seconds=security.review_cache_seconds)
    return Authenticator(static=[tokens for tokens in static if tokens.files], reviewer=reviewer,
                         service_accounts={AGENT: security.agent_service_accounts,
                                           CONSUMER: security.consumer_service_accounts,
                                           VIEWER: security.viewer_service_accounts})


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Checks every call against `SERVICE_ROLES` before its handler runs."""

    def __init__(self, authenticator: Authenticator) -> None:
        self._authenticator = authenticator

    async def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable],
                                handler_call_details: grpc.HandlerCallDetails):
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        service = method.lstrip("/").rpartition("/")[0]
        role = SERVICE_ROLES.get(service)
        if handler is None or role == OPEN:
            return handler
        # The credentials are read inside the call: the TLS peer is only known to the servicer context.
        admit = self._admission(method, role)
        kind = ("stream" if handler.request_streaming else "unary") + "_" + (
            "stream" if handler.response_streaming else "unary")
        return handler._replace(**{kind: _guarded(getattr(handler, kind), admit)})

    def _admission(self, method: str, role: str | None) -> Callable[[grpc.aio.ServicerContext], Awaitable[Caller]]:
        async def admit(context: grpc.aio.ServicerContext) -> None:
            try:
                caller = await self._authenticator.caller(context.invocation_metadata() or (),
                                                          context.auth_context() or {})
            except Unauthenticated as error:
                log.info("refused %s from %s: %s", method, context.peer(), error)
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(error))
            except ReviewUnavailable as error:
                log.warning("cannot check a token for %s from %s: %s", method, context.peer(), error)
                await context.abort(grpc.StatusCode.UNAVAILABLE, f"{error}; try again")
            if role is None:
                log.info("refused %s from %s (%s): the service has no role", method, context.peer(), caller.identity)
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"{method} is not open to anyone")
            if role not in caller.roles:
                held = " and ".join(sorted(caller.roles)) or "no role"
                log.info("refused %s from %s (%s): needs %s", method, context.peer(), caller.identity, role)
                await context.abort(grpc.StatusCode.PERMISSION_DENIED,
                                    f"{method} is for {role}s; these credentials carry {held}")
            return caller

        return admit


CALLER: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("dnswatch_caller", default=None)
"""The Caller of the call being handled, for a servicer that records who did something (a dismissal); None
when the collector checks no credentials (--insecure)."""


def _guarded(behavior: Callable, admit: Callable[[grpc.aio.ServicerContext], Awaitable[Caller]]) -> Callable:
    if inspect.isasyncgenfunction(behavior):
        async def guarded_stream(request, context):
            CALLER.set(await admit(context))
            async for response in behavior(request, context):
                yield response

        return guarded_stream

    async def guarded(request, context):
        CALLER.set(await admit(context))
        result = behavior(request, context)
        return await result if inspect.isawaitable(result) else result

    return guarded
