"""Who may call the collector (docs/grpc-api.md): TLS, client certificates for agents, bearer tokens, roles.

    dnswatch-collector ... --tls-cert tls.crt --tls-key tls.key \\
        [--client-ca agents-ca.crt --mtls-listen 0.0.0.0:7444] \\
        [--agent-token-file /var/run/secrets/dnswatch/agent-tokens] [--consumer-token-file FILE] \\
        [--token-review --agent-service-account dnswatch/dnswatch-agent --consumer-service-account ops/*]

Two roles: an **agent** may subscribe to the feeds and send events; a **consumer** may read feeds and events
(and ask for a sync). Health and reflection are open, so probes and `grpcurl list` need nothing. A caller
proves its role with

- a client certificate signed by `--client-ca` (agents only), on the `--mtls-listen` port;
- a bearer token (`authorization: Bearer …` metadata) found in `--agent-token-file` / `--consumer-token-file`
  (one token a line, re-read when the file changes, so a rotated Secret needs no restart); or
- a projected ServiceAccount token that the Kubernetes API vouches for (TokenReview), whose ServiceAccount is
  listed for the role (`NS/NAME`, or `NS/*` for every ServiceAccount of a namespace).

No credentials, or a token nobody knows: UNAUTHENTICATED. A valid credential of the other role: PERMISSION_DENIED.
A service nobody listed here is refused to everyone (new services must be given a role, not left open).
`--insecure` serves plaintext with no checks at all, as before TLS existed. Tokens are compared in constant
time and never logged; caches key them by their SHA-256.

Why a second port for client certificates: grpc-python can either require a client certificate or not ask for
one (`require_client_auth`), never ask and accept its absence. Agents with certificates therefore get a port
that requires them, and the main port takes tokens.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import inspect
import logging
import os
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from dnswatch.errors import DnswatchError
from dnswatch_pb.v1 import distribution_pb2, events_pb2, feeds_pb2

__all__ = [
    "AGENT", "CONSUMER", "AuthInterceptor", "Authenticator", "Caller", "ReviewUnavailable", "SecurityUsageError",
    "ServerSecurity", "StaticTokens", "TokenReviewer", "add_security_arguments", "add_secure_ports",
    "server_security_from_args",
]

log = logging.getLogger(__name__)

AGENT = "agent"
CONSUMER = "consumer"

OPEN = "open"
"""The 'role' of services anyone may call: health and reflection."""

SERVICE_ROLES: dict[str, str] = {
    distribution_pb2.DESCRIPTOR.services_by_name["FeedDistribution"].full_name: AGENT,
    events_pb2.DESCRIPTOR.services_by_name["EventIngest"].full_name: AGENT,
    feeds_pb2.DESCRIPTOR.services_by_name["Feeds"].full_name: CONSUMER,
    events_pb2.DESCRIPTOR.services_by_name["Events"].full_name: CONSUMER,
    "grpc.health.v1.Health": OPEN,
    "grpc.reflection.v1alpha.ServerReflection": OPEN,
    "grpc.reflection.v1.ServerReflection": OPEN,
}
"""The role each service needs, by its full name."""

_SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
_CONCURRENT_REVIEWS = 8
_REVIEW_TIMEOUT_SECONDS = 5.0


class SecurityUsageError(DnswatchError):
    """Security flags that cannot be used; the message names the flag and what to do."""


class ReviewUnavailable(DnswatchError):
    """The Kubernetes API could not review a token just now (the caller is told UNAVAILABLE and retries)."""


# ---------------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class ServerSecurity:
    """How the collector's gRPC ports are secured, built once from the flags (`server_security_from_args`)."""

    insecure: bool = False
    """Plaintext and no checks at all (`--insecure`); every other field must then be empty."""
    tls_cert: Path | None = None
    """The server's certificate chain (PEM). Re-read for new connections when the file changes."""
    tls_key: Path | None = None
    """The server's private key (PEM)."""
    client_ca: Path | None = None
    """CA (PEM) whose client certificates authenticate agents, on `mtls_listen`."""
    mtls_listen: str | None = None
    """`HOST:PORT` of the port that requires a client certificate signed by `client_ca`."""
    agent_token_files: tuple[Path, ...] = ()
    """Files of agent bearer tokens, one a line (a mounted Secret)."""
    consumer_token_files: tuple[Path, ...] = ()
    """Files of consumer bearer tokens, one a line."""
    token_review: bool = False
    """Check other bearer tokens with the Kubernetes TokenReview API."""
    agent_service_accounts: tuple[str, ...] = ()
    """`NS/NAME` (or `NS/*`) ServiceAccounts whose reviewed tokens authenticate agents."""
    consumer_service_accounts: tuple[str, ...] = ()
    """`NS/NAME` (or `NS/*`) ServiceAccounts whose reviewed tokens authenticate consumers."""
    token_audiences: tuple[str, ...] = ()
    """Audiences a reviewed token must be meant for (empty: the API server's default audience)."""
    review_cache_seconds: float = 10.0
    """How long a TokenReview answer (yes or no) is reused for the same token."""

    @property
    def wants_kubernetes(self) -> bool:
        """Whether the collector needs a Kubernetes API client for TokenReview."""
        return self.token_review


def add_security_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("security; plaintext only with --insecure")
    group.add_argument("--insecure", action="store_true",
                       help="serve plaintext gRPC with no authentication (tests and local demos only)")
    group.add_argument("--tls-cert", type=Path, metavar="FILE", help="server certificate chain (PEM)")
    group.add_argument("--tls-key", type=Path, metavar="FILE", help="server private key (PEM)")
    group.add_argument("--client-ca", type=Path, metavar="FILE",
                       help="CA of agents' client certificates; needs --mtls-listen")
    group.add_argument("--mtls-listen", metavar="HOST:PORT",
                       help="a second port, requiring a client certificate signed by --client-ca (agents)")
    group.add_argument("--agent-token-file", type=Path, action="append", default=[], metavar="FILE",
                       help="file of agent bearer tokens, one a line (repeatable)")
    group.add_argument("--consumer-token-file", type=Path, action="append", default=[], metavar="FILE",
                       help="file of consumer bearer tokens, one a line (repeatable)")
    group.add_argument("--token-review", action="store_true",
                       help="check ServiceAccount tokens with the Kubernetes TokenReview API")
    group.add_argument("--agent-service-account", action="append", default=[], metavar="NS/NAME",
                       help="ServiceAccount whose tokens authenticate agents (NS/* for a namespace; repeatable)")
    group.add_argument("--consumer-service-account", action="append", default=[], metavar="NS/NAME",
                       help="ServiceAccount whose tokens authenticate consumers (NS/* for a namespace; repeatable)")
    group.add_argument("--token-audience", action="append", default=[], metavar="AUDIENCE",
                       help="audience reviewed tokens must carry (repeatable; default: the API server's)")


def server_security_from_args(args: argparse.Namespace) -> ServerSecurity:
    """The security the flags describe; SecurityUsageError (one line) when they cannot be used."""
    tls_flags = {
        "--tls-cert": args.tls_cert, "--tls-key": args.tls_key, "--client-ca": args.client_ca,
        "--mtls-listen": args.mtls_listen, "--agent-token-file": args.agent_token_file,
        "--consumer-token-file": args.consumer_token_file, "--token-review": args.token_review,
        "--agent-service-account": args.agent_service_account,
        "--consumer-service-account": args.consumer_service_account, "--token-audience": args.token_audience,
    }
    if args.insecure:
        given = [flag for flag, value in tls_flags.items() if value]
        if given:
            raise SecurityUsageError(f"--insecure serves plaintext with no authentication: drop {', '.join(given)} "
                                     "or --insecure")
        return ServerSecurity(insecure=True)
    if args.tls_cert is None or args.tls_key is None:
        raise SecurityUsageError("TLS needs --tls-cert FILE and --tls-key FILE (or --insecure for plaintext gRPC "
                                 "with no authentication)")
    _check_key_pair(args.tls_cert, args.tls_key)
    if (args.client_ca is None) != (args.mtls_listen is None):
        raise SecurityUsageError("--client-ca and --mtls-listen go together: agents with client certificates "
                                 "connect to the --mtls-listen port, which requires them")
    if args.client_ca is not None:
        _check_ca(args.client_ca, "--client-ca")
        _check_address(args.mtls_listen, "--mtls-listen")
    for flag, paths in (("--agent-token-file", args.agent_token_file),
                        ("--consumer-token-file", args.consumer_token_file)):
        for path in paths:
            if not StaticTokens.read(path, flag):
                raise SecurityUsageError(f"{flag} {path}: holds no token (one token a line)")
    accounts = args.agent_service_account + args.consumer_service_account
    if (accounts or args.token_audience) and not args.token_review:
        raise SecurityUsageError("--agent-service-account, --consumer-service-account and --token-audience "
                                 "need --token-review")
    if args.token_review and not accounts:
        raise SecurityUsageError("--token-review needs --agent-service-account or --consumer-service-account "
                                 "NS/NAME: which ServiceAccounts may call")
    for account in accounts:
        namespace, slash, name = account.partition("/")
        if not slash or not namespace or not name or "/" in name:
            raise SecurityUsageError(f"service account {account!r}: expected NAMESPACE/NAME or NAMESPACE/*")
    return ServerSecurity(
        tls_cert=args.tls_cert, tls_key=args.tls_key, client_ca=args.client_ca, mtls_listen=args.mtls_listen,
        agent_token_files=tuple(args.agent_token_file), consumer_token_files=tuple(args.consumer_token_file),
        token_review=args.token_review, agent_service_accounts=tuple(args.agent_service_account),
        consumer_service_accounts=tuple(args.consumer_service_account),
        token_audiences=tuple(args.token_audience),
    )


def _check_key_pair(cert: Path, key: Path) -> None:
    # The standard library reads the pair the way gRPC will, and says when the key does not fit the
    # certificate: better one line at start-up than a handshake failure on every connection.
    # ssl names no file when one is missing (its FileNotFoundError has no filename): each is looked at first.
    for flag, path in (("--tls-cert", cert), ("--tls-key", key)):
        _check_file(path, flag)
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as error:
        raise SecurityUsageError(f"--tls-cert {cert} / --tls-key {key}: not a usable PEM certificate and "
                                 f"matching key ({_reason(error)})") from None


def _check_file(path: Path, flag: str) -> None:
    """SecurityUsageError naming the flag and the path unless `path` is a file that can be read."""
    problem = _file_problem(path)
    if problem is not None:
        raise SecurityUsageError(f"{flag} {path}: {problem}")


def _file_problem(path: Path) -> str | None:
    if path.is_dir():
        return "is a folder, not a file"
    if not path.exists():
        return "no such file"
    if not os.access(path, os.R_OK):
        return "cannot read it (permission denied)"
    return None


def _check_ca(path: Path, flag: str) -> None:
    _check_file(path, flag)
    try:
        ssl.create_default_context(cafile=str(path))
    except (OSError, ssl.SSLError) as error:
        raise SecurityUsageError(f"{flag} {path}: not a PEM CA certificate ({_reason(error)})") from None


def _check_address(address: str, flag: str) -> None:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise SecurityUsageError(f"{flag} {address!r}: expected HOST:PORT, e.g. 0.0.0.0:7444")


def _reason(error: BaseException) -> str:
    return " ".join(str(getattr(error, "reason", None) or getattr(error, "strerror", None) or error).split())


# ---------------------------------------------------------------------------------------------- ports


class _CertificateFiles:
    """The PEM files of one port's credentials, re-read when any of them changes (cert-manager rotates them)."""

    def __init__(self, cert: Path, key: Path, client_ca: Path | None) -> None:
        self._paths = (cert, key, client_ca)
        self._seen = self._signature()

    def _signature(self) -> tuple:
        return tuple(_file_signature(path) for path in self._paths if path is not None)

    def configuration(self) -> grpc.ServerCertificateConfiguration:
        cert, key, client_ca = self._paths
        return grpc.ssl_server_certificate_configuration(
            [(key.read_bytes(), cert.read_bytes())],
            root_certificates=client_ca.read_bytes() if client_ca is not None else None)

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """gRPC asks before each handshake: None keeps the current certificates."""
        try:
            signature = self._signature()
            if signature == self._seen:
                return None
            configuration = self.configuration()
        except OSError as error:  # a Secret being swapped: keep serving the certificates already loaded
            log.warning("cannot re-read the TLS files (%s); keeping the current ones", _reason(error))
            return None
        self._seen = signature
        log.info("TLS files changed: new connections get the new certificates")
        return configuration


def _server_credentials(security: ServerSecurity, *, client_ca: Path | None) -> grpc.ServerCredentials:
    files = _CertificateFiles(security.tls_cert, security.tls_key, client_ca)
    return grpc.dynamic_ssl_server_credentials(files.configuration(), files.fetch,
                                               require_client_authentication=client_ca is not None)


def add_secure_ports(server: grpc.aio.Server, security: ServerSecurity, listen: str) -> tuple[int, int | None]:
    """Bind `listen` (TLS, or plaintext with --insecure) and the mTLS port if any: (port, mTLS port or None).

    Raises RuntimeError as `add_*_port` does when an address cannot be bound.
    """
    if security.insecure:
        return server.add_insecure_port(listen), None
    port = server.add_secure_port(listen, _server_credentials(security, client_ca=None))
    mtls_port = None
    if security.mtls_listen is not None:
        mtls_port = server.add_secure_port(security.mtls_listen,
                                           _server_credentials(security, client_ca=security.client_ca))
    return port, mtls_port


# ---------------------------------------------------------------------------------------------- credentials


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _file_signature(path: Path) -> tuple[int, int, int]:
    # A mounted Secret is updated by swapping a symlink: stat() follows it, so inode and mtime change.
    status = os.stat(path)
    return status.st_ino, status.st_mtime_ns, status.st_size


class StaticTokens:
    """The bearer tokens of one role, from files re-read whenever they change."""

    def __init__(self, role: str, paths: Iterable[Path]) -> None:
        self.role = role
        self._files = {path: (None, ()) for path in paths}  # path -> (signature, digests)

    @property
    def files(self) -> tuple[Path, ...]:
        return tuple(self._files)

    @staticmethod
    def read(path: Path, flag: str = "token file") -> list[str]:
        """The tokens of a file: one a line, surrounding blanks and empty lines ignored."""
        problem = _file_problem(path)
        if problem is not None:
            raise SecurityUsageError(f"{flag} {path}: {problem}")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise SecurityUsageError(f"{flag} {path}: cannot read it ({_reason(error)})") from None
        return [line.strip() for line in text.splitlines() if line.strip()]

    def _digests(self) -> list[bytes]:
        digests: list[bytes] = []
        for path, (seen, held) in list(self._files.items()):
            try:
                signature = _file_signature(path)
                if signature != seen:
                    held = tuple(_digest(token) for token in self.read(path))
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
        from kubernetes import client

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
        digest = _digest(token)
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
    static = [StaticTokens(AGENT, security.agent_token_files), StaticTokens(CONSUMER, security.consumer_token_files)]
    reviewer = None
    if security.token_review:
        reviewer = TokenReviewer(api_client, audiences=security.token_audiences,
                                 cache_seconds=security.review_cache_seconds)
    return Authenticator(static=[tokens for tokens in static if tokens.files], reviewer=reviewer,
                         service_accounts={AGENT: security.agent_service_accounts,
                                           CONSUMER: security.consumer_service_accounts})


# ---------------------------------------------------------------------------------------------- the interceptor


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

    def _admission(self, method: str, role: str | None) -> Callable[[grpc.aio.ServicerContext], Awaitable[None]]:
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

        return admit


def _guarded(behavior: Callable, admit: Callable[[grpc.aio.ServicerContext], Awaitable[None]]) -> Callable:
    if inspect.isasyncgenfunction(behavior):
        async def guarded_stream(request, context):
            await admit(context)
            async for response in behavior(request, context):
                yield response

        return guarded_stream

    async def guarded(request, context):
        await admit(context)
        result = behavior(request, context)
        return await result if inspect.isawaitable(result) else result

    return guarded
