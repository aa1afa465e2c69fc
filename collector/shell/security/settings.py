"""The collector's security settings: what the flags configure (`ServerSecurity`), checked at start-up so
that a flag that cannot be used is one line naming it, and the files they name (read, checked, watched for
rotation).
"""

from __future__ import annotations

import argparse
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from dnswatch.errors import DnswatchError

__all__ = ["SecurityUsageError", "ServerSecurity", "add_security_arguments", "read_token_file",
           "server_security_from_args"]


class SecurityUsageError(DnswatchError):
    """Security flags that cannot be used; the message names the flag and what to do."""


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
    viewer_token_files: tuple[Path, ...] = ()
    """Files of viewer bearer tokens, one a line: the HTTP API's read-only role."""
    token_review: bool = False
    """Check other bearer tokens with the Kubernetes TokenReview API."""
    agent_service_accounts: tuple[str, ...] = ()
    """`NS/NAME` (or `NS/*`) ServiceAccounts whose reviewed tokens authenticate agents."""
    consumer_service_accounts: tuple[str, ...] = ()
    """`NS/NAME` (or `NS/*`) ServiceAccounts whose reviewed tokens authenticate consumers."""
    viewer_service_accounts: tuple[str, ...] = ()
    """`NS/NAME` (or `NS/*`) ServiceAccounts whose reviewed tokens authenticate viewers."""
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
    group.add_argument("--viewer-token-file", type=Path, action="append", default=[], metavar="FILE",
                       help="file of viewer bearer tokens, one a line: read-only, HTTP API (repeatable)")
    group.add_argument("--token-review", action="store_true",
                       help="check ServiceAccount tokens with the Kubernetes TokenReview API")
    group.add_argument("--agent-service-account", action="append", default=[], metavar="NS/NAME",
                       help="ServiceAccount whose tokens authenticate agents (NS/* for a namespace; repeatable)")
    group.add_argument("--consumer-service-account", action="append", default=[], metavar="NS/NAME",
                       help="ServiceAccount whose tokens authenticate consumers (NS/* for a namespace; repeatable)")
    group.add_argument("--viewer-service-account", action="append", default=[], metavar="NS/NAME",
                       help="ServiceAccount whose tokens authenticate viewers (read-only; NS/* for a namespace; "
                       "repeatable)")
    group.add_argument("--token-audience", action="append", default=[], metavar="AUDIENCE",
                       help="audience reviewed tokens must carry (repeatable; default: the API server's)")


def server_security_from_args(args: argparse.Namespace) -> ServerSecurity:
    """The security the flags describe; SecurityUsageError (one line) when they cannot be used."""
    tls_flags = {
        "--tls-cert": args.tls_cert, "--tls-key": args.tls_key, "--client-ca": args.client_ca,
        "--mtls-listen": args.mtls_listen, "--agent-token-file": args.agent_token_file,
        "--consumer-token-file": args.consumer_token_file, "--viewer-token-file": args.viewer_token_file,
        "--token-review": args.token_review,
        "--agent-service-account": args.agent_service_account,
        "--consumer-service-account": args.consumer_service_account,
        "--viewer-service-account": args.viewer_service_account, "--token-audience": args.token_audience,
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
                        ("--consumer-token-file", args.consumer_token_file),
                        ("--viewer-token-file", args.viewer_token_file)):
        for path in paths:
            if not read_token_file(path, flag):
                raise SecurityUsageError(f"{flag} {path}: holds no token (one token a line)")
    accounts = args.agent_service_account + args.consumer_service_account + args.viewer_service_account
    if (accounts or args.token_audience) and not args.token_review:
        raise SecurityUsageError("--agent-service-account, --consumer-service-account, --viewer-service-account "
                                 "and --token-audience need --token-review")
    if args.token_review and not accounts:
        raise SecurityUsageError("--token-review needs --agent-service-account or --consumer-service-account "
                                 "(or --viewer-service-account) NS/NAME: which ServiceAccounts may call")
    for account in accounts:
        namespace, slash, name = account.partition("/")
        if not slash or not namespace or not name or "/" in name:
            raise SecurityUsageError(f"service account {account!r}: expected NAMESPACE/NAME or NAMESPACE/*")
    return ServerSecurity(
        tls_cert=args.tls_cert, tls_key=args.tls_key, client_ca=args.client_ca, mtls_listen=args.mtls_listen,
        agent_token_files=tuple(args.agent_token_file), consumer_token_files=tuple(args.consumer_token_file),
        viewer_token_files=tuple(args.viewer_token_file),
        token_review=args.token_review, agent_service_accounts=tuple(args.agent_service_account),
        consumer_service_accounts=tuple(args.consumer_service_account),
        viewer_service_accounts=tuple(args.viewer_service_account),
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
                                 f"matching key ({reason(error)})") from None


def _check_file(path: Path, flag: str) -> None:
    """SecurityUsageError naming the flag and the path unless `path` is a file that can be read."""
    problem = file_problem(path)
    if problem is not None:
        raise SecurityUsageError(f"{flag} {path}: {problem}")


def file_problem(path: Path) -> str | None:
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
        raise SecurityUsageError(f"{flag} {path}: not a PEM CA certificate ({reason(error)})") from None


def _check_address(address: str, flag: str) -> None:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise SecurityUsageError(f"{flag} {address!r}: expected HOST:PORT, e.g. 0.0.0.0:7444")


def reason(error: BaseException) -> str:
    return " ".join(str(getattr(error, "reason", None) or getattr(error, "strerror", None) or error).split())


def read_token_file(path: Path, flag: str = "token file") -> list[str]:
    """The tokens of a file: one a line, surrounding blanks and empty lines ignored."""
    problem = file_problem(path)
    if problem is not None:
        raise SecurityUsageError(f"{flag} {path}: {problem}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SecurityUsageError(f"{flag} {path}: cannot read it ({reason(error)})") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def file_signature(path: Path) -> tuple[int, int, int]:
    # A mounted Secret is updated by swapping a symlink: stat() follows it, so inode and mtime change.
    status = os.stat(path)
    return status.st_ino, status.st_mtime_ns, status.st_size
