"""The client end of the collector's security (docs/grpc-api.md): one way to open a channel, for agent and `dnswatch`.

    security = ChannelSecurity(ca_file="ca.crt", token_file="/var/run/secrets/tokens/dnswatch")
    with open_channel("collector.dnswatch:7443", security) as channel: ...

TLS is the default; plaintext needs `insecure=True` (`--insecure`), and then nothing else may be given: a
token or a client key sent in the clear, or a CA that checks nothing, would be a mistake better refused.
Without `ca_file` the system's CAs verify the collector. A client certificate (`cert_file` + `key_file`)
authenticates an agent on the collector's `--mtls-listen` port; a bearer token (`token_file`) authenticates
an agent or a consumer on its main port. The token file is re-read whenever it changes, because projected
ServiceAccount tokens are rotated by the kubelet while the agent runs; certificates are read when a channel
is opened (a long-lived stream opens a new one on each reconnection).

The collector's side is collector/shell/security/. grpc is imported only to open a channel: the flags and
their checks cost a command that never talks to the collector nothing.
"""

from __future__ import annotations

import argparse
import os
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dnswatch.errors import BadInput

if TYPE_CHECKING:
    import grpc

__all__ = ["PLAINTEXT", "ChannelSecurity", "Connect", "add_channel_arguments", "channel_security_from_args",
           "connector", "open_aio_channel", "open_channel"]

ChannelOptions = Sequence[tuple[str, Any]]

Connect = Callable[[str, ChannelOptions], "grpc.Channel"]
"""A channel factory, `(address, options) -> channel`, for clients that open channels again and again."""


@dataclass(frozen=True)
class ChannelSecurity:
    """How a client proves the collector is the collector, and who the client is."""

    insecure: bool = False
    """Plaintext, no credentials (`--insecure`): only for a collector run with `--insecure`."""
    ca_file: Path | str | None = None
    """CA certificates (PEM) that verify the collector's certificate; None: the system's CAs."""
    cert_file: Path | str | None = None
    """Client certificate chain (PEM), for an agent on the collector's mTLS port; needs `key_file`."""
    key_file: Path | str | None = None
    """The client certificate's private key (PEM)."""
    token_file: Path | str | None = None
    """A file holding the bearer token (a Secret or a projected ServiceAccount token); re-read when it changes."""
    server_name: str | None = None
    """The name the collector's certificate must carry, when the address does not show it (an IP, a tunnel)."""

    def check(self) -> ChannelSecurity:
        """Self, once the flags fit together and the files can be used; BadInput with one line otherwise."""
        if self.insecure:
            given = [flag for flag, value in (("--ca", self.ca_file), ("--cert", self.cert_file),
                                              ("--key", self.key_file), ("--token-file", self.token_file),
                                              ("--server-name", self.server_name)) if value]
            if given:
                raise BadInput(f"--insecure talks plaintext and sends no credentials: drop {', '.join(given)} "
                               "or --insecure")
            return self
        if (self.cert_file is None) != (self.key_file is None):
            raise BadInput("--cert and --key go together: the client certificate and its private key")
        # ssl names no file when one is missing (its FileNotFoundError has no filename): each is looked at first.
        for flag, path in (("--ca", self.ca_file), ("--cert", self.cert_file), ("--key", self.key_file),
                           ("--token-file", self.token_file)):
            if path is not None:
                _check_file(Path(path), flag)
        if self.ca_file is not None:
            try:
                ssl.create_default_context(cafile=str(self.ca_file))
            except (OSError, ssl.SSLError) as error:
                raise BadInput(f"--ca {self.ca_file}: not a PEM CA certificate ({_reason(error)})") from None
        if self.cert_file is not None:
            try:
                ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(self.cert_file, self.key_file)
            except (OSError, ssl.SSLError) as error:
                raise BadInput(f"--cert {self.cert_file} / --key {self.key_file}: not a usable PEM certificate "
                               f"and matching key ({_reason(error)})") from None
        if self.token_file is not None:
            _TokenFile(Path(self.token_file)).token()
        return self


def _check_file(path: Path, flag: str) -> None:
    """BadInput naming the flag and the path unless `path` is a file that can be read."""
    if path.is_dir():
        raise BadInput(f"{flag} {path}: is a folder, not a file")
    if not path.exists():
        raise BadInput(f"{flag} {path}: no such file")
    if not os.access(path, os.R_OK):
        raise BadInput(f"{flag} {path}: cannot read it (permission denied)")


def _reason(error: BaseException) -> str:
    return " ".join(str(getattr(error, "reason", None) or getattr(error, "strerror", None) or error).split())


PLAINTEXT = ChannelSecurity(insecure=True)
"""`--insecure`: for a collector run with `--insecure` (tests, local demos)."""


# ---------------------------------------------------------------------------------------------- channels


def connector(security: ChannelSecurity) -> Connect:
    """A channel factory opening every channel with `security`."""
    def connect(address: str, options: ChannelOptions = ()) -> grpc.Channel:
        return open_channel(address, security, options)

    return connect



def open_channel(address: str, security: ChannelSecurity, options: ChannelOptions = ()) -> grpc.Channel:
    """A channel to the collector at `address` (`HOST:PORT`), secured as `security` says."""
    import grpc  # here, not at the top: see the module docstring

    if security.insecure:
        return grpc.insecure_channel(address, options=list(options))
    return grpc.secure_channel(address, _credentials(security), options=_options(security, options))


def open_aio_channel(address: str, security: ChannelSecurity, options: ChannelOptions = ()) -> grpc.aio.Channel:
    """The asyncio flavour of `open_channel`."""
    import grpc  # here, not at the top: see the module docstring

    if security.insecure:
        return grpc.aio.insecure_channel(address, options=list(options))
    return grpc.aio.secure_channel(address, _credentials(security), options=_options(security, options))


def _options(security: ChannelSecurity, options: ChannelOptions) -> list[tuple[str, Any]]:
    options = list(options)
    if security.server_name:
        options.append(("grpc.ssl_target_name_override", security.server_name))
    return options


def _credentials(security: ChannelSecurity) -> grpc.ChannelCredentials:
    import grpc  # here, not at the top: see the module docstring

    try:
        root = Path(security.ca_file).read_bytes() if security.ca_file is not None else None
        key = Path(security.key_file).read_bytes() if security.key_file is not None else None
        chain = Path(security.cert_file).read_bytes() if security.cert_file is not None else None
    except OSError as error:
        raise BadInput(f"cannot read {error.filename}: {_reason(error)}") from None
    credentials = grpc.ssl_channel_credentials(root_certificates=root, private_key=key, certificate_chain=chain)
    if security.token_file is None:
        return credentials
    token = grpc.metadata_call_credentials(_BearerToken(_TokenFile(Path(security.token_file))), name="bearer")
    return grpc.composite_channel_credentials(credentials, token)


class _TokenFile:
    """A token file, read again only when its inode, size or modification time changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()  # gRPC asks for metadata from its own threads
        self._seen: tuple[int, int, int] | None = None
        self._token = ""

    def token(self) -> str:
        with self._lock:
            try:
                status = os.stat(self.path)  # follows the symlink a projected volume swaps on rotation
                signature = (status.st_ino, status.st_mtime_ns, status.st_size)
                if signature != self._seen:
                    token = self.path.read_text(encoding="utf-8").strip()
                    if not token or any(c.isspace() for c in token):
                        raise BadInput(f"--token-file {self.path}: expected one token and nothing else")
                    self._seen, self._token = signature, token
            except FileNotFoundError:
                raise BadInput(f"--token-file {self.path}: no such file") from None
            except (OSError, UnicodeDecodeError) as error:
                raise BadInput(f"--token-file {self.path}: cannot read it ({_reason(error)})") from None
            return self._token


class _BearerToken:
    """A `grpc.AuthMetadataPlugin`: gRPC calls it for the metadata of every call."""

    def __init__(self, token_file: _TokenFile) -> None:
        self._file = token_file

    def __call__(self, context: grpc.AuthMetadataContext, callback: grpc.AuthMetadataPluginCallback) -> None:
        try:
            token = self._file.token()
        except BadInput as error:  # the call fails with this message (UNAVAILABLE) and is retried as any other
            callback((), error)
            return
        callback((("authorization", f"Bearer {token}"),), None)


# ---------------------------------------------------------------------------------------------- flags


def add_channel_arguments(parser: argparse.ArgumentParser) -> None:
    """The client security flags, for every command that talks to the collector."""
    group = parser.add_argument_group("connection to the collector (TLS unless --insecure)")
    group.add_argument("--insecure", action="store_true",
                       help="plaintext gRPC with no credentials (a collector run with --insecure)")
    group.add_argument("--ca", type=Path, metavar="FILE",
                       help="CA certificate(s) verifying the collector (default: the system's CAs)")
    group.add_argument("--cert", type=Path, metavar="FILE", help="client certificate (mTLS, agents); needs --key")
    group.add_argument("--key", type=Path, metavar="FILE", help="private key of --cert")
    group.add_argument("--token-file", type=Path, metavar="FILE",
                       help="file holding a bearer token (re-read when it changes, e.g. a projected token)")
    group.add_argument("--server-name", metavar="NAME",
                       help="name the collector's certificate must carry (default: the address's host)")


def channel_security_from_args(args: argparse.Namespace) -> ChannelSecurity:
    """The security the flags describe, checked (BadInput with one line when the flags do not fit)."""
    return ChannelSecurity(insecure=args.insecure, ca_file=args.ca, cert_file=args.cert, key_file=args.key,
                           token_file=args.token_file, server_name=args.server_name).check()


def security_flags_given(args: argparse.Namespace) -> list[str]:
    """The client security flags present on a command line (for commands where they need `--collector`)."""
    return [flag for flag, value in (("--insecure", args.insecure), ("--ca", args.ca), ("--cert", args.cert),
                                     ("--key", args.key), ("--token-file", args.token_file),
                                     ("--server-name", args.server_name)) if value]
